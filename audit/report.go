package audit

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"time"
)

// ReportOptions tunes BuildReport.
type ReportOptions struct {
	// Since and Until bound the events considered (zero: unbounded).
	Since, Until time.Time
	// TeamOf names the team of a requester (default: the first group, "(no group)" without one).
	TeamOf func(Identity) string
	// An action is an allow-rule candidate for a team and target when it was held at least
	// CandidateMinRequests times (default 5), every request was approved (none denied or
	// expired), the median approval latency is at most CandidateMaxMedian (default 15m), and
	// at most CandidateMaxApprovers distinct people approved them (default 3).
	CandidateMinRequests  int
	CandidateMaxMedian    time.Duration
	CandidateMaxApprovers int
	// Top bounds the lists of actions, identities and denials (default 10; teams are all kept).
	Top int
	// Now stamps the report (default time.Now).
	Now func() time.Time
}

// TeamFromGroupPrefix returns a TeamOf that picks the first group with prefix (e.g. "team-"),
// falling back to the first group.
func TeamFromGroupPrefix(prefix string) func(Identity) string {
	return func(id Identity) string {
		for _, g := range id.Groups {
			if strings.HasPrefix(g, prefix) {
				return g
			}
		}
		return firstGroup(id)
	}
}

func firstGroup(id Identity) string {
	if len(id.Groups) > 0 {
		return id.Groups[0]
	}
	return "(no group)"
}

