package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/store/memory"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type recordingAuditor struct {
	mu     sync.Mutex
	events []audit.Event
	fail   error
}

func (a *recordingAuditor) Record(ctx context.Context, e *audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.events = append(a.events, *e)
	return nil
}

func (a *recordingAuditor) steps() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, e.Step)
	}
	return out
}

func (a *recordingAuditor) count(step string) int {
	n := 0
	for _, s := range a.steps() {
		if s == step {
			n++
		}
	}
	return n
}

type recordingNotifier struct {
	mu     sync.Mutex
	events []string
}

func (n *recordingNotifier) Notify(event string, r *Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, event+" "+r.ID)
}

func (n *recordingNotifier) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.events...)
}

type fixture struct {
	clock    *fakeClock
	store    *memory.Store
	wf       *Workflow
	auditor  *recordingAuditor
	notifier *recordingNotifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{t: at("2025-07-16T08:00:00Z")}, auditor: &recordingAuditor{}, notifier: &recordingNotifier{}}
	f.store = memory.New(f.clock.Now)
	f.wf = f.workflow(t)
	return f
}

// workflow is one more replica on the fixture's store.
func (f *fixture) workflow(t *testing.T) *Workflow {
	t.Helper()
	wf, err := NewWorkflow(WorkflowConfig{
		Store: f.store, Now: f.clock.Now, Wait: time.Hour, RequestTTL: 24 * time.Hour,
		PublicURL: "https://airlock.example/", Auditor: f.auditor, Notifier: f.notifier,
		// Waiters here must be woken by messages, not by the safety re-check.
		Recheck: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wf.Close() })
	return wf
}

var (
	alice = authn.Identity{Subject: "u-alice", Email: "alice@example.com", Groups: []string{"engineers"}}
	sam   = authn.Identity{Subject: "u-sam", Email: "sam@example.com", Groups: []string{"sre-leads"}}
	sue   = authn.Identity{Subject: "u-sue", Email: "sue@example.com", Groups: []string{"sre-leads", "engineers"}}
	eve   = authn.Identity{Subject: "u-eve", Email: "eve@example.com", Groups: []string{"engineers"}}
)

func holdRule(count, uses int, scope string, allowSelf bool) Decision {
	return Decision{Effect: Hold, Risk: catalog.Destructive, Rule: &Rule{
		Name: "prod-destructive", Effect: Hold, Message: "needs an SRE lead",
		Approvers: Approvers{Groups: []string{"sre-leads"}, Count: count, AllowSelf: allowSelf},
		Grant:     GrantTerms{TTL: time.Hour, Uses: uses, Scope: scope},
	}}
}

func terminateInput(who authn.Identity, resource string) Input {
	a := act(catalog.AWS, "ec2:TerminateInstances", catalog.Destructive)
	a.Resource, a.Region = resource, "us-east-1"
	return Input{Identity: who, Action: a, Target: "prod-aws",
		Request: RequestContext{Reason: "OPS-1: kill the canary", Ticket: "OPS-1", SourceIP: "10.0.0.1"}}
}

// waitAsync starts Wait and returns a channel with its result.
func waitAsync(wf *Workflow, id string) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		r, err := wf.Wait(context.Background(), id, time.Hour)
		ch <- waitResult{r, err}
	}()
	return ch
}

type waitResult struct {
	r   *Request
	err error
}

