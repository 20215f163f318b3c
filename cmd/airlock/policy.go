package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
)

func init() {
	register(command{name: "policy", summary: "check a config's policies, or test which rule decides a call (offline)", run: policyCmd})
}

// Exit codes of `airlock policy test`, so scripts and CI can assert a decision.
const (
	exitAllow = 0
	exitHold  = 3
	exitDeny  = 4
)

// osExit is os.Exit; `policy test` leaves through it with the decision's code.
var osExit = os.Exit

const policyUsage = `Usage: airlock policy <subcommand> [flags]

Subcommands:
  check   load a config and compile its policies (CEL conditions, patterns); exit 1 on error
  test    show which rule decides a call, and why the rules before it did not match

Run 'airlock policy <subcommand> --help' for its flags.
`

func policyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return errUsage
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "test":
		code, err := policyTest(args[1:], stdout, stderr)
		if err != nil {
			return err
		}
		if code != exitAllow {
			osExit(code)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stderr, policyUsage)
		return flag.ErrHelp
	}
	fmt.Fprintf(stderr, "airlock policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
	return errUsage
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy check", "policy check --config FILE", stderr)
	cfgPath := fs.String("config", envOr("AIRLOCK_CONFIG", ""), "config file (env AIRLOCK_CONFIG)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		fs.Usage()
		return errUsage
	}
	engine, cfg, err := loadEngine(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d policies, %d risk overrides)\n", *cfgPath, len(engine.Rules()), len(cfg.Risk))
	return nil
}