func (o *ReportOptions) setDefaults() {
	if o.TeamOf == nil {
		o.TeamOf = firstGroup
	}
	if o.CandidateMinRequests <= 0 {
		o.CandidateMinRequests = 5
	}
	if o.CandidateMaxMedian <= 0 {
		o.CandidateMaxMedian = 15 * time.Minute
	}
	if o.CandidateMaxApprovers <= 0 {
		o.CandidateMaxApprovers = 3
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Report is the access-pattern report: what each team and person used, which approvals are
// routine enough to become rules, which access is standing but unused, and the denials.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
	FirstEvent  time.Time `json:"first_event,omitzero"`
	LastEvent   time.Time `json:"last_event,omitzero"`
	Events      int       `json:"events"`
	Totals      Totals    `json:"totals"`
	// Days counts decisions per UTC day.
	Days            []DayCount       `json:"days"`
	Teams           []UsageReport    `json:"teams"`
	Identities      []UsageReport    `json:"identities"`
	TopActions      []ActionUse      `json:"top_actions"`
	ApprovalLatency LatencyStats     `json:"approval_latency"`
	Candidates      []Candidate      `json:"candidates"`
	Standing        []StandingAccess `json:"standing_access"`
	Denials         Denials          `json:"denials"`
}

// Totals are the headline numbers.
type Totals struct {
	Decisions   int `json:"decisions"`
	Allowed     int `json:"allowed"`
	Held        int `json:"held"`
	Denied      int `json:"denied"`
	Forwarded   int `json:"forwarded"`
	Approved    int `json:"approved"`
	Credentials int `json:"credentials_issued"`
	Identities  int `json:"identities"`
	Teams       int `json:"teams"`
}

// DayCount is one day of decisions.
type DayCount struct {
	Day   string `json:"day"` // YYYY-MM-DD (UTC)
	Allow int    `json:"allow"`
	Hold  int    `json:"hold"`
	Deny  int    `json:"deny"`
}

// ActionUse is how often an action was called (forwarded) and at which tier.
type ActionUse struct {
	Action string `json:"action"`
	Risk   string `json:"risk,omitempty"`
	Count  int    `json:"count"`
}

// UsageReport is one team's or one identity's activity.
type UsageReport struct {
	Name       string         `json:"name"`
	Team       string         `json:"team,omitempty"`    // identities
	Members    int            `json:"members,omitempty"` // teams
	Decisions  map[string]int `json:"decisions"`         // allow / hold / deny
	Forwarded  int            `json:"forwarded"`
	Tiers      map[string]int `json:"tiers"` // forwarded calls by risk tier
	Actions    []ActionUse    `json:"actions"`
	TopActions int            `json:"distinct_actions"`
}

// LatencyStats summarises approval latencies (hold to approval), nearest-rank percentiles.
type LatencyStats struct {
	Count     int             `json:"count"`
	P50       float64         `json:"p50_seconds"`
	P90       float64         `json:"p90_seconds"`
	P99       float64         `json:"p99_seconds"`
	Max       float64         `json:"max_seconds"`
	Histogram []LatencyBucket `json:"histogram"`
}

// LatencyBucket counts latencies up to Le seconds (the last bucket has Le = +Inf, written 0).
type LatencyBucket struct {
	Label string  `json:"label"`
	Le    float64 `json:"le_seconds"`
	Count int     `json:"count"`
}

// Candidate is a set of held actions that a team always got approved, quickly, by the same
// few people: a rule that allows them would save everyone the wait.
type Candidate struct {
	Team       string            `json:"team"`
	Target     string            `json:"target"`
	Actions    []CandidateAction `json:"actions"`
	Approvers  []string          `json:"approvers"`
	Requests   int               `json:"requests"`
	PolicyYAML string            `json:"policy_yaml"`
}

// CandidateAction is one action of a Candidate.
type CandidateAction struct {
	Action        string  `json:"action"`
	Risk          string  `json:"risk,omitempty"`
	Requests      int     `json:"requests"`
	MedianSeconds float64 `json:"median_seconds"`
}

// StandingAccess is a credential issued to someone for a target they never called through
// Airlock in the period: access to remove.
type StandingAccess struct {
	Identity   string    `json:"identity"`
	Team       string    `json:"team"`
	Target     string    `json:"target"`
	Issued     int       `json:"issued"`
	LastIssued time.Time `json:"last_issued"`
}

// Denials are refused calls and requests.
type Denials struct {
	Total      int     `json:"total"`
	ByRule     []Count `json:"by_rule"`
	ByIdentity []Count `json:"by_identity"`
	// Requests denied by an approver or expired unanswered.
	RequestsDenied  int `json:"requests_denied"`
	RequestsExpired int `json:"requests_expired"`
}

// Count is a named count.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// ReportBuilder aggregates events one at a time, so a report over millions of events holds
// only the aggregates (per identity, action, day, open hold) and one float32 per approval.
type ReportBuilder struct {
	opts   ReportOptions
	report Report

	days      map[string]*DayCount
	teams     map[string]*usage
	idents    map[string]*usage
	actions   map[string]*ActionUse
	holds     map[string]hold // approval request ID → first hold
	latencies []float32
	cands     map[candKey]*candAgg
	issued    map[identTarget]*StandingAccess
	used      map[identTarget]struct{}
	denyRule  map[string]int
	denyIdent map[string]int
}

type usage struct {
	name, team string
	members    map[string]struct{}
	decisions  map[string]int
	forwarded  int
	tiers      map[string]int
	actions    map[string]*ActionUse
}

type hold struct {
	at time.Time
}

type candKey struct{ team, target, action string }

type candAgg struct {
	risk                      string
	approved, denied, expired int
	approvers                 map[string]int
	latencies                 []float32
}

type identTarget struct{ ident, target string }

// NewReportBuilder starts a report.
func NewReportBuilder(opts ReportOptions) *ReportBuilder {
	opts.setDefaults()
	return &ReportBuilder{
		opts:      opts,
		days:      map[string]*DayCount{},
		teams:     map[string]*usage{},
		idents:    map[string]*usage{},
		actions:   map[string]*ActionUse{},
		holds:     map[string]hold{},
		cands:     map[candKey]*candAgg{},
		issued:    map[identTarget]*StandingAccess{},
		used:      map[identTarget]struct{}{},
		denyRule:  map[string]int{},
		denyIdent: map[string]int{},
	}
}

// BuildReport aggregates events (in chain order) into a report.
func BuildReport(events iter.Seq[Event], opts ReportOptions) Report {
	b := NewReportBuilder(opts)
	for e := range events {
		b.Add(&e)
	}
	return b.Report()
}

func identityName(id Identity) string {
	if id.Email != "" {
		return id.Email
	}
	if id.Subject != "" {
		return id.Subject
	}
	return "(anonymous)"
}

func (b *ReportBuilder) usageOf(m map[string]*usage, name, team string) *usage {
	u := m[name]
	if u == nil {
		u = &usage{name: name, team: team, members: map[string]struct{}{}, decisions: map[string]int{},
			tiers: map[string]int{}, actions: map[string]*ActionUse{}}
		m[name] = u
	}
	return u
}

// Add aggregates one event.
func (b *ReportBuilder) Add(e *Event) {
	if (!b.opts.Since.IsZero() && e.Time.Before(b.opts.Since)) || (!b.opts.Until.IsZero() && !e.Time.Before(b.opts.Until)) {
		return
	}
	r := &b.report
	r.Events++
	if r.FirstEvent.IsZero() || e.Time.Before(r.FirstEvent) {
		r.FirstEvent = e.Time
	}
	if e.Time.After(r.LastEvent) {
		r.LastEvent = e.Time
	}
	if e.Kind == KindLogin {
		return
	}
	name := identityName(e.Identity)
	team := b.opts.TeamOf(e.Identity)
	ident := b.usageOf(b.idents, name, team)
	tm := b.usageOf(b.teams, team, "")
	tm.members[name] = struct{}{}

	switch e.Kind {
	case KindDecision:
		r.Totals.Decisions++
		ident.decisions[e.Decision]++
		tm.decisions[e.Decision]++
		day := e.Time.UTC().Format(time.DateOnly)
		d := b.days[day]
		if d == nil {
			d = &DayCount{Day: day}
			b.days[day] = d
		}
		switch e.Decision {
		case "allow":
			r.Totals.Allowed++
			d.Allow++
		case "hold":
			r.Totals.Held++
			d.Hold++
			if key := approvalKey(e); key != "" {
				if _, seen := b.holds[key]; !seen {
					b.holds[key] = hold{at: e.Time}
				}
			}
		case "deny":
			r.Totals.Denied++
			d.Deny++
			b.denyRule[cmp.Or(e.Policy, "(no rule)")]++
			b.denyIdent[name]++
		}
	case KindForward:
		r.Totals.Forwarded++
		for _, u := range []*usage{ident, tm} {
			u.forwarded++
			u.tiers[cmp.Or(e.Risk, "unknown")]++
			addAction(u.actions, e.Action, e.Risk)
		}
		addAction(b.actions, e.Action, e.Risk)
		b.used[identTarget{name, e.Target}] = struct{}{}
	case KindCredential:
		r.Totals.Credentials++
		k := identTarget{name, e.Target}
		s := b.issued[k]
		if s == nil {
			s = &StandingAccess{Identity: name, Team: team, Target: e.Target}
			b.issued[k] = s
		}
		s.Issued++
		if e.Time.After(s.LastIssued) {
			s.LastIssued = e.Time
		}
	case KindApproval:
		b.addApproval(e, team)
	}
}

func approvalKey(e *Event) string { return cmp.Or(e.ApprovalID, e.RequestID) }

func addAction(m map[string]*ActionUse, action, risk string) {
	if action == "" {
		return
	}
	a := m[action]
	if a == nil {
		a = &ActionUse{Action: action, Risk: risk}
		m[action] = a
	}
	a.Count++
}

func (b *ReportBuilder) addApproval(e *Event, team string) {
	key := approvalKey(e)
	var final bool
	c := b.cands[candKey{team, e.Target, e.Action}]
	if c == nil {
		c = &candAgg{risk: e.Risk, approvers: map[string]int{}}
		b.cands[candKey{team, e.Target, e.Action}] = c
	}
	switch e.Step {
	case "approved":
		final = true
		b.report.Totals.Approved++
		c.approved++
		for _, a := range e.Approvers {
			c.approvers[a]++
		}
		if h, ok := b.holds[key]; ok {
			lat := float32(e.Time.Sub(h.at).Seconds())
			b.latencies = append(b.latencies, lat)
			c.latencies = append(c.latencies, lat)
		}
	case "denied":
		final = true
		c.denied++
		b.report.Denials.RequestsDenied++
	case "expired":
		final = true
		c.expired++
		b.report.Denials.RequestsExpired++
	}
	if final {
		delete(b.holds, key)
	}
}

// Report finishes the aggregation. The builder may keep receiving events afterwards.
func (b *ReportBuilder) Report() Report {
	r := b.report
	r.GeneratedAt = b.opts.Now().UTC()
	r.Since, r.Until = b.opts.Since, b.opts.Until
	top := b.opts.Top

	r.Days = make([]DayCount, 0, len(b.days))
	for _, d := range b.days {
		r.Days = append(r.Days, *d)
	}
	slices.SortFunc(r.Days, func(x, y DayCount) int { return strings.Compare(x.Day, y.Day) })

	r.Teams = usageReports(b.teams, 0, top)
	r.Identities = usageReports(b.idents, 0, top)
	r.Totals.Teams, r.Totals.Identities = len(r.Teams), len(r.Identities)
	r.TopActions = sortedActions(b.actions, top)
	r.ApprovalLatency = latencyStats(b.latencies)
	r.Candidates = b.candidates()

	r.Standing = []StandingAccess{}
	for k, s := range b.issued {
		if _, ok := b.used[k]; !ok {
			r.Standing = append(r.Standing, *s)
		}
	}
	slices.SortFunc(r.Standing, func(x, y StandingAccess) int {
		return cmp.Or(cmp.Compare(y.Issued, x.Issued), strings.Compare(x.Identity, y.Identity), strings.Compare(x.Target, y.Target))
	})

	r.Denials.Total = r.Totals.Denied
	r.Denials.ByRule = sortedCounts(b.denyRule, top)
	r.Denials.ByIdentity = sortedCounts(b.denyIdent, top)
	return r
}

func usageReports(m map[string]*usage, _ int, top int) []UsageReport {
	out := make([]UsageReport, 0, len(m))
	for _, u := range m {
		ur := UsageReport{Name: u.name, Team: u.team, Decisions: u.decisions, Forwarded: u.forwarded,
			Tiers: u.tiers, Actions: sortedActions(u.actions, top), TopActions: len(u.actions)}
		if u.team == "" {
			ur.Members = len(u.members)
		}
		out = append(out, ur)
	}
	slices.SortFunc(out, func(x, y UsageReport) int {
		return cmp.Or(cmp.Compare(total(y.Decisions), total(x.Decisions)), strings.Compare(x.Name, y.Name))
	})
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sortedActions(m map[string]*ActionUse, top int) []ActionUse {
	out := make([]ActionUse, 0, len(m))
	for _, a := range m {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(x, y ActionUse) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), strings.Compare(x.Action, y.Action))
	})
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

