package audit

import (
	"bytes"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/airlockhq/airlock/config"
)

type person struct {
	email  string
	groups []string
}

// history generates a deterministic month of audit events for several teams. Planted patterns:
//   - payments: ec2:RebootInstances and rds:RebootDBInstance on prod-aws are held and always
//     approved within minutes by bob or carol: an allow-rule candidate;
//   - data: s3:DeleteObject is held and sometimes denied: not a candidate;
//   - platform: iam:AttachRolePolicy is always approved but after hours: not a candidate;
//     ec2:TerminateInstances is approved quickly but by six different people: not a candidate;
//   - contractors are denied IAM calls; c1 gets credentials for prod-gcp and never uses them,
//     s1 (security) gets prod-azure and never uses it: standing access.
func history(callsPerDay int) iter.Seq[Event] {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var people []person
	for _, t := range []struct {
		team string
		n    int
		more []string
	}{{"payments", 8, []string{"engineers"}}, {"platform", 8, []string{"engineers", "oncall"}},
		{"data", 8, []string{"engineers"}}, {"security", 4, nil}, {"contractors", 3, nil}} {
		for i := 1; i <= t.n; i++ {
			people = append(people, person{fmt.Sprintf("%s%d@example.com", t.team[:2], i), append([]string{t.team}, t.more...)})
		}
	}
	reads := []string{"ec2:DescribeInstances", "s3:GetObject", "s3:ListBucket", "rds:DescribeDBInstances", "logs:GetLogEvents"}
	return func(yield func(Event) bool) {
		rng := rand.New(rand.NewPCG(7, 11))
		seq := 0
		for day := range 30 {
			dayStart := start.Add(time.Duration(day) * 24 * time.Hour)
			for _, p := range people {
				id := Identity{Subject: p.email, Email: p.email, Groups: p.groups}
				team := p.groups[0]
				ev := func(kind string, t time.Time) Event {
					seq++
					return Event{V: 1, ID: fmt.Sprintf("e%08d", seq), Time: t, Kind: kind, Identity: id, Target: "prod-aws", Cloud: "aws"}
				}
				t := dayStart.Add(8*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
				// credentials at the start of the day
				cred := ev(KindCredential, t)
				cred.Step = "issued"
				if !yield(cred) {
					return
				}
				if p.email == "co1@example.com" || p.email == "se1@example.com" {
					extra := ev(KindCredential, t)
					extra.Step, extra.Target = "issued", map[bool]string{true: "prod-gcp", false: "prod-azure"}[p.email == "co1@example.com"]
					if !yield(extra) {
						return
					}
				}
				for range callsPerDay {
					t = t.Add(time.Duration(rng.IntN(300)) * time.Second)
					action, risk, held := reads[rng.IntN(len(reads))], "read", false
					approvers, latency, denied := []string(nil), time.Duration(0), false
					r := rng.Float64()
					switch {
					case team == "payments" && r < 0.05:
						action, risk, held = []string{"ec2:RebootInstances", "rds:RebootDBInstance"}[rng.IntN(2)], "destructive", true
						approvers = []string{[]string{"bob@example.com", "carol@example.com"}[rng.IntN(2)]}
						latency = time.Duration(60+rng.IntN(300)) * time.Second
					case team == "data" && r < 0.04:
						action, risk, held = "s3:DeleteObject", "destructive", true
						approvers = []string{"bob@example.com"}
						latency = time.Duration(120+rng.IntN(600)) * time.Second
						denied = rng.Float64() < 0.15
					case team == "platform" && r < 0.02:
						action, risk, held = "iam:AttachRolePolicy", "privilege", true
						approvers = []string{"erin@example.com"}
						latency = time.Duration(2+rng.IntN(4)) * time.Hour
					case team == "platform" && r < 0.04:
						action, risk, held = "ec2:TerminateInstances", "destructive", true
						approvers = []string{fmt.Sprintf("lead%d@example.com", rng.IntN(6))}
						latency = time.Duration(30+rng.IntN(200)) * time.Second
					case team == "contractors" && r < 0.1:
						d := ev(KindDecision, t)
						d.Action, d.Risk, d.Decision, d.Policy = "iam:CreateAccessKey", "privilege", "deny", "no-iam-for-contractors"
						if !yield(d) {
							return
						}
						continue
					case r > 0.9:
						action, risk = "s3:PutObject", "write"
					}
					d := ev(KindDecision, t)
					d.Action, d.Risk = action, risk
					if !held {
						d.Decision, d.Policy = "allow", "reads-and-writes"
						f := ev(KindForward, t.Add(80*time.Millisecond))
						f.Action, f.Risk, f.Decision, f.UpstreamStatus = action, risk, "allow", 200
						if !yield(d) || !yield(f) {
							return
						}
						continue
					}
					d.Decision, d.Policy, d.Step = "hold", "prod-destructive-needs-sre", "held"
					d.ApprovalID = fmt.Sprintf("apr-%d", seq)
					a := ev(KindApproval, t.Add(latency))
					a.RequestID, a.Action, a.Risk, a.Approvers = d.ApprovalID, action, risk, approvers
					if denied {
						a.Step, a.Decision = "denied", "deny"
						if !yield(d) || !yield(a) {
							return
						}
						continue
					}
					a.Step, a.Decision = "approved", "allow"
					g := ev(KindDecision, a.Time.Add(time.Second))
					g.Action, g.Risk, g.Decision, g.Step, g.ApprovalID = action, risk, "allow", "grant_used", d.ApprovalID
					f := ev(KindForward, g.Time.Add(50*time.Millisecond))
					f.Action, f.Risk, f.Decision, f.UpstreamStatus = action, risk, "allow", 200
					if !yield(d) || !yield(a) || !yield(g) || !yield(f) {
						return
					}
				}
			}
		}
	}
}

func TestReportOverAMonth(t *testing.T) {
	const calls = 100 // ~190k events; the report takes well under a second
	n := 0
	for range history(calls) {
		n++
	}
	t.Logf("%d events", n)
	if n < 150_000 {
		t.Fatalf("history too small: %d", n)
	}
	start := time.Now()
	r := BuildReport(history(calls), ReportOptions{Since: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)})
	t.Logf("report built in %v", time.Since(start))

	if r.Events != n || len(r.Days) != 30 || r.Totals.Teams != 5 || r.Totals.Identities != 31 {
		t.Fatalf("totals: events %d/%d days %d %+v", r.Events, n, len(r.Days), r.Totals)
	}
	// Exactly one candidate: payments' reboots, with the right groups, targets and approvers.
	if len(r.Candidates) != 1 {
		for _, c := range r.Candidates {
			t.Log(c.PolicyYAML)
		}
		t.Fatalf("%d candidates, want 1", len(r.Candidates))
	}
	c := r.Candidates[0]
	if c.Team != "payments" || c.Target != "prod-aws" || !slices.Equal(c.Approvers, []string{"bob@example.com", "carol@example.com"}) {
		t.Fatalf("candidate: %+v", c)
	}
	var rules []config.Policy
	if err := yaml.Unmarshal([]byte(c.PolicyYAML), &rules); err != nil {
		t.Fatalf("candidate YAML does not parse: %v\n%s", err, c.PolicyYAML)
	}
	if len(rules) != 1 || rules[0].Decision != "allow" || !slices.Equal(rules[0].Groups, []string{"payments"}) ||
		!slices.Equal(rules[0].Actions, []string{"ec2:RebootInstances", "rds:RebootDBInstance"}) ||
		!slices.Equal(rules[0].Targets, []string{"prod-aws"}) || rules[0].Name == "" {
		t.Fatalf("candidate rule: %+v\n%s", rules, c.PolicyYAML)
	}
	for _, a := range c.Actions {
		if a.MedianSeconds < 60 || a.MedianSeconds > 360 {
			t.Fatalf("median %v outside the generated 1–6 minutes", a.MedianSeconds)
		}
	}
	// Standing access: exactly the two unused grants.
	var standing []string
	for _, s := range r.Standing {
		standing = append(standing, s.Identity+" "+s.Target)
		if s.Issued != 30 {
			t.Errorf("%s issued %d times, want 30", s.Identity, s.Issued)
		}
	}
	if !slices.Equal(standing, []string{"co1@example.com prod-gcp", "se1@example.com prod-azure"}) {
		t.Fatalf("standing access: %v", standing)
	}
	if len(r.Denials.ByRule) != 1 || r.Denials.ByRule[0].Name != "no-iam-for-contractors" || r.Denials.RequestsDenied == 0 {
		t.Fatalf("denials: %+v", r.Denials)
	}
	if r.ApprovalLatency.Count != r.Totals.Approved || r.ApprovalLatency.P99 < 2*3600 {
		t.Fatalf("latency: %+v (approved %d)", r.ApprovalLatency, r.Totals.Approved)
	}
	if r.Teams[0].Tiers["read"] == 0 || len(r.TopActions) == 0 {
		t.Fatalf("usage: %+v", r.Teams[0])
	}

	var html, md, js bytes.Buffer
	if err := RenderHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if err := RenderMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, html.String())
	if out := os.Getenv("AIRLOCK_REPORT_OUT"); out != "" { // for looking at it
		_ = os.WriteFile(out, html.Bytes(), 0o644)
	}
	if !strings.Contains(md.String(), "rds:RebootDBInstance") || !strings.Contains(md.String(), "co1@example.com") {
		t.Fatal("markdown misses the findings")
	}
}

