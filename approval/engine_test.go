package approval

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
)

const testTargets = `
targets:
  - {name: prod-aws, cloud: aws, role_arn: "arn:aws:iam::123456789012:role/airlock"}
  - {name: dev-aws, cloud: aws, role_arn: "arn:aws:iam::123456789012:role/airlock"}
  - {name: prod-gcp, cloud: gcp, service_account: "sa@p.iam.gserviceaccount.com"}
`

// ruleSets are the policies the table below runs against, by name.
var ruleSets = map[string]string{
	"example": `
policies:
  - name: reads-flow
    risk: [read]
    decision: allow
  - name: prod-destructive-needs-sre
    targets: [prod-aws]
    actions: ["ec2:Terminate*", "s3:Delete*"]
    groups: [engineers]
    when: '"oncall" in identity.groups'
    decision: hold
    approvers: {groups: [sre-leads], count: 1}
    grant: {ttl: 1h, uses: 1}
  - name: default-deny
    decision: deny
`,
	"business-hours": `
policies:
  - name: business-hours-writes
    risk: [write]
    when: >-
      now.getHours("Europe/Berlin") >= 9 && now.getHours("Europe/Berlin") < 18 &&
      now.getDayOfWeek("Europe/Berlin") >= 1 && now.getDayOfWeek("Europe/Berlin") <= 5
    decision: allow
  - name: after-hours-writes
    risk: [write]
    decision: hold
    approvers: {groups: [sre]}
`,
	"ticket": `
policies:
  - name: destructive-with-ticket
    risk: [destructive]
    when: 'request.ticket != "" && request.reason.matches("^[A-Z]+-[0-9]+: .{10,}")'
    decision: hold
    approvers: {groups: [sre]}
  - name: destructive-without-ticket
    risk: [destructive]
    decision: deny
    message: destructive calls need a ticket and a reason
  - name: rest
    decision: allow
`,
	"network": `
policies:
  - name: office-only-privilege
    risk: [privilege]
    when: 'cidr("10.20.0.0/16").containsIP(request.source_ip)'
    decision: hold
    approvers: {groups: [security]}
  - name: privilege-elsewhere
    risk: [privilege]
    decision: deny
  - name: terraform-writes
    risk: [write]
    when: 'request.user_agent.contains("Terraform")'
    decision: allow
`,
	"groups": `
policies:
  - name: admins-allowed
    groups: [platform-admins]
    decision: allow
  - name: contractors-denied
    when: 'identity.email.endsWith("@contractor.example")'
    decision: deny
  - name: sre-or-oncall
    groups: [sre, oncall]
    risk: [write, destructive]
    decision: hold
    approvers: {groups: [sre-leads], count: 2}
    grant: {ttl: 30m, uses: 3, scope: action}
  - name: team-groups
    when: 'identity.groups.exists(g, g.startsWith("team-"))'
    risk: [read]
    decision: allow
`,
	"clouds": `
policies:
  - name: gcp-reads
    clouds: [gcp]
    actions: ["compute.instances.get", "compute.*.list"]
    decision: allow
  - name: azure-vm-delete
    clouds: [azure]
    actions: ["Microsoft.Compute/virtualMachines/delete"]
    decision: hold
    approvers: {groups: [sre]}
  - name: aws-home-regions
    clouds: [aws]
    when: 'action.region in ["us-east-1", "eu-west-1"] && action.account == "123456789012"'
    decision: allow
  - name: scratch-buckets
    actions: ["s3:*"]
    when: 'action.resource.startsWith("arn:aws:s3:::scratch-")'
    decision: allow
`,
	"risk-overrides": `
risk:
  - actions: ["s3:PutBucketPolicy"]
    tier: privilege
  - actions: ["ec2:Describe*"]
    tier: write
policies:
  - name: reads
    risk: [read]
    decision: allow
  - name: privilege-by-cel
    when: 'action.risk == "privilege" && target == "dev-aws"'
    decision: hold
    approvers: {groups: [security]}
  - name: privilege
    risk: [privilege]
    decision: deny
  - name: rest
    decision: hold
    approvers: {groups: [sre]}
`,
	"unknown-calls": `
risk:
  - actions: ["storage.*"]
    tier: read
policies:
  - name: deletes-denied
    actions: ["storage.objects.delete"]
    decision: deny
  - name: storage-flows
    actions: ["storage.*"]
    decision: allow
  - name: unnamed-compute-held
    actions: ["compute.Unknown"]
    decision: hold
    approvers: {groups: [sre]}
  - name: reads
    risk: [read]
    decision: allow
`,
	"empty": `
policies: []
`,
	"cost": `
policies:
  - name: quadratic
    when: 'identity.groups.all(a, identity.groups.all(b, a == b || a != b))'
    decision: allow
`,
}