func sortedCounts(m map[string]int, top int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	slices.SortFunc(out, func(x, y Count) int { return cmp.Or(cmp.Compare(y.Count, x.Count), strings.Compare(x.Name, y.Name)) })
	if top > 0 && len(out) > top {
		out = out[:top]
	}
	return out
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float32, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1])
}

var latencyBuckets = []struct {
	label string
	le    float64
}{
	{"< 1m", 60}, {"1–2m", 120}, {"2–5m", 300}, {"5–10m", 600}, {"10–30m", 1800},
	{"½–1h", 3600}, {"1–4h", 4 * 3600}, {"4–24h", 24 * 3600}, {"> 1d", math.Inf(1)},
}

func latencyStats(lat []float32) LatencyStats {
	s := LatencyStats{Count: len(lat)}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	s.P50, s.P90, s.P99 = percentile(sorted, 50), percentile(sorted, 90), percentile(sorted, 99)
	if len(sorted) > 0 {
		s.Max = float64(sorted[len(sorted)-1])
	}
	s.Histogram = make([]LatencyBucket, len(latencyBuckets))
	for i, bk := range latencyBuckets {
		le := bk.le
		if math.IsInf(le, 1) {
			le = 0
		}
		s.Histogram[i] = LatencyBucket{Label: bk.label, Le: le}
	}
	for _, v := range sorted {
		for i, bk := range latencyBuckets {
			if float64(v) < bk.le {
				s.Histogram[i].Count++
				break
			}
		}
	}
	return s
}