func TestHoldApproveWait(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := terminateInput(alice, "i-123")
	r, err := f.wf.Hold(ctx, in, holdRule(1, 1, ScopeResource, false))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StatePending || len(r.ID) != 26 || r.URL != "https://airlock.example/requests/"+r.ID || r.Needed() != 1 {
		t.Fatalf("held request = %+v", r)
	}
	if _, ok, _ := f.wf.UseGrant(ctx, in); ok {
		t.Fatal("grant before approval")
	}
	waited := waitAsync(f.wf, r.ID)
	if _, err := f.wf.Approve(ctx, r.ID, sam, "go ahead"); err != nil {
		t.Fatal(err)
	}
	res := <-waited
	if res.err != nil || res.r.State != StateApproved || len(res.r.Approvals) != 1 || res.r.Approvals[0].Comment != "go ahead" {
		t.Fatalf("Wait = %+v, %v", res.r, res.err)
	}
	g, ok, err := f.wf.UseGrant(ctx, in)
	if err != nil || !ok {
		t.Fatalf("UseGrant = %v, %v", ok, err)
	}
	if g.RequestID != r.ID || g.UsesLeft != 0 || g.Subject != alice.Subject || g.Resource != "i-123" || g.Approvers[0] != "sam@example.com" {
		t.Errorf("grant = %+v", g)
	}
	if _, ok, _ := f.wf.UseGrant(ctx, in); ok {
		t.Error("the only use was spent, but the grant matched again")
	}
	if got, want := fmt.Sprint(f.auditor.steps()), "[approved grant_used]"; got != want {
		t.Errorf("audit steps = %s, want %s", got, want)
	}
	e := f.auditor.events[0]
	if e.Kind != audit.KindApproval || e.RequestID != r.ID || e.Identity.Subject != alice.Subject ||
		e.Action != "ec2:TerminateInstances" || e.Policy != "prod-destructive" || e.Comment != "go ahead" || e.Risk != "destructive" {
		t.Errorf("approved event = %+v", e)
	}
	if got := fmt.Sprint(f.notifier.list()); got != fmt.Sprintf("[held %s approved %s]", r.ID, r.ID) {
		t.Errorf("notifications = %s", got)
	}
	// A held request survives a JSON round trip with what the page needs.
	b, _ := json.Marshal(res.r)
	var back Request
	if err := json.Unmarshal(b, &back); err != nil || back.Grant.TTL != time.Hour || back.Requester.Groups[0] != "engineers" || back.Context.Ticket != "OPS-1" {
		t.Errorf("round trip: %v %+v\n%s", err, back, b)
	}
}

func TestTwoPersonRule(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, err := f.wf.Hold(ctx, terminateInput(alice, "i-1"), holdRule(2, 1, ScopeResource, false))
	if err != nil {
		t.Fatal(err)
	}
	waited := waitAsync(f.wf, r.ID)
	r, err = f.wf.Approve(ctx, r.ID, sam, "one")
	if err != nil || r.State != StatePending || r.Needed() != 1 {
		t.Fatalf("first approval: %+v, %v", r, err)
	}
	if _, err := f.wf.Approve(ctx, r.ID, sam, "again"); !errors.Is(err, ErrAlreadyApproved) {
		t.Fatalf("same approver twice: %v", err)
	}
	select {
	case res := <-waited:
		t.Fatalf("released after one of two approvals: %+v", res.r)
	default:
	}
	if _, ok, _ := f.wf.UseGrant(ctx, terminateInput(alice, "i-1")); ok {
		t.Fatal("grant after one of two approvals")
	}
	r, err = f.wf.Approve(ctx, r.ID, sue, "two")
	if err != nil || r.State != StateApproved {
		t.Fatalf("second approval: %+v, %v", r, err)
	}
	if res := <-waited; res.r.State != StateApproved {
		t.Fatalf("Wait = %+v", res.r)
	}
	if got, want := fmt.Sprint(f.auditor.steps()), "[approval_added approved]"; got != want {
		t.Errorf("audit steps = %s, want %s", got, want)
	}
	if _, err := f.wf.Approve(ctx, r.ID, sue, "late"); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("approve after approval: %v", err)
	}
}

func TestWhoMayApprove(t *testing.T) {
	selfApprover := authn.Identity{Subject: "u-lead", Groups: []string{"sre-leads"}}
	tests := []struct {
		name      string
		requester authn.Identity
		approver  authn.Identity
		allowSelf bool
		want      error
	}{
		{"approver", alice, sam, false, nil},
		{"requester is refused", selfApprover, selfApprover, false, ErrSelfApproval},
		{"requester with allow_self", selfApprover, selfApprover, true, nil},
		{"outside the approver groups", alice, eve, false, ErrNotApprover},
		{"no identity", alice, authn.Identity{}, false, ErrNotApprover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			r, err := f.wf.Hold(ctx, terminateInput(tc.requester, "i-1"), holdRule(1, 1, ScopeResource, tc.allowSelf))
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.wf.Approve(ctx, r.ID, tc.approver, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("Approve err = %v, want %v", err, tc.want)
			}
			if tc.want != nil && (got.State != StatePending || len(got.Approvals) != 0) {
				t.Errorf("refused approval changed the request: %+v", got)
			}
		})
	}
}