func engineFor(t testing.TB, set string) *Engine {
	t.Helper()
	src, ok := ruleSets[set]
	if !ok {
		t.Fatalf("no rule set %q", set)
	}
	cfg, err := config.Parse([]byte(testTargets + src))
	if err != nil {
		t.Fatalf("rule set %s: %v", set, err)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatalf("rule set %s: %v", set, err)
	}
	return e
}

// act names an action the way the catalog would.
func act(cloud, iamAction string, risk catalog.Risk) catalog.Action {
	sep := ":"
	switch cloud {
	case catalog.GCP:
		sep = "."
	case catalog.Azure:
		sep = "/"
	}
	var svc, op string
	if cloud == catalog.Azure {
		i := strings.Index(iamAction, "/")
		svc, op = iamAction[:i], iamAction[i+1:]
	} else {
		svc, op, _ = strings.Cut(iamAction, sep)
	}
	return catalog.Action{Cloud: cloud, Service: svc, Operation: op, IAMAction: iamAction, Risk: risk, Known: true}
}

func who(groups ...string) authn.Identity {
	return authn.Identity{Subject: "u-alice", Email: "alice@example.com", Groups: groups}
}

// at is a time in UTC.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecide(t *testing.T) {
	terminate := act(catalog.AWS, "ec2:TerminateInstances", catalog.Destructive)
	describe := act(catalog.AWS, "ec2:DescribeInstances", catalog.Read)
	runInst := act(catalog.AWS, "ec2:RunInstances", catalog.Write)
	putPolicy := act(catalog.AWS, "iam:PutRolePolicy", catalog.Privilege)
	wednesday := "2025-07-16T" // CEST, UTC+2
	winterWed := "2025-01-15T" // CET, UTC+1

	withRegion := func(a catalog.Action, region, account string) catalog.Action {
		a.Region, a.Account = region, account
		return a
	}
	withResource := func(a catalog.Action, r string) catalog.Action { a.Resource = r; return a }
	lotsOfGroups := make([]string, 1000)
	for i := range lotsOfGroups {
		lotsOfGroups[i] = fmt.Sprintf("g%d", i)
	}

	tests := []struct {
		name     string
		set      string
		in       Input
		effect   Effect
		rule     string // "" = default deny
		why      string // substring of Decision.Why()
		evalFail bool
	}{
		// The example from ARCHITECTURE.md.
		{name: "read flows", set: "example",
			in:     Input{Identity: who(), Action: describe, Target: "prod-aws"},
			effect: Allow, rule: "reads-flow", why: "risk read"},
		{name: "oncall engineer terminate on prod is held", set: "example",
			in:     Input{Identity: who("engineers", "oncall"), Action: terminate, Target: "prod-aws"},
			effect: Hold, rule: "prod-destructive-needs-sre", why: `action ec2:TerminateInstances matches ec2:Terminate*`},
		{name: "engineer not oncall falls to default-deny rule", set: "example",
			in:     Input{Identity: who("engineers"), Action: terminate, Target: "prod-aws"},
			effect: Deny, rule: "default-deny", why: "no conditions"},
		{name: "other target is not covered by the hold rule", set: "example",
			in:     Input{Identity: who("engineers", "oncall"), Action: terminate, Target: "dev-aws"},
			effect: Deny, rule: "default-deny"},
		{name: "second action pattern matches", set: "example",
			in:     Input{Identity: who("engineers", "oncall"), Action: act(catalog.AWS, "s3:DeleteBucket", catalog.Destructive), Target: "prod-aws"},
			effect: Hold, rule: "prod-destructive-needs-sre", why: "matches s3:Delete*"},
		{name: "action patterns are case-insensitive", set: "example",
			in:     Input{Identity: who("engineers", "oncall"), Action: act(catalog.AWS, "EC2:terminateinstances", catalog.Destructive), Target: "prod-aws"},
			effect: Hold, rule: "prod-destructive-needs-sre"},
		{name: "oncall but not an engineer", set: "example",
			in:     Input{Identity: who("oncall"), Action: terminate, Target: "prod-aws"},
			effect: Deny, rule: "default-deny"},
		{name: "write matches no allow rule", set: "example",
			in:     Input{Identity: who("engineers", "oncall"), Action: runInst, Target: "prod-aws"},
			effect: Deny, rule: "default-deny"},

		// Time of day and weekday, in a time zone.
		{name: "wednesday 10:00 Berlin is business hours", set: "business-hours",
			in:     Input{Identity: who(), Action: runInst, Target: "prod-aws", Now: at(wednesday + "08:00:00Z")},
			effect: Allow, rule: "business-hours-writes", why: "is true"},
		{name: "wednesday 20:00 Berlin is after hours", set: "business-hours",
			in:     Input{Identity: who(), Action: runInst, Target: "prod-aws", Now: at(wednesday + "18:00:00Z")},
			effect: Hold, rule: "after-hours-writes"},
		{name: "saturday 10:00 Berlin is not a weekday", set: "business-hours",
			in:     Input{Identity: who(), Action: runInst, Target: "prod-aws", Now: at("2025-07-19T08:00:00Z")},
			effect: Hold, rule: "after-hours-writes"},
		{name: "08:30 UTC in winter is 09:30 in Berlin", set: "business-hours",
			in:     Input{Identity: who(), Action: runInst, Target: "prod-aws", Now: at(winterWed + "08:30:00Z")},
			effect: Allow, rule: "business-hours-writes"},
		{name: "07:59 UTC in winter is 08:59 in Berlin", set: "business-hours",
			in:     Input{Identity: who(), Action: runInst, Target: "prod-aws", Now: at(winterWed + "07:59:00Z")},
			effect: Hold, rule: "after-hours-writes", why: "risk write"},
		{name: "reads match neither time rule", set: "business-hours",
			in:     Input{Identity: who(), Action: describe, Target: "prod-aws", Now: at(wednesday + "08:00:00Z")},
			effect: Deny, rule: "", why: "no policy matched (default deny)"},

		// Ticket and reason.
		{name: "ticket and a good reason are held", set: "ticket",
			in: Input{Identity: who(), Action: terminate, Target: "prod-aws",
				Request: RequestContext{Ticket: "OPS-12", Reason: "OPS-12: remove the broken canary"}},
			effect: Hold, rule: "destructive-with-ticket"},
		{name: "ticket but a short reason is denied", set: "ticket",
			in: Input{Identity: who(), Action: terminate, Target: "prod-aws",
				Request: RequestContext{Ticket: "OPS-12", Reason: "OPS-12: x"}},
			effect: Deny, rule: "destructive-without-ticket", why: "risk destructive"},
		{name: "good reason without a ticket is denied", set: "ticket",
			in: Input{Identity: who(), Action: terminate, Target: "prod-aws",
				Request: RequestContext{Reason: "OPS-12: remove the broken canary"}},
			effect: Deny, rule: "destructive-without-ticket"},
		{name: "nothing said at all is denied", set: "ticket",
			in:     Input{Identity: who(), Action: terminate, Target: "prod-aws"},
			effect: Deny, rule: "destructive-without-ticket"},
		{name: "non-destructive flows", set: "ticket",
			in:     Input{Identity: who(), Action: runInst, Target: "prod-aws"},
			effect: Allow, rule: "rest"},

		// Source IP and user agent.
		{name: "privilege from the office network is held", set: "network",
			in: Input{Identity: who(), Action: putPolicy, Target: "prod-aws",
				Request: RequestContext{SourceIP: "10.20.3.4"}},
			effect: Hold, rule: "office-only-privilege"},
		{name: "privilege from elsewhere is denied", set: "network",
			in: Input{Identity: who(), Action: putPolicy, Target: "prod-aws",
				Request: RequestContext{SourceIP: "203.0.113.9"}},
			effect: Deny, rule: "privilege-elsewhere"},
		{name: "missing source IP fails closed", set: "network",
			in:     Input{Identity: who(), Action: putPolicy, Target: "prod-aws"},
			effect: Deny, rule: "office-only-privilege", why: "fail closed", evalFail: true},
		{name: "garbage source IP fails closed", set: "network",
			in: Input{Identity: who(), Action: putPolicy, Target: "prod-aws",
				Request: RequestContext{SourceIP: "not-an-ip"}},
			effect: Deny, rule: "office-only-privilege", evalFail: true},
		{name: "terraform user agent writes flow", set: "network",
			in: Input{Identity: who(), Action: runInst, Target: "prod-aws",
				Request: RequestContext{UserAgent: "APN/1.0 HashiCorp/1.0 Terraform/1.9.0"}},
			effect: Allow, rule: "terraform-writes"},
		{name: "aws cli writes match nothing", set: "network",
			in: Input{Identity: who(), Action: runInst, Target: "prod-aws",
				Request: RequestContext{UserAgent: "aws-cli/2.17.0"}},
			effect: Deny, rule: ""},

		// Groups and identity.
		{name: "admin group allows anything", set: "groups",
			in:     Input{Identity: who("platform-admins"), Action: putPolicy, Target: "prod-aws"},
			effect: Allow, rule: "admins-allowed", why: "requester in platform-admins"},
		{name: "contractor email is denied", set: "groups",
			in:     Input{Identity: authn.Identity{Subject: "c1", Email: "bob@contractor.example", Groups: []string{"sre"}}, Action: runInst, Target: "prod-aws"},
			effect: Deny, rule: "contractors-denied"},
		{name: "any of the requester groups", set: "groups",
			in:     Input{Identity: who("oncall"), Action: terminate, Target: "prod-aws"},
			effect: Hold, rule: "sre-or-oncall"},
		{name: "group list exists() condition", set: "groups",
			in:     Input{Identity: who("team-payments"), Action: describe, Target: "prod-aws"},
			effect: Allow, rule: "team-groups"},
		{name: "no groups matches nothing", set: "groups",
			in:     Input{Identity: who(), Action: describe, Target: "prod-aws"},
			effect: Deny, rule: "", why: "no policy matched (default deny)"},
		{name: "nil groups is an empty list to CEL", set: "groups",
			in:     Input{Identity: authn.Identity{Subject: "x"}, Action: runInst, Target: "prod-aws"},
			effect: Deny, rule: ""},

		// Clouds, regions, accounts, resources.
		{name: "gcp list matches a glob in the middle", set: "clouds",
			in:     Input{Identity: who(), Action: act(catalog.GCP, "compute.disks.list", catalog.Read), Target: "prod-gcp"},
			effect: Allow, rule: "gcp-reads"},
		{name: "gcp delete matches nothing", set: "clouds",
			in:     Input{Identity: who(), Action: act(catalog.GCP, "compute.instances.delete", catalog.Destructive), Target: "prod-gcp"},
			effect: Deny, rule: ""},
		{name: "azure names match case-insensitively", set: "clouds",
			in:     Input{Identity: who(), Action: act(catalog.Azure, "microsoft.compute/virtualMachines/DELETE", catalog.Destructive), Target: "prod-azure"},
			effect: Hold, rule: "azure-vm-delete"},
		{name: "aws home region and account", set: "clouds",
			in:     Input{Identity: who(), Action: withRegion(runInst, "eu-west-1", "123456789012"), Target: "prod-aws"},
			effect: Allow, rule: "aws-home-regions"},
		{name: "aws other region falls through", set: "clouds",
			in:     Input{Identity: who(), Action: withRegion(runInst, "ap-south-1", "123456789012"), Target: "prod-aws"},
			effect: Deny, rule: ""},
		{name: "cloud names are case-insensitive", set: "clouds",
			in: Input{Identity: who(), Action: func() catalog.Action {
				a := withRegion(runInst, "us-east-1", "123456789012")
				a.Cloud = "AWS"
				return a
			}(), Target: "prod-aws"},
			effect: Allow, rule: "aws-home-regions"},
		{name: "resource prefix condition", set: "clouds",
			in:     Input{Identity: who(), Action: withResource(act("", "s3:DeleteObject", catalog.Destructive), "arn:aws:s3:::scratch-tmp/key"), Target: "prod-aws"},
			effect: Allow, rule: "scratch-buckets"},

		// Risk overrides.
		{name: "override raises a write to privilege", set: "risk-overrides",
			in:     Input{Identity: who(), Action: act(catalog.AWS, "s3:PutBucketPolicy", catalog.Write), Target: "prod-aws"},
			effect: Deny, rule: "privilege", why: "risk privilege"},
		{name: "override lowers nothing it does not match", set: "risk-overrides",
			in:     Input{Identity: who(), Action: act(catalog.AWS, "s3:GetObject", catalog.Read), Target: "prod-aws"},
			effect: Allow, rule: "reads"},
		{name: "override by glob turns describe into write", set: "risk-overrides",
			in:     Input{Identity: who(), Action: describe, Target: "prod-aws"},
			effect: Hold, rule: "rest"},
		{name: "unknown tier counts as privilege", set: "risk-overrides",
			in:     Input{Identity: who(), Action: catalog.Unknown(catalog.AWS, "ec2", "us-east-1"), Target: "prod-aws"},
			effect: Deny, rule: "privilege"},
		{name: "zero tier counts as privilege", set: "risk-overrides",
			in:     Input{Identity: who(), Action: act(catalog.AWS, "ec2:Frobnicate", catalog.RiskUnknown), Target: "prod-aws"},
			effect: Deny, rule: "privilege"},
		{name: "CEL sees the effective tier", set: "risk-overrides",
			in:     Input{Identity: who(), Action: act(catalog.AWS, "s3:PutBucketPolicy", catalog.Write), Target: "dev-aws"},
			effect: Hold, rule: "privilege-by-cel"},

		// Calls the catalog cannot name match only patterns that name Unknown.
		{name: "a wildcard allows the service's named calls", set: "unknown-calls",
			in:     Input{Identity: who(), Action: act(catalog.GCP, "storage.objects.get", catalog.Read), Target: "prod-gcp"},
			effect: Allow, rule: "storage-flows"},
		{name: "a wildcard neither allows nor lowers an unnamed call", set: "unknown-calls",
			in:     Input{Identity: who(), Action: catalog.Unknown(catalog.GCP, "storage", ""), Target: "prod-gcp"},
			effect: Deny, rule: "", why: "no policy matched"},
		{name: "a pattern naming Unknown matches it", set: "unknown-calls",
			in:     Input{Identity: who(), Action: catalog.Unknown(catalog.GCP, "compute", ""), Target: "prod-gcp"},
			effect: Hold, rule: "unnamed-compute-held"},

		// Edges.
		{name: "no policies at all", set: "empty",
			in:     Input{Identity: who(), Action: describe, Target: "prod-aws"},
			effect: Deny, rule: "", why: "no policy matched (default deny)"},
		{name: "cost limit fails closed", set: "cost",
			in:     Input{Identity: who(lotsOfGroups...), Action: describe, Target: "prod-aws"},
			effect: Deny, rule: "quadratic", why: "fail closed", evalFail: true},
		{name: "small input stays under the cost limit", set: "cost",
			in:     Input{Identity: who("a", "b"), Action: describe, Target: "prod-aws"},
			effect: Allow, rule: "quadratic"},
	}
	engines := map[string]*Engine{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := engines[tc.set]
			if e == nil {
				e = engineFor(t, tc.set)
				engines[tc.set] = e
			}
			if tc.in.Now.IsZero() {
				tc.in.Now = at(wednesday + "08:00:00Z")
			}
			d := e.Decide(tc.in)
			if d.Effect != tc.effect {
				t.Errorf("effect = %s, want %s (why: %s)", d.Effect, tc.effect, d.Why())
			}
			if got := d.PolicyName(); got != tc.rule {
				t.Errorf("rule = %q, want %q (why: %s)", got, tc.rule, d.Why())
			}
			if !strings.Contains(d.Why(), tc.why) {
				t.Errorf("why = %q, want it to contain %q", d.Why(), tc.why)
			}
			if (d.Err != nil) != tc.evalFail {
				t.Errorf("err = %v, want failure %v", d.Err, tc.evalFail)
			}
			if tc.evalFail && !strings.Contains(d.Why(), fmt.Sprintf("%q", tc.rule)) {
				t.Errorf("why = %q does not name rule %q", d.Why(), tc.rule)
			}
		})
	}
}

