package approval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store/memory"
)

// countingStore counts the reads of request records and the reads of the pending set, and can
// lose every published message (as pub/sub may across a reconnect).
type countingStore struct {
	*memory.Store
	requestReads atomic.Int64
	pendingReads atomic.Int64
	losePublish  atomic.Bool
}

func (s *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, keyRequest) {
		s.requestReads.Add(1)
	}
	return s.Store.Get(ctx, key)
}

func (s *countingStore) SMembers(ctx context.Context, key string) ([]string, error) {
	if key == keyPending {
		s.pendingReads.Add(1)
	}
	return s.Store.SMembers(ctx, key)
}

func (s *countingStore) Publish(ctx context.Context, channel string, msg []byte) error {
	if s.losePublish.Load() {
		return nil
	}
	return s.Store.Publish(ctx, channel, msg)
}

// countingReplica is a workflow on a countingStore (no timer-driven sweep: Recheck is an hour).
func countingReplica(t *testing.T, f *fixture, st *countingStore) *Workflow {
	t.Helper()
	wf, err := NewWorkflow(WorkflowConfig{Store: st, Now: f.clock.Now, Wait: time.Hour, RequestTTL: 24 * time.Hour,
		Auditor: f.auditor, Recheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wf.Close() })
	return wf
}

// newCountingFixture is a fixture whose tests use a replica on a countingStore.
func newCountingFixture(t *testing.T) (*fixture, *countingStore, *Workflow) {
	t.Helper()
	f := newFixture(t)
	st := &countingStore{Store: f.store}
	return f, st, countingReplica(t, f, st)
}

// waitersOf reports how many calls wait on id in this process.
func waitersOf(wf *Workflow, id string) int {
	wf.mu.Lock()
	defer wf.mu.Unlock()
	return len(wf.waiters[id])
}