func (b *ReportBuilder) candidates() []Candidate {
	type group struct{ team, target string }
	groups := map[group]*Candidate{}
	approvers := map[group]map[string]struct{}{}
	for k, c := range b.cands {
		requests := c.approved + c.denied + c.expired
		if k.action == "" || c.denied > 0 || c.expired > 0 || requests < b.opts.CandidateMinRequests ||
			len(c.approvers) > b.opts.CandidateMaxApprovers || len(c.latencies) == 0 {
			continue
		}
		sorted := slices.Clone(c.latencies)
		slices.Sort(sorted)
		median := percentile(sorted, 50)
		if median > b.opts.CandidateMaxMedian.Seconds() {
			continue
		}
		g := group{k.team, k.target}
		cand := groups[g]
		if cand == nil {
			cand = &Candidate{Team: k.team, Target: k.target}
			groups[g] = cand
			approvers[g] = map[string]struct{}{}
		}
		cand.Actions = append(cand.Actions, CandidateAction{Action: k.action, Risk: c.risk, Requests: requests, MedianSeconds: median})
		cand.Requests += requests
		for a := range c.approvers {
			approvers[g][a] = struct{}{}
		}
	}
	out := make([]Candidate, 0, len(groups))
	for g, c := range groups {
		for a := range approvers[g] {
			c.Approvers = append(c.Approvers, a)
		}
		slices.Sort(c.Approvers)
		slices.SortFunc(c.Actions, func(x, y CandidateAction) int { return strings.Compare(x.Action, y.Action) })
		c.PolicyYAML = candidateYAML(c)
		out = append(out, *c)
	}
	slices.SortFunc(out, func(x, y Candidate) int {
		return cmp.Or(cmp.Compare(y.Requests, x.Requests), strings.Compare(x.Team, y.Team), strings.Compare(x.Target, y.Target))
	})
	return out
}

// candidateYAML writes a rule in the config's policies schema, ready to paste above the rule
// that holds these actions (the first matching rule wins).
func candidateYAML(c *Candidate) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %d requests by %s on %s, all approved (by %s)\n", c.Requests, c.Team, cmp.Or(c.Target, "any target"), strings.Join(c.Approvers, ", "))
	fmt.Fprintf(&sb, "- name: %s\n", yamlQuote(slug("allow-routine-"+c.Team+"-"+c.Target)))
	if c.Target != "" {
		fmt.Fprintf(&sb, "  targets: [%s]\n", yamlQuote(c.Target))
	}
	actions := make([]string, len(c.Actions))
	for i, a := range c.Actions {
		actions[i] = yamlQuote(a.Action)
	}
	fmt.Fprintf(&sb, "  actions: [%s]\n", strings.Join(actions, ", "))
	fmt.Fprintf(&sb, "  groups: [%s]\n", yamlQuote(c.Team))
	sb.WriteString("  decision: allow\n")
	return sb.String()
}

// yamlQuote writes a YAML double-quoted scalar (a JSON string is one).
func yamlQuote(s string) string { return string(appendString(nil, s)) }

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