func TestDecideHoldCarriesApproversAndGrant(t *testing.T) {
	e := engineFor(t, "groups")
	d := e.Decide(Input{Identity: who("sre"), Action: act(catalog.AWS, "ec2:RunInstances", catalog.Write), Target: "prod-aws"})
	if d.Effect != Hold || d.Rule == nil {
		t.Fatalf("got %+v", d)
	}
	a, g := d.Rule.Approvers, d.Rule.Grant
	if a.Count != 2 || len(a.Groups) != 1 || a.Groups[0] != "sre-leads" || a.AllowSelf {
		t.Errorf("approvers = %+v", a)
	}
	if g.TTL != 30*time.Minute || g.Uses != 3 || g.Scope != ScopeAction {
		t.Errorf("grant = %+v", g)
	}
	if d.Risk != catalog.Write {
		t.Errorf("risk = %s", d.Risk)
	}
}

func TestNewEngineErrorsNameTheRule(t *testing.T) {
	tests := []struct {
		name     string
		policies []config.Policy
		risk     []config.RiskRule
		want     []string
	}{
		{name: "syntax error",
			policies: []config.Policy{{Name: "ok", Decision: "allow"}, {Name: "broken", Decision: "allow", When: `identity.groups contains "x"`}},
			want:     []string{`policies[1] "broken": when: `, "Syntax error"}},
		{name: "not a bool",
			policies: []config.Policy{{Name: "stringy", Decision: "allow", When: `identity.email`}},
			want:     []string{`policies[0] "stringy": when: `, "must be a bool expression"}},
		{name: "undeclared variable",
			policies: []config.Policy{{Name: "typo", Decision: "deny", When: `user.name == "x"`}},
			want:     []string{`policies[0] "typo": when: `, "undeclared reference to 'user'"}},
		{name: "wrong types",
			policies: []config.Policy{{Name: "types", Decision: "deny", When: `now > 5`}},
			want:     []string{`policies[0] "types": when: `, "no matching overload"}},
		{name: "empty action pattern",
			policies: []config.Policy{{Name: "empty", Decision: "deny", Actions: []string{""}}},
			want:     []string{`policies[0] "empty": actions: empty action pattern`}},
		{name: "regex-looking pattern",
			policies: []config.Policy{{Name: "regexy", Decision: "deny", Actions: []string{"ec2:[A-Z]*"}}},
			want:     []string{`policies[0] "regexy": actions: bad action pattern`}},
		{name: "unknown decision",
			policies: []config.Policy{{Name: "maybe", Decision: "maybe"}},
			want:     []string{`policies[0] "maybe": decision: unknown decision "maybe"`}},
		{name: "unknown risk tier",
			policies: []config.Policy{{Name: "tiers", Decision: "allow", Risk: []string{"scary"}}},
			want:     []string{`policies[0] "tiers": risk: unknown risk tier "scary"`}},
		{name: "unknown cloud",
			policies: []config.Policy{{Name: "clouds", Decision: "allow", Clouds: []string{"oracle"}}},
			want:     []string{`policies[0] "clouds": clouds: unknown cloud "oracle"`}},
		{name: "hold without approvers",
			policies: []config.Policy{{Name: "lonely", Decision: "hold"}},
			want:     []string{`policies[0] "lonely": approvers.groups: required`}},
		{name: "bad risk override",
			risk: []config.RiskRule{{Actions: []string{"s3:*"}, Tier: "meh"}, {Tier: "read"}},
			want: []string{`risk[0]: tier: unknown risk tier "meh"`, `risk[1]: actions: required`}},
		{name: "every problem at once",
			policies: []config.Policy{
				{Name: "a", Decision: "allow", When: `1 +`},
				{Name: "b", Decision: "allow"},
				{Name: "c", Decision: "allow", When: `"x"`},
			},
			want: []string{`policies[0] "a": when:`, `policies[2] "c": when:`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewEngine(&config.Config{Policies: tc.policies, Risk: tc.risk})
			if err == nil {
				t.Fatal("NewEngine succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestExplain(t *testing.T) {
	e := engineFor(t, "example")
	tr := e.Explain(Input{Identity: who("engineers"), Action: act(catalog.AWS, "ec2:TerminateInstances", catalog.Destructive), Target: "prod-aws"})
	if len(tr) != 3 {
		t.Fatalf("got %d traces", len(tr))
	}
	want := []struct {
		matched, decides bool
		why              string
	}{
		{false, false, "risk destructive not in [read]"},
		{false, false, `when '"oncall" in identity.groups' is false`},
		{true, true, "no conditions"},
	}
	for i, w := range want {
		if tr[i].Matched != w.matched || tr[i].Decides != w.decides || !strings.Contains(tr[i].Why, w.why) {
			t.Errorf("trace[%d] = matched %v decides %v why %q; want %v %v %q", i, tr[i].Matched, tr[i].Decides, tr[i].Why, w.matched, w.decides, w.why)
		}
	}

	// A failing condition decides (deny) in Explain just as in Decide.
	e = engineFor(t, "network")
	tr = e.Explain(Input{Identity: who(), Action: act(catalog.AWS, "iam:PutRolePolicy", catalog.Privilege), Target: "prod-aws"})
	if !tr[0].Decides || tr[0].Err == nil || tr[1].Decides || !tr[1].Matched {
		t.Errorf("traces = %+v", tr)
	}
}

func TestRisk(t *testing.T) {
	e := engineFor(t, "risk-overrides")
	for _, tc := range []struct {
		action string
		in     catalog.Risk
		want   catalog.Risk
	}{
		{"s3:PutBucketPolicy", catalog.Write, catalog.Privilege},
		{"S3:putbucketpolicy", catalog.Write, catalog.Privilege},
		{"ec2:DescribeVpcs", catalog.Read, catalog.Write},
		{"ec2:RunInstances", catalog.Write, catalog.Write},
		{"ec2:Whatever", catalog.RiskUnknown, catalog.Privilege},
	} {
		if got := e.Risk(act(catalog.AWS, tc.action, tc.in)); got != tc.want {
			t.Errorf("Risk(%s, %s) = %s, want %s", tc.action, tc.in, got, tc.want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	e := engineFor(b, "example")
	cases := map[string]Input{
		"read allow (no CEL)": {Identity: who("engineers"), Action: act(catalog.AWS, "ec2:DescribeInstances", catalog.Read), Target: "prod-aws"},
		"hold via CEL":        {Identity: who("engineers", "oncall"), Action: act(catalog.AWS, "ec2:TerminateInstances", catalog.Destructive), Target: "prod-aws"},
	}
	for name, in := range cases {
		in.Now = at("2025-07-16T08:00:00Z")
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(in); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		})
	}
	b.Run("regex and time", func(b *testing.B) {
		e := engineFor(b, "ticket")
		in := Input{Identity: who(), Action: act(catalog.AWS, "ec2:TerminateInstances", catalog.Destructive), Target: "prod-aws",
			Request: RequestContext{Ticket: "OPS-1", Reason: "OPS-1: rotate the canary fleet"}, Now: at("2025-07-16T08:00:00Z")}
		b.ReportAllocs()
		for b.Loop() {
			if d := e.Decide(in); d.Effect != Hold {
				b.Fatal(d.Why())
			}
		}
	})
}