// checkSelfContained asserts charts are inline and nothing is fetched from elsewhere.
func checkSelfContained(t *testing.T, html string) {
	t.Helper()
	if strings.Count(html, "<svg") < 3 {
		t.Fatalf("expected three inline SVG charts")
	}
	rest := strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, "")
	if m := regexp.MustCompile(`https?://`).FindString(rest); m != "" {
		i := strings.Index(rest, m)
		t.Fatalf("external URL in the HTML: %q", rest[max(0, i-40):min(len(rest), i+60)])
	}
	for _, bad := range []string{"<script", "<link", "@import", "url("} {
		if strings.Contains(rest, bad) {
			t.Fatalf("HTML contains %q", bad)
		}
	}
}

func TestLatencyPercentilesKnownDistribution(t *testing.T) {
	// 1000 approvals with latencies 1s..1000s (shuffled): nearest-rank p50 = 500s, p90 = 900s,
	// p99 = 990s.
	b := NewReportBuilder(ReportOptions{})
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	perm := rand.New(rand.NewPCG(1, 2)).Perm(1000)
	for i, k := range perm {
		id := fmt.Sprintf("r%d", i)
		b.Add(&Event{Kind: KindDecision, Decision: "hold", ApprovalID: id, Time: t0, Action: "x:Y"})
		b.Add(&Event{Kind: KindApproval, Step: "approved", RequestID: id, Time: t0.Add(time.Duration(k+1) * time.Second), Action: "x:Y"})
	}
	l := b.Report().ApprovalLatency
	if l.Count != 1000 || l.P50 != 500 || l.P90 != 900 || l.P99 != 990 || l.Max != 1000 {
		t.Fatalf("%+v", l)
	}
	sum := 0
	for _, bk := range l.Histogram {
		sum += bk.Count
	}
	if sum != 1000 || l.Histogram[0].Count != 59 { // < 60s: 1..59
		t.Fatalf("histogram %+v", l.Histogram)
	}
	if math.IsNaN(l.P50) {
		t.Fatal("nan")
	}
}

func TestReportEmpty(t *testing.T) {
	r := BuildReport(func(func(Event) bool) {}, ReportOptions{})
	var html bytes.Buffer
	if err := RenderHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, html.String())
}
