package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
)

// Effect is what a policy decides. The zero value is Deny, so a Decision nobody filled in refuses.
type Effect int

// Effects.
const (
	Deny Effect = iota
	Allow
	Hold
)

// String returns the effect as written in config and audit: allow, hold, deny.
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case Hold:
		return "hold"
	}
	return "deny"
}

// MarshalText makes Effect print as its name in JSON.
func (e Effect) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// ParseEffect parses a config decision.
func ParseEffect(s string) (Effect, error) {
	switch s {
	case "allow":
		return Allow, nil
	case "hold":
		return Hold, nil
	case "deny":
		return Deny, nil
	}
	return Deny, fmt.Errorf("unknown decision %q (allow, hold or deny)", s)
}

// RequestContext is what the caller said about the call, and where it came from.
type RequestContext struct {
	Reason    string `json:"reason,omitempty"`
	Ticket    string `json:"ticket,omitempty"`
	SourceIP  string `json:"source_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Input is everything a decision looks at.
type Input struct {
	Identity authn.Identity
	Action   catalog.Action
	Target   string
	Request  RequestContext
	// Now is the time the conditions see; zero means time.Now().
	Now time.Time
}

// Approvers says who may approve a held call and how many distinct people must.
type Approvers struct {
	Groups    []string `json:"groups"`
	Count     int      `json:"count"`
	AllowSelf bool     `json:"allow_self"`
}

// Grant scopes.
const (
	// ScopeResource: the grant covers the same action on the same resource only.
	ScopeResource = "resource"
	// ScopeAction: the grant covers the same action on any resource of the target.
	ScopeAction = "action"
)

// GrantTerms is what an approval of a held call creates. In JSON the TTL is a Go duration
// string ("1h0m0s").
type GrantTerms struct {
	TTL   time.Duration
	Uses  int
	Scope string
}

type grantTermsJSON struct {
	TTL   string `json:"ttl"`
	Uses  int    `json:"uses"`
	Scope string `json:"scope"`
}

// MarshalJSON writes the TTL as a duration string.
func (g GrantTerms) MarshalJSON() ([]byte, error) {
	return json.Marshal(grantTermsJSON{TTL: g.TTL.String(), Uses: g.Uses, Scope: g.Scope})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (g *GrantTerms) UnmarshalJSON(b []byte) error {
	var v grantTermsJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	ttl, err := time.ParseDuration(v.TTL)
	if err != nil && v.TTL != "" {
		return fmt.Errorf("grant ttl: %w", err)
	}
	*g = GrantTerms{TTL: ttl, Uses: v.Uses, Scope: v.Scope}
	return nil
}

// Rule is one compiled policy.
type Rule struct {
	Index     int // position in config.Policies
	Name      string
	Effect    Effect
	Message   string
	Approvers Approvers
	Grant     GrantTerms

	clouds  []string
	targets []string
	actions []string
	risks   []catalog.Risk
	groups  []string
	when    *condition
}

// Path names the rule the way load errors and traces do: policies[2] "prod-destructive".
func (r *Rule) Path() string { return fmt.Sprintf("policies[%d] %q", r.Index, r.Name) }

// Decision is the outcome for one call.
type Decision struct {
	Effect Effect
	// Rule decided; nil means no rule matched (default deny).
	Rule *Rule
	// Risk is the effective tier (config overrides applied) the rules saw.
	Risk catalog.Risk
	// Err is set when a condition failed to evaluate and the call was denied for it.
	Err error

	// in is the input Decide saw, kept so that Why can be written only when someone asks.
	in Input
}

// Why says which rule decided and which of its conditions matched, for people. It is built on
// each call (Decide does not format it, since the proxy never reads it).
func (d Decision) Why() string {
	switch {
	case d.Rule == nil:
		return "no policy matched (default deny)"
	case d.Err != nil:
		return fmt.Sprintf("%s: when: evaluation failed, denied (fail closed): %v", d.Rule.Path(), d.Err)
	}
	return fmt.Sprintf("%s decides %s: %s", d.Rule.Path(), d.Rule.Effect, d.Rule.explain(matched, &d.in, d.Risk, nil))
}

// PolicyName is the deciding rule's name, or "" for the default deny.
func (d Decision) PolicyName() string {
	if d.Rule == nil {
		return ""
	}
	return d.Rule.Name
}

// RuleTrace is one rule's verdict on an input, for `airlock policy test`.
type RuleTrace struct {
	Rule    *Rule
	Matched bool
	// Decides is true for the first matching rule: the one Decide uses.
	Decides bool
	// Why lists the matched conditions, or names the first condition that did not match.
	Why string
	Err error
}

type riskOverride struct {
	actions []string
	tier    catalog.Risk
}

// Engine decides calls from compiled rules. It is safe for concurrent use and never compiles
// anything per call.
type Engine struct {
	rules []*Rule
	risk  []riskOverride
	cel   *celEnv
}

// NewEngine compiles the config's policies and risk overrides. Every problem is reported at
// once, each naming its rule (policies[2] "prod-destructive": when: ...).
func NewEngine(cfg *config.Config) (*Engine, error) {
	env, err := newCELEnv()
	if err != nil {
		return nil, err
	}
	e := &Engine{cel: env}
	var errs []error
	for i, p := range cfg.Policies {
		r, rerrs := e.compileRule(i, p)
		errs = append(errs, rerrs...)
		e.rules = append(e.rules, r)
	}
	for i, rr := range cfg.Risk {
		path := fmt.Sprintf("risk[%d]", i)
		tier, err := catalog.ParseRisk(rr.Tier)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: tier: %w", path, err))
		}
		if len(rr.Actions) == 0 {
			errs = append(errs, fmt.Errorf("%s: actions: required", path))
		}
		for _, a := range rr.Actions {
			if err := checkPattern(a); err != nil {
				errs = append(errs, fmt.Errorf("%s: actions: %w", path, err))
			}
		}
		e.risk = append(e.risk, riskOverride{actions: rr.Actions, tier: tier})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) compileRule(i int, p config.Policy) (*Rule, []error) {
	r := &Rule{
		Index:     i,
		Name:      p.Name,
		Message:   p.Message,
		targets:   p.Targets,
		actions:   p.Actions,
		groups:    p.Groups,
		Approvers: Approvers{Groups: p.Approvers.Groups, Count: p.Approvers.Count, AllowSelf: p.Approvers.AllowSelf},
		Grant:     GrantTerms{TTL: p.Grant.TTL.D(), Uses: p.Grant.Uses, Scope: p.Grant.Scope},
	}
	var errs []error
	bad := func(field string, err error) {
		errs = append(errs, fmt.Errorf("%s: %s: %w", r.Path(), field, err))
	}
	var err error
	if r.Effect, err = ParseEffect(p.Decision); err != nil {
		bad("decision", err)
	}
	for _, c := range p.Clouds {
		c = strings.ToLower(strings.TrimSpace(c))
		if c != catalog.AWS && c != catalog.GCP && c != catalog.Azure {
			bad("clouds", fmt.Errorf("unknown cloud %q (aws, gcp or azure)", c))
		}
		r.clouds = append(r.clouds, c)
	}
	for _, a := range p.Actions {
		if err := checkPattern(a); err != nil {
			bad("actions", err)
		}
	}
	for _, t := range p.Risk {
		tier, err := catalog.ParseRisk(t)
		if err != nil {
			bad("risk", err)
		}
		r.risks = append(r.risks, tier)
	}
	if strings.TrimSpace(p.When) != "" {
		if r.when, err = e.cel.compile(p.When); err != nil {
			bad("when", err)
		}
	}
	if r.Effect == Hold {
		// Config.SetDefaults fills these; an engine built from a hand-made config gets the same.
		if r.Approvers.Count < 1 {
			r.Approvers.Count = 1
		}
		if r.Grant.TTL <= 0 {
			r.Grant.TTL = time.Hour
		}
		if r.Grant.Uses < 1 {
			r.Grant.Uses = 1
		}
		if r.Grant.Scope == "" {
			r.Grant.Scope = ScopeResource
		}
		if len(r.Approvers.Groups) == 0 {
			bad("approvers.groups", errors.New("required for a hold rule (nobody could approve)"))
		}
		if r.Grant.Scope != ScopeResource && r.Grant.Scope != ScopeAction {
			bad("grant.scope", fmt.Errorf("must be resource or action, got %q", r.Grant.Scope))
		}
	}
	return r, errs
}

// checkPattern refuses action patterns that cannot mean what the author wanted.
func checkPattern(p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return errors.New("empty action pattern")
	case strings.TrimSpace(p) != p:
		return fmt.Errorf("action pattern %q has surrounding spaces", p)
	case strings.ContainsAny(p, " \t\n[]{}"):
		return fmt.Errorf("bad action pattern %q: only * and ? are wildcards", p)
	}
	return nil
}

// Rules returns the compiled rules in config order.
func (e *Engine) Rules() []*Rule { return e.rules }

// Risk returns the action's effective tier: the first config override whose pattern matches
// the IAM action name, else the catalog's tier. An action without a tier counts as privilege.
func (e *Engine) Risk(a catalog.Action) catalog.Risk {
	for _, o := range e.risk {
		for _, p := range o.actions {
			if matchAction(p, &a) {
				return o.tier
			}
		}
	}
	if a.Risk == catalog.RiskUnknown {
		return catalog.Privilege
	}
	return a.Risk
}

// Decide applies the first matching rule. No match is a deny; a condition that fails to
// evaluate denies too (fail closed), naming the rule and the error.
func (e *Engine) Decide(in Input) Decision {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	risk := e.Risk(in.Action)
	vars := celVars{risk: risk}
	for _, r := range e.rules {
		st, err := r.match(&in, risk, &vars)
		switch {
		case err != nil:
			return Decision{Effect: Deny, Rule: r, Risk: risk, Err: err, in: in}
		case st == matched:
			return Decision{Effect: r.Effect, Rule: r, Risk: risk, in: in}
		}
	}
	return Decision{Effect: Deny, Risk: risk, in: in}
}

// Explain evaluates every rule against the input and says for each whether it matched and,
// if not, which condition did not.
func (e *Engine) Explain(in Input) []RuleTrace {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	risk := e.Risk(in.Action)
	vars := celVars{risk: risk}
	out := make([]RuleTrace, 0, len(e.rules))
	decided := false
	for _, r := range e.rules {
		st, err := r.match(&in, risk, &vars)
		t := RuleTrace{Rule: r, Matched: st == matched && err == nil, Err: err, Why: r.explain(st, &in, risk, err)}
		if t.Matched && !decided {
			t.Decides, decided = true, true
		}
		if err != nil && !decided {
			// Decide stops here and denies.
			t.Decides, decided = true, true
		}
		out = append(out, t)
	}
	return out
}

// stage is the first condition of a rule that did not hold (matched: all held).
type stage int

const (
	matched stage = iota
	noCloud
	noTarget
	noAction
	noRisk
	noGroup
	noWhen
)

// match checks the conditions cheapest first; CEL runs only when everything else matched.
func (r *Rule) match(in *Input, risk catalog.Risk, vars *celVars) (stage, error) {
	if len(r.clouds) > 0 && !slices.Contains(r.clouds, strings.ToLower(in.Action.Cloud)) {
		return noCloud, nil
	}
	if len(r.targets) > 0 && !slices.Contains(r.targets, in.Target) {
		return noTarget, nil
	}
	if len(r.actions) > 0 && r.matchingAction(&in.Action) == "" {
		return noAction, nil
	}
	if len(r.risks) > 0 && !slices.Contains(r.risks, risk) {
		return noRisk, nil
	}
	if len(r.groups) > 0 && !in.Identity.InGroup(r.groups...) {
		return noGroup, nil
	}
	if r.when != nil {
		ok, err := r.when.eval(vars.get(in))
		if err != nil {
			return noWhen, err
		}
		if !ok {
			return noWhen, nil
		}
	}
	return matched, nil
}

func (r *Rule) matchingAction(a *catalog.Action) string {
	for _, p := range r.actions {
		if matchAction(p, a) {
			return p
		}
	}
	return ""
}

// matchAction matches an action pattern against the action's IAM name. A call the catalog
// could not name (service:Unknown, storage.Unknown) matches only a pattern that ends in
// "Unknown" itself ("storage.Unknown", "*Unknown"): "storage.*" is written for the storage
// methods Airlock can name and audit, and an unnamed call (a batch request bundling deletes,
// say) must not ride on it past a rule that holds or denies those deletes by name.
func matchAction(pattern string, a *catalog.Action) bool {
	if a.Operation == catalog.UnknownOperation && !namesUnknown(pattern) {
		return false
	}
	return catalog.MatchPattern(pattern, a.IAMAction)
}

func namesUnknown(pattern string) bool {
	const u = catalog.UnknownOperation
	return len(pattern) >= len(u) && strings.EqualFold(pattern[len(pattern)-len(u):], u)
}

// explain renders a match (every condition that held) or the first condition that did not.
// It runs only for the deciding rule and for traces, never per rule in Decide.
func (r *Rule) explain(st stage, in *Input, risk catalog.Risk, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("when '%s' failed to evaluate (Decide denies here, fail closed): %v", r.when.src, err)
	case st == noCloud:
		return fmt.Sprintf("cloud %q not in %v", in.Action.Cloud, r.clouds)
	case st == noTarget:
		return fmt.Sprintf("target %q not in %v", in.Target, r.targets)
	case st == noAction && in.Action.Operation == catalog.UnknownOperation:
		return fmt.Sprintf("action %s (a call the catalog cannot name) matches none of %v; only a pattern ending in Unknown matches such a call", in.Action.IAMAction, r.actions)
	case st == noAction:
		return fmt.Sprintf("action %s matches none of %v", in.Action.IAMAction, r.actions)
	case st == noRisk:
		return fmt.Sprintf("risk %s not in %v", risk, r.risks)
	case st == noGroup:
		return fmt.Sprintf("requester groups %v include none of %v", in.Identity.Groups, r.groups)
	case st == noWhen:
		return fmt.Sprintf("when '%s' is false", r.when.src)
	}
	var held []string
	if len(r.clouds) > 0 {
		held = append(held, "cloud "+in.Action.Cloud)
	}
	if len(r.targets) > 0 {
		held = append(held, "target "+in.Target)
	}
	if len(r.actions) > 0 {
		held = append(held, fmt.Sprintf("action %s matches %s", in.Action.IAMAction, r.matchingAction(&in.Action)))
	}
	if len(r.risks) > 0 {
		held = append(held, "risk "+risk.String())
	}
	if len(r.groups) > 0 {
		var in2 []string
		for _, g := range r.groups {
			if in.Identity.InGroup(g) {
				in2 = append(in2, g)
			}
		}
		held = append(held, "requester in "+strings.Join(in2, ", "))
	}
	if r.when != nil {
		held = append(held, fmt.Sprintf("when '%s' is true", r.when.src))
	}
	if len(held) == 0 {
		held = append(held, "no conditions (matches every call)")
	}
	return strings.Join(held, "; ")
}
