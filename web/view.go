package web

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
)

// requestView is a request as one viewer sees it at one moment: what the templates and the
// event stream show, with every decision about buttons made here rather than in templates.
type requestView struct {
	ID   string `json:"id"`
	Path string `json:"-"`

	State      string `json:"state"`
	StateLabel string `json:"state_label"`
	// Summary is one sentence on where the request stands; the live region reads it out.
	Summary string `json:"summary"`

	Requester       string   `json:"-"`
	RequesterGroups []string `json:"-"`
	Mine            bool     `json:"-"`

	Cloud, Service, Operation, IAMAction string `json:"-"`
	Resource, Region, Account, Target    string `json:"-"`
	// Source is what the call also reads (a copy's source); Also the other permissions it needs.
	Source, Also             string `json:"-"`
	Risk, RiskLabel          string `json:"-"`
	Rule, RuleMessage        string `json:"-"`
	Reason, Ticket, SourceIP string `json:"-"`

	Created, Expires timeView  `json:"-"`
	Decided          *timeView `json:"decided,omitempty"`

	ApproverGroups []string       `json:"-"`
	AllowSelf      bool           `json:"-"`
	Required       int            `json:"required"`
	Have           int            `json:"have"`
	Needed         int            `json:"needed"`
	Approvals      []approvalView `json:"approvals"`
	DeniedBy       string         `json:"denied_by,omitempty"`
	DenyComment    string         `json:"deny_comment,omitempty"`
	GrantTerms     string         `json:"-"`

	// CanApprove and CanDeny decide which buttons the viewer gets; WhyNot explains a missing
	// approve button.
	CanApprove bool   `json:"can_approve"`
	CanDeny    bool   `json:"-"`
	DenyLabel  string `json:"-"`
	WhyNot     string `json:"why_not,omitempty"`
	// AwaitsViewer marks pending requests the viewer may approve now (the list highlights them).
	AwaitsViewer bool `json:"-"`
}

type approvalView struct {
	By      string   `json:"by"`
	Comment string   `json:"comment,omitempty"`
	At      timeView `json:"at"`
}

// timeView is one instant, machine-readable (ISO), absolute for people (UTC) and relative to
// now ("5 minutes ago").
type timeView struct {
	ISO      string `json:"iso"`
	Absolute string `json:"absolute"`
	Relative string `json:"relative"`
}

func newTimeView(t, now time.Time) timeView {
	return timeView{ISO: t.UTC().Format(time.RFC3339), Absolute: t.UTC().Format("2006-01-02 15:04:05 UTC"), Relative: relative(t, now)}
}

// relative says how far t is from now in the largest whole unit.
func relative(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var n int
	var unit string
	switch {
	case d < 45*time.Second:
		return "just now"
	case d < 90*time.Minute:
		n, unit = int((d+30*time.Second)/time.Minute), "minute"
	case d < 36*time.Hour:
		n, unit = int((d+30*time.Minute)/time.Hour), "hour"
	default:
		n, unit = int((d+12*time.Hour)/(24*time.Hour)), "day"
	}
	if n != 1 {
		unit += "s"
	}
	if future {
		return fmt.Sprintf("in %d %s", n, unit)
	}
	return fmt.Sprintf("%d %s ago", n, unit)
}

var stateLabels = map[approval.State]string{
	approval.StatePending:  "Pending",
	approval.StateApproved: "Approved",
	approval.StateDenied:   "Denied",
	approval.StateExpired:  "Expired",
}

var riskLabels = map[catalog.Risk]string{
	catalog.Read:        "Read",
	catalog.Write:       "Write",
	catalog.Destructive: "Destructive",
	catalog.Privilege:   "Privilege",
}