func awaitWaiters(t *testing.T, wf *Workflow, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for waitersOf(wf, id) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no waiter registered for %s", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// awaitCount waits until c reaches want (for reads other goroutines make).
func awaitCount(t *testing.T, c *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("count stayed at %d, want %d", c.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSweepReleasesWaiterWhoseWakeUpWasLost(t *testing.T) {
	f, st, holder := newCountingFixture(t)
	ctx := context.Background()
	approver := countingReplica(t, f, st)
	r, err := holder.Hold(ctx, terminateInput(alice, "i-1"), holdRule(1, 1, ScopeResource, false))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := holder.Hold(ctx, terminateInput(alice, "i-2"), holdRule(1, 1, ScopeResource, false))
	waited, otherWaited := waitAsync(holder, r.ID), waitAsync(holder, other.ID)
	awaitWaiters(t, holder, r.ID, other.ID)

	st.losePublish.Store(true)
	if _, err := approver.Approve(ctx, r.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	holder.wakeDecided()
	res := <-waited
	if res.err != nil || res.r.State != StateApproved {
		t.Fatalf("Wait after a lost wake-up and a sweep = %+v, %v", res.r, res.err)
	}
	select {
	case res := <-otherWaited:
		t.Fatalf("the sweep released a call whose request is still pending: %+v", res.r)
	default:
	}
	if waitersOf(holder, other.ID) != 1 {
		t.Errorf("the pending request's call stopped waiting")
	}
}

func TestSweepReadsThePendingSetNotEveryRequest(t *testing.T) {
	_, st, wf := newCountingFixture(t)
	ctx := context.Background()
	ids := make([]string, 50)
	for i := range ids {
		r, err := wf.Hold(ctx, terminateInput(alice, fmt.Sprintf("i-%d", i)), holdRule(1, 1, ScopeResource, false))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = r.ID
	}
	// Each Wait registers its waiter and then reads its request once; the count is taken after
	// those first reads, which can still be under way when every waiter is registered.
	before := st.requestReads.Load()
	for _, id := range ids {
		waitAsync(wf, id)
	}
	awaitWaiters(t, wf, ids...)
	awaitCount(t, &st.requestReads, before+int64(len(ids)))
	reads, sets := st.requestReads.Load(), st.pendingReads.Load()
	for range 3 {
		wf.wakeDecided()
	}
	if n := st.requestReads.Load() - reads; n != 0 {
		t.Errorf("3 sweeps over 50 waiting calls read %d requests, want 0 (none was decided)", n)
	}
	if n := st.pendingReads.Load() - sets; n != 3 {
		t.Errorf("3 sweeps read the pending set %d times, want 3", n)
	}
}

func TestApproveAndDenyReadTheRequestOnlyInTheirUpdate(t *testing.T) {
	_, st, wf := newCountingFixture(t)
	ctx := context.Background()
	r, _ := wf.Hold(ctx, terminateInput(alice, "i-1"), holdRule(2, 1, ScopeResource, false))
	d, _ := wf.Hold(ctx, terminateInput(alice, "i-2"), holdRule(1, 1, ScopeResource, false))

	before := st.requestReads.Load()
	got, err := wf.Approve(ctx, r.ID, eve, "")
	if !errors.Is(err, ErrNotApprover) || got == nil || got.ID != r.ID || got.State != StatePending {
		t.Errorf("approve by a non-approver = %+v, %v; want the pending request and ErrNotApprover", got, err)
	}
	if _, err := wf.Approve(ctx, r.ID, sam, "one"); err != nil {
		t.Fatal(err)
	}
	got, err = wf.Approve(ctx, r.ID, sam, "again")
	if !errors.Is(err, ErrAlreadyApproved) || got == nil || len(got.Approvals) != 1 {
		t.Errorf("second approval by the same person = %+v, %v", got, err)
	}
	if got, err := wf.Approve(ctx, r.ID, sue, "two"); err != nil || got.State != StateApproved {
		t.Fatalf("second approver = %+v, %v", got, err)
	}
	if got, err := wf.Deny(ctx, d.ID, eve, ""); !errors.Is(err, ErrNotApprover) || got == nil || got.State != StatePending {
		t.Errorf("deny by an outsider = %+v, %v", got, err)
	}
	if got, err := wf.Deny(ctx, d.ID, sam, "no"); err != nil || got.State != StateDenied {
		t.Fatalf("deny = %+v, %v", got, err)
	}
	if got, err := wf.Approve(ctx, d.ID, sam, ""); !errors.Is(err, ErrAlreadyDecided) || got == nil || got.State != StateDenied {
		t.Errorf("approve after deny = %+v, %v", got, err)
	}
	if n := st.requestReads.Load() - before; n != 0 {
		t.Errorf("approvals and denials read the request %d times outside their update, want 0", n)
	}
	if _, err := wf.Approve(ctx, "nope", sam, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("approve unknown = %v", err)
	}
	if _, err := wf.Deny(ctx, "a:b", sam, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("deny malformed id = %v", err)
	}
}

func TestJanitorRereadsOnlyDueNewAndOnFullPasses(t *testing.T) {
	f, st, wf := newCountingFixture(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := wf.Hold(ctx, terminateInput(alice, fmt.Sprintf("i-%d", i)), holdRule(1, 1, ScopeResource, false)); err != nil {
			t.Fatal(err)
		}
	}
	pass := func() int64 {
		t.Helper()
		before := st.requestReads.Load()
		if err := wf.expireDue(ctx); err != nil {
			t.Fatal(err)
		}
		return st.requestReads.Load() - before
	}
	if n := pass(); n != 5 {
		t.Errorf("first pass read %d requests, want all 5", n)
	}
	if n := pass(); n != 0 {
		t.Errorf("second pass read %d requests, want 0 (none new or due)", n)
	}
	// A request decided on a replica that stopped before unindexing it stays in the pending
	// set: the next full pass drops it.
	stale, _ := wf.Hold(ctx, terminateInput(alice, "i-stale"), holdRule(1, 1, ScopeResource, false))
	if n := pass(); n != 1 {
		t.Errorf("pass after a new hold read %d requests, want 1", n)
	}
	if _, err := wf.Approve(ctx, stale.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SAdd(ctx, keyPending, stale.ID); err != nil {
		t.Fatal(err)
	}
	for wf.janitorPasses%janitorFullPass != 0 {
		if n := pass(); n != 0 {
			t.Fatalf("pass %d read %d requests, want 0", wf.janitorPasses, n)
		}
	}
	if n := pass(); n != 6 {
		t.Errorf("full pass read %d requests, want 6", n)
	}
	if ids, _ := st.SMembers(ctx, keyPending); len(ids) != 5 || slices.Contains(ids, stale.ID) {
		t.Errorf("pending set after the full pass = %v, want the 5 pending without %s", ids, stale.ID)
	}
	// Due requests are read (and expired) on any pass.
	f.clock.Advance(24 * time.Hour)
	if n := pass(); n != 5 {
		t.Errorf("pass after expiry read %d requests, want 5", n)
	}
	if ids, _ := st.SMembers(ctx, keyPending); len(ids) != 0 {
		t.Errorf("pending after expiry: %v", ids)
	}
	if n := f.auditor.count(StepExpired); n != 5 {
		t.Errorf("%d expired events, want 5", n)
	}
}

func TestRepeatedCallsAfterADecisionShareOneNewRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := holdRule(1, 1, ScopeResource, false)
	in := terminateInput(alice, "i-1")
	open := keyOpen + sameCall(in.Identity.Subject, in.Target, in.Action.IAMAction, in.Action.Resource)
	first, err := f.wf.Hold(ctx, in, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.wf.Approve(ctx, first.ID, sam, ""); err != nil {
		t.Fatal(err)
	}
	if g, ok, err := f.wf.UseGrant(ctx, in); err != nil || !ok || g.RequestID != first.ID {
		t.Fatalf("UseGrant = %+v %v %v", g, ok, err)
	}
	// The decision left the index entry; the next holds take it over, all onto one request.
	if id, err := f.store.Get(ctx, open); err != nil || string(id) != first.ID {
		t.Fatalf("index after the approval = %q %v, want the decided request's ID", id, err)
	}
	replicas := []*Workflow{f.wf, f.workflow(t)}
	seen := concurrentHolds(t, 20, func(i int) (*Request, error) { return replicas[i%2].Hold(ctx, in, d) })
	if len(seen) != 1 || seen[first.ID] {
		t.Fatalf("holds after the decision made requests %v, want one new request", seen)
	}
	var second string
	for id := range seen {
		second = id
	}
	if id, _ := f.store.Get(ctx, open); string(id) != second {
		t.Errorf("index = %q, want the new request %s", id, second)
	}
	if pending, _ := f.wf.List(ctx, "pending", sam); len(pending) != 1 || pending[0].ID != second {
		t.Errorf("pending = %d requests, want only %s", len(pending), second)
	}
}

// concurrentHolds runs hold n times at once and returns the request IDs they got.
func concurrentHolds(t *testing.T, n int, hold func(i int) (*Request, error)) map[string]bool {
	t.Helper()
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := hold(i)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- r.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	return seen
}
