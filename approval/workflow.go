package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/store"
)

// Store keys and the one pub/sub channel. Every replica reads and writes the same keys.
const (
	keyRequest = "approval:request:" // + id: JSON Request
	keyPending = "approval:pending"  // set of pending request IDs
	keyAll     = "approval:requests" // set of every kept request ID
	keyOpen    = "approval:open:"    // + sameCall fingerprint: ID of the call's latest request (pending, or decided and not yet taken over)
	keyGrant   = "approval:grant:"   // + grantFor fingerprint: JSON Grant

	// Channel carries the ID of every request whose state changed (created, approval added,
	// approved, denied, expired). Waiters and live pages subscribe to it and re-read the request.
	Channel = "approval:events"
)

// Audit steps of kind "approval" written here ("held" is the proxy's decision event).
const (
	StepApprovalAdded = "approval_added" // one approval of several needed
	StepApproved      = "approved"
	StepDenied        = "denied"
	StepExpired       = "expired"
	StepGrantUsed     = "grant_used"
)

// Auditor writes audit events; audit.Log satisfies it.
type Auditor interface {
	Record(ctx context.Context, e *audit.Event) error
}

// Notification events.
const (
	EventHeld     = "held"
	EventApproved = "approved"
	EventDenied   = "denied"
	EventExpired  = "expired"
)

// Notifier tells people about requests. Notify must not block and must not keep r after it
// returns (the workflow hands out the same value to its caller).
type Notifier interface {
	Notify(event string, r *Request)
}

// WorkflowConfig wires a Workflow.
type WorkflowConfig struct {
	Store store.Store
	// Now is the clock (default time.Now); tests pass a fake one, and the store should share it.
	Now func() time.Time
	// Wait is how long Wait blocks when called with max <= 0 (hold.wait).
	Wait time.Duration
	// RequestTTL is how long a request stays pending (hold.request_ttl).
	RequestTTL time.Duration
	// PublicURL prefixes the request page links (public_url).
	PublicURL string
	Auditor   Auditor  // required
	Notifier  Notifier // optional
	Logger    *slog.Logger
	// Retention is how long decided and expired requests stay readable (default 7 days).
	Retention time.Duration
	// Recheck is the interval of the safety sweep that wakes waiting calls whose request was
	// decided, in case a wake-up message was lost (default 10s, jittered). Wake-ups normally
	// come by pub/sub.
	Recheck time.Duration
	// JanitorInterval is how often Run expires overdue requests (default 30s).
	JanitorInterval time.Duration
}