func newRequestView(r *approval.Request, viewer authn.Identity, now time.Time) *requestView {
	v := &requestView{
		ID: r.ID, Path: requestPath(r.ID),
		State: string(r.State), StateLabel: stateLabels[r.State],
		Requester: r.Requester.Name(), RequesterGroups: r.Requester.Groups,
		Mine:  viewer.Subject != "" && viewer.Subject == r.Requester.Subject,
		Cloud: r.Action.Cloud, Service: r.Action.Service, Operation: r.Action.Operation, IAMAction: r.Action.IAMAction,
		Resource: r.Action.Resource, Region: r.Action.Region, Account: r.Action.Account, Target: r.Target,
		Source: r.Action.Source, Also: alsoText(r.Action.Also),
		Risk: r.Action.Risk.String(), RiskLabel: riskLabels[r.Action.Risk],
		Rule: r.Rule, RuleMessage: r.Message,
		Reason: r.Context.Reason, Ticket: r.Context.Ticket, SourceIP: r.Context.SourceIP,
		Created: newTimeView(r.CreatedAt, now), Expires: newTimeView(r.ExpiresAt, now),
		ApproverGroups: r.Approvers.Groups, AllowSelf: r.Approvers.AllowSelf,
		Required: max(r.Approvers.Count, 1), Have: len(r.Approvals), Needed: r.Needed(),
		Approvals:  []approvalView{},
		GrantTerms: grantTerms(r.Grant),
	}
	if v.StateLabel == "" {
		v.StateLabel = string(r.State)
	}
	if v.RiskLabel == "" {
		v.Risk, v.RiskLabel = "unknown", "Unknown"
	}
	if !r.DecidedAt.IsZero() {
		t := newTimeView(r.DecidedAt, now)
		v.Decided = &t
	}
	for _, a := range r.Approvals {
		v.Approvals = append(v.Approvals, approvalView{By: a.By.Name(), Comment: a.Comment, At: newTimeView(a.At, now)})
	}
	if r.DeniedBy != nil {
		v.DeniedBy, v.DenyComment = r.DeniedBy.Name(), r.Comment
	}
	v.Summary = summary(r, v)
	v.decideButtons(r, viewer)
	return v
}

func (v *requestView) decideButtons(r *approval.Request, viewer authn.Identity) {
	v.DenyLabel = "Deny"
	if v.Mine {
		v.DenyLabel = "Withdraw request"
	}
	if r.State != approval.StatePending {
		v.WhyNot = "This request is " + strings.ToLower(v.StateLabel) + ": no further decision is possible."
		return
	}
	v.CanDeny = r.CheckDenier(viewer) == nil
	err := r.CheckApprover(viewer)
	v.CanApprove = err == nil
	v.AwaitsViewer = v.CanApprove
	groups := strings.Join(r.Approvers.Groups, ", ")
	switch {
	case err == nil:
	case errors.Is(err, approval.ErrSelfApproval):
		v.WhyNot = "You asked for this call, so you cannot approve it: rule " + r.Rule + " needs someone else in " + groups + ". You can withdraw it."
	case errors.Is(err, approval.ErrAlreadyApproved):
		v.WhyNot = fmt.Sprintf("You have approved this request. It needs %d more %s from someone else in %s.",
			v.Needed, pluralWord(v.Needed, "approval", "approvals"), groups)
	default:
		v.WhyNot = "Only members of " + groups + " may approve this request, and you are not one."
	}
}

func summary(r *approval.Request, v *requestView) string {
	switch r.State {
	case approval.StatePending:
		s := fmt.Sprintf("Waiting for %d more %s from %s.", v.Needed, pluralWord(v.Needed, "approval", "approvals"),
			strings.Join(r.Approvers.Groups, ", "))
		if len(v.Approvals) > 0 {
			s = "Approved so far by " + approverNames(v.Approvals) + ". " + s
		}
		return s
	case approval.StateApproved:
		return "Approved by " + approverNames(v.Approvals) + ". The held call may go through."
	case approval.StateDenied:
		s := "Denied by " + v.DeniedBy + "."
		if v.DeniedBy == r.Requester.Name() {
			s = "Withdrawn by the requester."
		}
		if v.DenyComment != "" {
			s += " Comment: " + v.DenyComment
		}
		return s
	case approval.StateExpired:
		return "Expired without a decision."
	}
	return ""
}

func approverNames(as []approvalView) string {
	names := make([]string, 0, len(as))
	for _, a := range as {
		names = append(names, a.By)
	}
	return strings.Join(names, ", ")
}

func grantTerms(g approval.GrantTerms) string {
	if g.Uses <= 0 && g.TTL <= 0 {
		return ""
	}
	scope := "this resource only"
	if g.Scope == approval.ScopeAction {
		scope = "this action on any resource of the target"
	}
	return fmt.Sprintf("%d %s within %s, %s", g.Uses, pluralWord(g.Uses, "use", "uses"), shortDuration(g.TTL), scope)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// shortDuration prints 1h, 1h30m, 45m, 30s rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// alsoText lists the other permissions a call needs, as "s3:GetObject on arn:...".
func alsoText(also []catalog.Permission) string {
	parts := make([]string, 0, len(also))
	for _, p := range also {
		if p.Resource == "" {
			parts = append(parts, p.Action)
			continue
		}
		parts = append(parts, p.Action+" on "+p.Resource)
	}
	return strings.Join(parts, "; ")
}