func loadEngine(path string) (*approval.Engine, *config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	engine, err := approval.NewEngine(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return engine, cfg, nil
}

// policyTest prints the decision for one described call and returns its exit code.
func policyTest(args []string, stdout, stderr io.Writer) (int, error) {
	synopsis := "policy test --config FILE --as USER [--groups G1,G2] --action ACTION [--target T] [--cloud C]\n" +
		"       [--resource R] [--region R] [--account A] [--risk TIER] [--reason TEXT] [--ticket T]\n" +
		"       [--source-ip IP] [--user-agent UA] [--time RFC3339]"
	fs := newFlagSet("policy test", synopsis, stderr)
	cfgPath := fs.String("config", envOr("AIRLOCK_CONFIG", ""), "config file (env AIRLOCK_CONFIG)")
	as := fs.String("as", "", "the requester: subject, or an email (then used as both subject and email)")
	email := fs.String("email", "", "the requester's email, when --as is a subject")
	groups := fs.String("groups", "", "the requester's groups, comma-separated")
	action := fs.String("action", "", "IAM action name: ec2:TerminateInstances, compute.instances.delete, Microsoft.Compute/virtualMachines/delete")
	target := fs.String("target", "", "target name from the config")
	cloud := fs.String("cloud", "", "aws, gcp or azure (default: the target's cloud, else guessed from the action's form)")
	resource := fs.String("resource", "", "resource the call acts on (ARN, resource name)")
	region := fs.String("region", "", "region of the call")
	account := fs.String("account", "", "account / project / subscription of the call")
	risk := fs.String("risk", "", "risk tier before config overrides (default: the catalog's default tier for the action)")
	reason := fs.String("reason", "", "the reason given with the call")
	ticket := fs.String("ticket", "", "the ticket given with the call")
	sourceIP := fs.String("source-ip", "", "the client's IP address")
	userAgent := fs.String("user-agent", "", "the client's User-Agent")
	at := fs.String("time", "", "evaluate at this time, RFC 3339 (default: now)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: airlock %s\n\n", synopsis)
		fmt.Fprintln(stderr, "Shows which policy rule decides the described call, with the approvers and grant of a hold,")
		fmt.Fprintln(stderr, "and for every other rule why it did not match. Nothing is sent anywhere.")
		fmt.Fprintln(stderr, "\nExit status: 0 allow, 3 hold, 4 deny; 1 the config or a flag value is wrong; 2 usage.")
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return 0, err
	}
	if *cfgPath == "" || *as == "" || *action == "" || fs.NArg() > 0 {
		fs.Usage()
		return 0, errUsage
	}
	engine, cfg, err := loadEngine(*cfgPath)
	if err != nil {
		return 0, err
	}

	in := approval.Input{
		Identity: authn.Identity{Subject: *as, Email: *email, Groups: splitList(*groups)},
		Target:   *target,
		Request:  approval.RequestContext{Reason: *reason, Ticket: *ticket, SourceIP: *sourceIP, UserAgent: *userAgent},
		Now:      time.Now(),
	}
	if in.Identity.Email == "" && strings.Contains(*as, "@") {
		in.Identity.Email = *as
	}
	if *at != "" {
		if in.Now, err = time.Parse(time.RFC3339, *at); err != nil {
			return 0, fmt.Errorf("--time: want RFC 3339 (2025-07-16T10:00:00+02:00): %w", err)
		}
	}
	if *target != "" {
		if _, ok := cfg.Target(*target); !ok {
			fmt.Fprintf(stderr, "warning: target %q is not in %s\n", *target, *cfgPath)
		}
	}
	c := *cloud
	if c == "" {
		c = guessCloud(cfg, *target, *action)
	}
	in.Action, err = describeAction(c, *action, *resource, *region, *account, *risk)
	if err != nil {
		return 0, err
	}

	d := engine.Decide(in)
	printDecision(stdout, engine, in, d)
	switch d.Effect {
	case approval.Allow:
		return exitAllow, nil
	case approval.Hold:
		return exitHold, nil
	}
	return exitDeny, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// guessCloud takes the target's cloud, else reads the action's form: Azure names have a slash,
// GCP names are dotted, AWS names have a colon.
func guessCloud(cfg *config.Config, target, action string) string {
	if t, ok := cfg.Target(target); ok {
		return t.Cloud
	}
	switch {
	case strings.Contains(action, "/"):
		return catalog.Azure
	case !strings.Contains(action, ":") && strings.Contains(action, "."):
		return catalog.GCP
	}
	return catalog.AWS
}

// describeAction builds the Action the catalog would produce for an IAM action name.
func describeAction(cloud, name, resource, region, account, risk string) (catalog.Action, error) {
	switch cloud {
	case catalog.AWS, catalog.GCP, catalog.Azure:
	default:
		return catalog.Action{}, fmt.Errorf("--cloud: unknown cloud %q (aws, gcp or azure)", cloud)
	}
	// "storage.Unknown" is the call the catalog cannot name, as the proxy sees it.
	a, ok := catalog.Named(cloud, name)
	if !ok {
		return a, fmt.Errorf("--action: %q is not a %s action name (e.g. %s)", name, cloud, map[string]string{
			catalog.AWS: "ec2:TerminateInstances", catalog.GCP: "compute.instances.delete",
			catalog.Azure: "Microsoft.Compute/virtualMachines/delete",
		}[cloud])
	}
	a.Resource, a.Region, a.Account = resource, region, account
	if risk == "" {
		return a, nil
	}
	var err error
	if a.Risk, err = catalog.ParseRisk(risk); err != nil {
		return a, fmt.Errorf("--risk: %w", err)
	}
	return a, nil
}

func printDecision(w io.Writer, engine *approval.Engine, in approval.Input, d approval.Decision) {
	fmt.Fprintf(w, "decision:  %s\n", d.Effect)
	if d.Rule != nil {
		fmt.Fprintf(w, "rule:      %s\n", d.Rule.Path())
	} else {
		fmt.Fprintln(w, "rule:      (none: default deny)")
	}
	fmt.Fprintf(w, "why:       %s\n", d.Why())
	riskNote := ""
	if d.Risk != in.Action.Risk {
		riskNote = fmt.Sprintf(" (config override of %s)", in.Action.Risk)
	}
	fmt.Fprintf(w, "call:      %s %s on target %q, risk %s%s\n", in.Action.Cloud, in.Action.IAMAction, in.Target, d.Risk, riskNote)
	fmt.Fprintf(w, "requester: %s, groups [%s]\n", in.Identity.Name(), strings.Join(in.Identity.Groups, ", "))
	if d.Rule != nil && d.Rule.Message != "" {
		fmt.Fprintf(w, "message:   %s\n", d.Rule.Message)
	}
	if d.Effect == approval.Hold {
		a, g := d.Rule.Approvers, d.Rule.Grant
		self := "the requester may not approve"
		if a.AllowSelf {
			self = "the requester may approve"
		}
		fmt.Fprintf(w, "approvers: %d distinct from [%s]; %s\n", a.Count, strings.Join(a.Groups, ", "), self)
		fmt.Fprintf(w, "grant:     %d use(s) within %s, scope %s\n", g.Uses, g.TTL, g.Scope)
	}
	fmt.Fprintln(w, "\nrules, in order:")
	for _, t := range engine.Explain(in) {
		var verdict string
		switch {
		case t.Decides && t.Err != nil:
			verdict = "ERROR, decides deny (fail closed)"
		case t.Decides:
			verdict = "MATCH, decides " + t.Rule.Effect.String()
		case t.Matched:
			verdict = "match, not reached"
		default:
			verdict = "no match"
		}
		fmt.Fprintf(w, "  %-40s %s: %s\n", t.Rule.Path(), verdict, t.Why)
	}
	if len(engine.Rules()) == 0 {
		fmt.Fprintln(w, "  (no policies: everything is denied)")
	}
}