// CheckAndSetDefaults fills defaults and refuses what is missing.
func (c *WorkflowConfig) CheckAndSetDefaults() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("approval workflow: Store is required"))
	}
	if c.Auditor == nil {
		errs = append(errs, errors.New("approval workflow: Auditor is required (every approval step is audited)"))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Wait <= 0 {
		c.Wait = 25 * time.Second
	}
	if c.RequestTTL <= 0 {
		c.RequestTTL = 24 * time.Hour
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.Recheck <= 0 {
		c.Recheck = 10 * time.Second
	}
	if c.JanitorInterval <= 0 {
		c.JanitorInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return errors.Join(errs...)
}

// Workflow holds calls as requests, collects approvals and turns them into grants. All state
// is in the store; a Workflow per replica, one store for all.
type Workflow struct {
	cfg WorkflowConfig
	st  store.Store
	now func() time.Time
	log *slog.Logger

	// One subscription to Channel per process, demultiplexed to the local waiters by ID.
	mu         sync.Mutex
	waiters    map[string]map[chan struct{}]struct{}
	subscribed bool
	closed     bool
	stop       chan struct{}
	wg         sync.WaitGroup

	// What the janitor (expireDue) remembers between its passes: when each pending request
	// it has read expires (a request's expiry never changes), and how many passes it made.
	janitorMu     sync.Mutex
	expiresAt     map[string]time.Time
	janitorPasses int
}

// NewWorkflow returns a workflow; call Close when done (it owns the subscription goroutine).
func NewWorkflow(cfg WorkflowConfig) (*Workflow, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Workflow{
		cfg:       cfg,
		st:        cfg.Store,
		now:       cfg.Now,
		log:       cfg.Logger,
		waiters:   map[string]map[chan struct{}]struct{}{},
		stop:      make(chan struct{}),
		expiresAt: map[string]time.Time{},
	}, nil
}

// Close stops the subscription; waiting calls return with their request as it stands.
func (w *Workflow) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

// Hold creates a pending request for a held call, or returns the pending one for the same
// identity, target, action and resource (a client retrying must not flood approvers).
func (w *Workflow) Hold(ctx context.Context, in Input, d Decision) (*Request, error) {
	if d.Effect != Hold || d.Rule == nil {
		return nil, fmt.Errorf("hold: decision is %s, not hold", d.Effect)
	}
	open := keyOpen + sameCall(in.Identity.Subject, in.Target, in.Action.IAMAction, in.Action.Resource)
	if r, _, ok := w.openRequest(ctx, open); ok {
		return r, nil
	}
	now := w.now()
	r := &Request{
		ID:        newID(),
		State:     StatePending,
		Requester: in.Identity,
		Action:    in.Action,
		Target:    in.Target,
		Context:   in.Request,
		Rule:      d.Rule.Name,
		Message:   d.Rule.Message,
		Approvers: d.Rule.Approvers,
		Grant:     d.Rule.Grant,
		Approvals: []Approval{},
		CreatedAt: now,
		ExpiresAt: now.Add(w.cfg.RequestTTL),
	}
	if d.Risk != catalog.RiskUnknown {
		r.Action.Risk = d.Risk
	}
	r.URL = w.cfg.PublicURL + "/requests/" + r.ID
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	if err := w.st.Set(ctx, keyRequest+r.ID, b, w.keep(r)); err != nil {
		return nil, fmt.Errorf("hold: save request: %w", err)
	}
	won, err := w.st.SetNX(ctx, open, []byte(r.ID), w.cfg.RequestTTL)
	if err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	if !won {
		other, err := w.takeOver(ctx, open, r.ID)
		if err != nil {
			return nil, fmt.Errorf("hold: %w", err)
		}
		if other != nil {
			// A concurrent retry (maybe on another replica) got there first: use its request.
			_ = w.st.Delete(ctx, keyRequest+r.ID)
			return other, nil
		}
	}
	if err := w.st.SAdd(ctx, keyPending, r.ID); err != nil {
		return nil, fmt.Errorf("hold: index request: %w", err)
	}
	if err := w.st.SAdd(ctx, keyAll, r.ID); err != nil {
		return nil, fmt.Errorf("hold: index request: %w", err)
	}
	w.publish(ctx, r.ID)
	w.notify(EventHeld, r)
	w.log.Info("call held for approval", "request_id", r.ID, "rule", r.Rule,
		"target", r.Target, "action", r.Action.IAMAction, "requester", r.Requester)
	return r, nil
}

// openRequest returns the request the dedupe index points at, if it is still pending, and the
// ID the index holds ("" when it holds none).
func (w *Workflow) openRequest(ctx context.Context, openKey string) (*Request, string, bool) {
	id, err := w.st.Get(ctx, openKey)
	if err != nil {
		return nil, "", false
	}
	r, err := w.Get(ctx, string(id))
	if err != nil || r.State != StatePending {
		return nil, string(id), false
	}
	return r, string(id), true
}

// errIndexMoved aborts a take-over of the dedupe index that another hold changed meanwhile.
var errIndexMoved = errors.New("dedupe index moved")

// maxTakeOver bounds the take-over attempts of one hold.
const maxTakeOver = 5

// takeOver points the dedupe index openKey at id, unless it points at a request that is still
// pending, which it returns instead. A decided request leaves its index entry behind (unindex
// does not delete it: that compare-and-delete was a store transaction on every decision), so
// this is how a call held again after a decision gets a new request. The swap is a
// compare-and-set, so concurrent holds of one call still end up on one request.
func (w *Workflow) takeOver(ctx context.Context, openKey, id string) (*Request, error) {
	for range maxTakeOver {
		other, current, ok := w.openRequest(ctx, openKey)
		if ok {
			return other, nil
		}
		err := w.st.Update(ctx, openKey, func(old []byte) ([]byte, time.Duration, error) {
			if string(old) != current {
				return nil, 0, errIndexMoved
			}
			return []byte(id), w.cfg.RequestTTL, nil
		})
		if !errors.Is(err, errIndexMoved) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("take over the pending request of a repeated call: %w", store.ErrConflict)
}

// keep is how long the store keeps a request record: past its expiry (so that the expiry is
// observed and audited) and then for the retention period.
func (w *Workflow) keep(r *Request) time.Duration {
	end := r.ExpiresAt
	if !r.DecidedAt.IsZero() {
		end = r.DecidedAt
	}
	return max(end.Sub(w.now()), 0) + w.cfg.Retention
}

// Get returns a request. A pending request past its expiry is expired on the way (once,
// across replicas).
func (w *Workflow) Get(ctx context.Context, id string) (*Request, error) {
	r, err := w.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State == StatePending && !w.now().Before(r.ExpiresAt) {
		return w.expire(ctx, id)
	}
	return r, nil
}

// validID refuses what newID never makes and could reach other keys.
func validID(id string) error {
	if id == "" || strings.ContainsAny(id, ":/ ") {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

func (w *Workflow) read(ctx context.Context, id string) (*Request, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	b, err := w.st.Get(ctx, keyRequest+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read request %s: %w", id, err)
	}
	r := &Request{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("read request %s: %w", id, err)
	}
	return r, nil
}

// errUnchanged aborts an update that found nothing to do.
var errUnchanged = errors.New("unchanged")

// update applies fn to the stored request atomically. fn may run more than once. When fn
// returns errUnchanged, update returns the request as read and a nil error; on any other error,
// the request as last read (nil when it could not be read) and the error.
func (w *Workflow) update(ctx context.Context, id string, fn func(r *Request) error) (*Request, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var out *Request
	err := w.st.Update(ctx, keyRequest+id, func(old []byte) ([]byte, time.Duration, error) {
		out = nil
		if old == nil {
			return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		r := &Request{}
		if err := json.Unmarshal(old, r); err != nil {
			return nil, 0, fmt.Errorf("read request %s: %w", id, err)
		}
		out = r
		if err := fn(r); err != nil {
			return nil, 0, err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, 0, err
		}
		return b, w.keep(r), nil
	})
	if errors.Is(err, errUnchanged) {
		return out, nil
	}
	return out, err
}

// errExpiredNow: the request turned out to be past its expiry while being approved or denied.
var errExpiredNow = errors.New("expired")

// Approve records approver's approval. When the request has enough distinct approvals it is
// approved: the grant is created and waiting calls are released. A refusal (already decided,
// not an approver, already approved by them) comes with the request as it stands.
//
// The request is read once, inside the update that checks and changes it, and waiting calls are
// woken as soon as the grant exists, before the bookkeeping (index, audit, notification): every
// store round trip here is one the approver and the released call wait for.
func (w *Workflow) Approve(ctx context.Context, id string, approver authn.Identity, comment string) (*Request, error) {
	now := w.now()
	r, err := w.update(ctx, id, func(r *Request) error {
		if r.State != StatePending {
			return fmt.Errorf("%w: %s is %s", ErrAlreadyDecided, id, r.State)
		}
		if !now.Before(r.ExpiresAt) {
			return errExpiredNow
		}
		if err := r.CheckApprover(approver); err != nil {
			return err
		}
		if r.ApprovedBy(approver.Subject) {
			return ErrAlreadyApproved
		}
		r.Approvals = append(r.Approvals, Approval{By: personOf(approver), Comment: comment, At: now})
		if len(r.Approvals) >= r.Approvers.Count {
			r.State = StateApproved
			r.DecidedAt = now
			r.GrantID = newID()
		}
		return nil
	})
	if errors.Is(err, errExpiredNow) {
		r, err = w.expire(ctx, id)
		if err != nil {
			return nil, err
		}
		return r, fmt.Errorf("%w: %s is %s", ErrAlreadyDecided, id, r.State)
	}
	if err != nil {
		return r, err
	}
	step := StepApprovalAdded
	if r.State == StateApproved {
		step = StepApproved
		if err := w.createGrant(ctx, r); err != nil {
			// The request says approved but no grant exists: the call stays refused (fail
			// closed) and the requester asks again. Say so loudly.
			w.log.Error("approved request has no grant", "request_id", id, "error", err)
			return r, fmt.Errorf("approve %s: create grant: %w", id, err)
		}
	}
	w.publish(ctx, id)
	if r.State == StateApproved {
		w.unindex(ctx, r)
	}
	w.record(ctx, r, step, func(e *audit.Event) {
		e.Approvers = []string{personOf(approver).Name()}
		e.Comment = comment
		if r.State == StateApproved {
			e.Decision = Allow.String()
			e.Approvers = r.approverNames()
		}
	})
	if r.State == StateApproved {
		w.notify(EventApproved, r)
	}
	w.log.Info("approval recorded", "request_id", id, "approver", approver, "state", string(r.State), "needed", r.Needed())
	return r, nil
}

// Deny denies a pending request; the waiting call is released at once with the comment.
// Approvers may deny, and so may the requester (withdrawing the request). As with Approve, the
// request is read once, and a refusal comes with the request as it stands.
func (w *Workflow) Deny(ctx context.Context, id string, by authn.Identity, comment string) (*Request, error) {
	now := w.now()
	denier := personOf(by)
	r, err := w.update(ctx, id, func(r *Request) error {
		if r.State != StatePending {
			return fmt.Errorf("%w: %s is %s", ErrAlreadyDecided, id, r.State)
		}
		if !now.Before(r.ExpiresAt) {
			return errExpiredNow
		}
		if err := r.CheckDenier(by); err != nil {
			return err
		}
		r.State, r.DecidedAt, r.DeniedBy, r.Comment = StateDenied, now, &denier, comment
		return nil
	})
	if errors.Is(err, errExpiredNow) {
		r, err = w.expire(ctx, id)
		if err != nil {
			return nil, err
		}
		return r, fmt.Errorf("%w: %s is %s", ErrAlreadyDecided, id, r.State)
	}
	if err != nil {
		return r, err
	}
	w.publish(ctx, id)
	w.unindex(ctx, r)
	w.record(ctx, r, StepDenied, func(e *audit.Event) {
		e.Decision = Deny.String()
		e.Approvers = []string{denier.Name()}
		e.Comment = comment
	})
	w.notify(EventDenied, r)
	w.log.Info("request denied", "request_id", id, "by", by)
	return r, nil
}

// expire turns a pending request past its expiry into an expired one. Only the caller that
// makes the change (on any replica) audits and notifies, so it happens once.
func (w *Workflow) expire(ctx context.Context, id string) (*Request, error) {
	now := w.now()
	changed := false
	r, err := w.update(ctx, id, func(r *Request) error {
		changed = false
		if r.State != StatePending || now.Before(r.ExpiresAt) {
			return errUnchanged
		}
		r.State, r.DecidedAt = StateExpired, r.ExpiresAt
		changed = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		w.publish(ctx, id)
		w.unindex(ctx, r)
		w.record(ctx, r, StepExpired, func(e *audit.Event) { e.Decision = Deny.String() })
		w.notify(EventExpired, r)
		w.log.Info("request expired", "request_id", id)
	}
	return r, nil
}

// unindex takes a decided request out of the pending set. Its dedupe index entry stays until
// the next hold of the same call takes it over (takeOver) or it expires with the request TTL.
func (w *Workflow) unindex(ctx context.Context, r *Request) {
	if err := w.st.SRem(ctx, keyPending, r.ID); err != nil {
		w.log.Warn("unindex pending request", "request_id", r.ID, "error", err)
	}
}

func (w *Workflow) createGrant(ctx context.Context, r *Request) error {
	now := w.now()
	g := Grant{
		ID:        r.GrantID,
		RequestID: r.ID,
		Subject:   r.Requester.Subject,
		Target:    r.Target,
		Action:    r.Action.IAMAction,
		Scope:     r.Grant.Scope,
		Rule:      r.Rule,
		UsesLeft:  r.Grant.Uses,
		ExpiresAt: now.Add(r.Grant.TTL),
		Approvers: r.approverNames(),
	}
	if g.Scope != ScopeAction {
		g.Scope = ScopeResource
		g.Resource = r.Action.Resource
	}
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	// A newer approval of the same call replaces an older grant.
	return w.st.Set(ctx, keyGrant+grantFor(g.Scope, g.Subject, g.Target, g.Action, g.Resource), b, r.Grant.TTL)
}

// errNoGrant aborts a grant update that found nothing usable.
var errNoGrant = errors.New("no grant")

// UseGrant consumes one use of a live grant covering the call (same subject, target, action,
// and resource for a resource-scoped grant). A spent or expired grant does not match. The use
// is audited; when the event cannot be written the use is spent and the call must be refused.
func (w *Workflow) UseGrant(ctx context.Context, in Input) (*Grant, bool, error) {
	now := w.now()
	for _, scope := range []string{ScopeResource, ScopeAction} {
		key := keyGrant + grantFor(scope, in.Identity.Subject, in.Target, in.Action.IAMAction, in.Action.Resource)
		var used *Grant
		err := w.st.Update(ctx, key, func(old []byte) ([]byte, time.Duration, error) {
			used = nil
			if old == nil {
				return nil, 0, errNoGrant
			}
			var g Grant
			if err := json.Unmarshal(old, &g); err != nil {
				return nil, 0, fmt.Errorf("read grant: %w", err)
			}
			if g.UsesLeft <= 0 || !now.Before(g.ExpiresAt) {
				return nil, 0, nil // spent: remove it
			}
			g.UsesLeft--
			used = &g
			if g.UsesLeft == 0 {
				return nil, 0, nil
			}
			b, err := json.Marshal(g)
			return b, g.ExpiresAt.Sub(now), err
		})
		if errors.Is(err, errNoGrant) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("use grant: %w", err)
		}
		if used == nil {
			continue
		}
		e := w.event(StepGrantUsed, used.RequestID)
		e.Identity = audit.Identity{Subject: in.Identity.Subject, Email: in.Identity.Email, Groups: in.Identity.Groups}
		fillAction(e, in.Target, in.Action)
		e.Decision = Allow.String()
		e.Policy = used.Rule
		e.Approvers = used.Approvers
		e.Reason = in.Request.Reason
		e.ClientIP = in.Request.SourceIP
		e.UserAgent = in.Request.UserAgent
		if err := w.cfg.Auditor.Record(ctx, e); err != nil {
			return nil, false, fmt.Errorf("use grant %s: audit: %w", used.ID, err)
		}
		return used, true, nil
	}
	return nil, false, nil
}

// List returns the requests viewer may see (their own and those they can approve), newest
// first. state filters ("" = every request still kept).
func (w *Workflow) List(ctx context.Context, state string, viewer authn.Identity) ([]*Request, error) {
	switch State(state) {
	case "", StatePending, StateApproved, StateDenied, StateExpired:
	default:
		return nil, fmt.Errorf("unknown state %q (pending, approved, denied, expired)", state)
	}
	index := keyAll
	if State(state) == StatePending {
		index = keyPending
	}
	ids, err := w.st.SMembers(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	out := []*Request{}
	for _, id := range ids {
		r, err := w.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			_ = w.st.SRem(ctx, index, id) // past retention
			continue
		}
		if err != nil {
			return nil, err
		}
		if (state == "" || r.State == State(state)) && r.VisibleTo(viewer) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *Request) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// Run expires overdue requests every JanitorInterval until ctx is done, so that expiry is
// audited and notified even when nobody looks at the request.
func (w *Workflow) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.JanitorInterval)
	defer t.Stop()
	for {
		if err := w.expireDue(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("expire pending requests", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// janitorFullPass: every this many passes the janitor re-reads every pending request, not
// only those that are due or new.
const janitorFullPass = 10

// expireDue expires every pending request past its expiry, and drops index entries of
// requests that are gone or decided. It reads only the requests that are new to it or due
// (it remembers the expiry of those it read), and every request on every janitorFullPass-th
// pass: re-reading 10,000 pending requests every interval on every replica competed with the
// approvals and releases. The full pass is what drops the index entry of a request decided by a
// replica that stopped before unindexing it.
func (w *Workflow) expireDue(ctx context.Context) error {
	ids, err := w.st.SMembers(ctx, keyPending)
	if err != nil {
		return err
	}
	w.janitorMu.Lock()
	defer w.janitorMu.Unlock()
	full := w.janitorPasses%janitorFullPass == 0
	w.janitorPasses++
	now := w.now()
	listed := make(map[string]struct{}, len(ids))
	var errs []error
	for _, id := range ids {
		listed[id] = struct{}{}
		if exp, ok := w.expiresAt[id]; ok && !full && now.Before(exp) {
			continue
		}
		r, err := w.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			_ = w.st.SRem(ctx, keyPending, id)
			delete(w.expiresAt, id)
		case err != nil:
			errs = append(errs, err)
		case r.State != StatePending:
			_ = w.st.SRem(ctx, keyPending, id)
			delete(w.expiresAt, id)
		default:
			w.expiresAt[id] = r.ExpiresAt
		}
	}
	for id := range w.expiresAt {
		if _, ok := listed[id]; !ok {
			delete(w.expiresAt, id)
		}
	}
	return errors.Join(errs...)
}

func (w *Workflow) publish(ctx context.Context, id string) {
	if err := w.st.Publish(ctx, Channel, []byte(id)); err != nil {
		// Waiters still re-check on their own, only later.
		w.log.Warn("publish request change", "request_id", id, "error", err)
	}
}

func (w *Workflow) notify(event string, r *Request) {
	if w.cfg.Notifier != nil {
		w.cfg.Notifier.Notify(event, r)
	}
}

func (w *Workflow) event(step, requestID string) *audit.Event {
	return &audit.Event{V: audit.SchemaVersion, Time: w.now().UTC(), Kind: audit.KindApproval, Step: step, RequestID: requestID}
}

func fillAction(e *audit.Event, target string, a catalog.Action) {
	e.Target, e.Cloud, e.Action, e.Service, e.Operation = target, a.Cloud, a.IAMAction, a.Service, a.Operation
	e.Resource, e.Region, e.Risk = a.Resource, a.Region, a.Risk.String()
}

// record writes an approval-kind event about r. The identity is the requester, so that every
// event of one request reads the same; who acted is in approvers. The state change already
// happened, so a failed write is logged, not undone.
func (w *Workflow) record(ctx context.Context, r *Request, step string, fill func(*audit.Event)) {
	e := w.event(step, r.ID)
	e.Identity = audit.Identity{Subject: r.Requester.Subject, Email: r.Requester.Email, Groups: r.Requester.Groups}
	fillAction(e, r.Target, r.Action)
	e.Policy = r.Rule
	e.Reason = r.Context.Reason
	e.ClientIP = r.Context.SourceIP
	e.UserAgent = r.Context.UserAgent
	fill(e)
	if err := w.cfg.Auditor.Record(ctx, e); err != nil {
		w.log.Error("audit approval step", "request_id", r.ID, "step", step, "error", err)
	}
}