func TestDenyReleasesWaiterWithComment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := terminateInput(alice, "i-1")
	r, err := f.wf.Hold(ctx, in, holdRule(1, 1, ScopeResource, false))
	if err != nil {
		t.Fatal(err)
	}
	waited := waitAsync(f.wf, r.ID)
	if _, err := f.wf.Deny(ctx, r.ID, eve, "no"); !errors.Is(err, ErrNotApprover) {
		t.Fatalf("deny by non-approver: %v", err)
	}
	if _, err := f.wf.Deny(ctx, r.ID, sam, "not during the freeze"); err != nil {
		t.Fatal(err)
	}
	res := <-waited
	if res.r.State != StateDenied || res.r.Comment != "not during the freeze" || res.r.DeniedBy.Email != "sam@example.com" {
		t.Fatalf("Wait = %+v", res.r)
	}
	if _, ok, _ := f.wf.UseGrant(ctx, in); ok {
		t.Error("denied request left a grant")
	}
	if _, err := f.wf.Approve(ctx, r.ID, sue, ""); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("approve after deny: %v", err)
	}
	if got := fmt.Sprint(f.auditor.steps()); got != "[denied]" {
		t.Errorf("audit steps = %s", got)
	}
	// The requester may withdraw a request of their own.
	r2, _ := f.wf.Hold(ctx, terminateInput(alice, "i-2"), holdRule(1, 1, ScopeResource, false))
	if r2, err := f.wf.Deny(ctx, r2.ID, alice, "never mind"); err != nil || r2.State != StateDenied {
		t.Errorf("withdraw: %+v %v", r2, err)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, err := f.wf.Hold(ctx, terminateInput(alice, "i-1"), holdRule(1, 1, ScopeResource, false))
	if err != nil {
		t.Fatal(err)
	}
	waited := waitAsync(f.wf, r.ID)
	f.clock.Advance(24*time.Hour - time.Second)
	if err := f.wf.expireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.wf.Get(ctx, r.ID); got.State != StatePending {
		t.Fatalf("expired early: %s", got.State)
	}
	f.clock.Advance(time.Second)
	// The janitor observes it first and releases the waiter; later reads do not audit again.
	if err := f.wf.expireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if res := <-waited; res.r.State != StateExpired {
		t.Fatalf("Wait = %+v", res.r)
	}
	got, err := f.wf.Get(ctx, r.ID)
	if err != nil || got.State != StateExpired {
		t.Fatalf("Get = %+v %v", got, err)
	}
	if list, _ := f.wf.List(ctx, "pending", sam); len(list) != 0 {
		t.Errorf("expired request still listed as pending")
	}
	if _, err := f.wf.Approve(ctx, r.ID, sam, ""); !errors.Is(err, ErrAlreadyDecided) {
		t.Errorf("approve after expiry: %v", err)
	}
	if n := f.auditor.count(StepExpired); n != 1 {
		t.Errorf("%d expired events, want 1", n)
	}

	// Observed by Get alone (no janitor), on another replica.
	r2, _ := f.wf.Hold(ctx, terminateInput(alice, "i-2"), holdRule(1, 1, ScopeResource, false))
	f.clock.Advance(25 * time.Hour)
	other := f.workflow(t)
	if got, _ := other.Get(ctx, r2.ID); got.State != StateExpired {
		t.Errorf("Get after expiry = %s", got.State)
	}
	if got, _ := f.wf.Wait(ctx, r2.ID, time.Hour); got.State != StateExpired {
		t.Errorf("Wait after expiry = %s", got.State)
	}
	if n := f.auditor.count(StepExpired); n != 2 {
		t.Errorf("%d expired events, want 2", n)
	}
	// A retry of the expired call opens a fresh request.
	r3, _ := f.wf.Hold(ctx, terminateInput(alice, "i-2"), holdRule(1, 1, ScopeResource, false))
	if r3.ID == r2.ID || r3.State != StatePending {
		t.Errorf("retry after expiry = %+v", r3)
	}
}

func TestGrantUsesAndExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := terminateInput(alice, "i-1")
	r, _ := f.wf.Hold(ctx, in, holdRule(1, 3, ScopeResource, false))
	if _, err := f.wf.Approve(ctx, r.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	for want := 2; want >= 0; want-- {
		g, ok, err := f.wf.UseGrant(ctx, in)
		if err != nil || !ok || g.UsesLeft != want {
			t.Fatalf("use: %+v %v %v, want %d left", g, ok, err, want)
		}
	}
	if _, ok, _ := f.wf.UseGrant(ctx, in); ok {
		t.Fatal("fourth use of a three-use grant")
	}

	// Expiry: a fresh grant stops matching once its TTL has passed.
	in2 := terminateInput(alice, "i-2")
	r2, _ := f.wf.Hold(ctx, in2, holdRule(1, 5, ScopeResource, false))
	if _, err := f.wf.Approve(ctx, r2.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(59 * time.Minute)
	if _, ok, _ := f.wf.UseGrant(ctx, in2); !ok {
		t.Fatal("grant gone before its TTL")
	}
	f.clock.Advance(time.Minute)
	if _, ok, _ := f.wf.UseGrant(ctx, in2); ok {
		t.Fatal("grant used after its TTL")
	}

	// A use that cannot be audited is refused.
	in3 := terminateInput(alice, "i-3")
	r3, _ := f.wf.Hold(ctx, in3, holdRule(1, 5, ScopeResource, false))
	if _, err := f.wf.Approve(ctx, r3.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	f.auditor.mu.Lock()
	f.auditor.fail = errors.New("disk full")
	f.auditor.mu.Unlock()
	if _, ok, err := f.wf.UseGrant(ctx, in3); ok || err == nil {
		t.Errorf("unaudited use allowed: %v %v", ok, err)
	}
}

func TestGrantConcurrentUsesNeverOverspend(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := terminateInput(alice, "i-1")
	r, _ := f.wf.Hold(ctx, in, holdRule(1, 10, ScopeResource, false))
	if _, err := f.wf.Approve(ctx, r.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	used := 0
	for range 50 {
		wg.Go(func() {
			if _, ok, _ := f.wf.UseGrant(ctx, in); ok {
				mu.Lock()
				used++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if used != 10 {
		t.Errorf("%d uses of a ten-use grant", used)
	}
}

func TestGrantScope(t *testing.T) {
	tests := []struct {
		name  string
		scope string
		call  Input
		match bool
	}{
		{"resource scope, same resource", ScopeResource, terminateInput(alice, "i-1"), true},
		{"resource scope, other resource", ScopeResource, terminateInput(alice, "i-2"), false},
		{"action scope, other resource", ScopeAction, terminateInput(alice, "i-2"), true},
		{"action scope, other person", ScopeAction, terminateInput(eve, "i-1"), false},
		{"action scope, other target", ScopeAction, func() Input { in := terminateInput(alice, "i-1"); in.Target = "dev-aws"; return in }(), false},
		{"action scope, other action", ScopeAction, func() Input {
			in := terminateInput(alice, "i-1")
			in.Action = act(catalog.AWS, "ec2:StopInstances", catalog.Write)
			return in
		}(), false},
		{"action names compare case-insensitively", ScopeResource, func() Input {
			in := terminateInput(alice, "i-1")
			in.Action.IAMAction = "EC2:terminateInstances"
			return in
		}(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			r, _ := f.wf.Hold(ctx, terminateInput(alice, "i-1"), holdRule(1, 1, tc.scope, false))
			if _, err := f.wf.Approve(ctx, r.ID, sam, ""); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := f.wf.UseGrant(ctx, tc.call); ok != tc.match || err != nil {
				t.Errorf("UseGrant = %v, %v; want %v", ok, err, tc.match)
			}
		})
	}
}

func TestHoldDeduplicatesRetries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := holdRule(1, 1, ScopeResource, false)
	r1, _ := f.wf.Hold(ctx, terminateInput(alice, "i-1"), d)
	r2, _ := f.wf.Hold(ctx, terminateInput(alice, "i-1"), d)
	if r1.ID != r2.ID {
		t.Fatalf("retry made a second request: %s %s", r1.ID, r2.ID)
	}
	other := f.workflow(t)
	if r3, _ := other.Hold(ctx, terminateInput(alice, "i-1"), d); r3.ID != r1.ID {
		t.Fatal("retry on another replica made a second request")
	}
	if r4, _ := f.wf.Hold(ctx, terminateInput(alice, "i-2"), d); r4.ID == r1.ID {
		t.Fatal("another resource shares the request")
	}
	if r5, _ := f.wf.Hold(ctx, terminateInput(eve, "i-1"), d); r5.ID == r1.ID {
		t.Fatal("another person shares the request")
	}
	if _, err := f.wf.Deny(ctx, r1.ID, sam, "no"); err != nil {
		t.Fatal(err)
	}
	if r6, _ := f.wf.Hold(ctx, terminateInput(alice, "i-1"), d); r6.ID == r1.ID || r6.State != StatePending {
		t.Fatalf("retry after denial reused the decided request")
	}
	// Concurrent retries end up on one request.
	seen := concurrentHolds(t, 20, func(int) (*Request, error) { return f.wf.Hold(ctx, terminateInput(alice, "i-9"), d) })
	if len(seen) != 1 {
		t.Errorf("concurrent retries made %d requests", len(seen))
	}
}

func TestListVisibility(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := holdRule(1, 1, ScopeResource, false)
	ra, _ := f.wf.Hold(ctx, terminateInput(alice, "i-1"), d)
	f.clock.Advance(time.Second)
	re, _ := f.wf.Hold(ctx, terminateInput(eve, "i-1"), d)
	if _, err := f.wf.Deny(ctx, re.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	count := func(state string, viewer authn.Identity) string {
		list, err := f.wf.List(ctx, state, viewer)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		return fmt.Sprint(ids)
	}
	for _, tc := range []struct {
		state  string
		viewer authn.Identity
		want   string
	}{
		{"pending", alice, fmt.Sprint([]string{ra.ID})},
		{"pending", eve, "[]"},
		{"", eve, fmt.Sprint([]string{re.ID})},
		{"pending", sam, fmt.Sprint([]string{ra.ID})},
		{"", sam, fmt.Sprint([]string{re.ID, ra.ID})},
		{"denied", sam, fmt.Sprint([]string{re.ID})},
		{"", authn.Identity{Subject: "u-nobody"}, "[]"},
	} {
		if got := count(tc.state, tc.viewer); got != tc.want {
			t.Errorf("List(%q, %s) = %s, want %s", tc.state, tc.viewer.Subject, got, tc.want)
		}
	}
	if _, err := f.wf.List(ctx, "bogus", sam); err == nil {
		t.Error("unknown state accepted")
	}
}

func TestWaitReturnsPendingOnTimeoutAndCancel(t *testing.T) {
	f := newFixture(t)
	r, _ := f.wf.Hold(context.Background(), terminateInput(alice, "i-1"), holdRule(1, 1, ScopeResource, false))
	got, err := f.wf.Wait(context.Background(), r.ID, time.Millisecond)
	if err != nil || got.State != StatePending {
		t.Errorf("after max: %+v %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err = f.wf.Wait(ctx, r.ID, time.Hour)
	if !errors.Is(err, context.Canceled) || (got != nil && got.State != StatePending) {
		t.Errorf("after cancel: %+v %v", got, err)
	}
	if _, err := f.wf.Wait(context.Background(), "nope", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestApprovalOnAnotherReplicaReleasesWaiter(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	replicaB := f.workflow(t)
	r, _ := f.wf.Hold(ctx, terminateInput(alice, "i-1"), holdRule(1, 1, ScopeResource, false))
	waited := waitAsync(f.wf, r.ID)
	if _, err := replicaB.Approve(ctx, r.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	if res := <-waited; res.r.State != StateApproved {
		t.Fatalf("Wait = %+v", res.r)
	}
}

func TestThousandWaiters(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 goroutines")
	}
	f := newFixture(t)
	ctx := context.Background()
	const n = 1000
	ids := make([]string, n)
	for i := range ids {
		r, err := f.wf.Hold(ctx, terminateInput(alice, fmt.Sprintf("i-%d", i)), holdRule(1, 1, ScopeResource, false))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = r.ID
	}
	// 1000 waiters on 1000 requests, plus 1000 on the first one.
	results := make(chan waitResult, 2*n)
	var started sync.WaitGroup
	for i := range 2 * n {
		id := ids[i%n]
		if i >= n {
			id = ids[0]
		}
		started.Add(1)
		go func() {
			started.Done()
			r, err := f.wf.Wait(ctx, id, time.Hour)
			results <- waitResult{r, err}
		}()
	}
	started.Wait()
	for _, id := range ids {
		if _, err := f.wf.Approve(ctx, id, sam, ""); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 * n {
		if res := <-results; res.err != nil || res.r.State != StateApproved {
			t.Fatalf("waiter: %+v %v", res.r, res.err)
		}
	}
	f.wf.mu.Lock()
	left := len(f.wf.waiters)
	f.wf.mu.Unlock()
	if left != 0 {
		t.Errorf("%d request IDs still have waiters registered", left)
	}
}
