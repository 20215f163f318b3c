package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
)

// testNow is the fixed clock of the page tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// People of the page tests, as the Dex test users.
var (
	alice = authn.Identity{Subject: "sub-alice", Email: "alice@example.com", Groups: []string{"engineers", "oncall"}}
	bob   = authn.Identity{Subject: "sub-bob", Email: "bob@example.com", Groups: []string{"sre-leads"}}
	carol = authn.Identity{Subject: "sub-carol", Email: "carol@example.com", Groups: []string{"sre-leads", "engineers"}}
	dave  = authn.Identity{Subject: "sub-dave", Email: "dave@example.com", Groups: []string{"contractors"}}
	users = map[string]authn.Identity{"alice": alice, "bob": bob, "carol": carol, "dave": dave}
)

// fakeWorkflow keeps requests in a map and applies the same approval rules as the real
// workflow (the checks are methods of approval.Request). Changes hands out channels the tests
// can watch; every change wakes them.
type fakeWorkflow struct {
	mu       sync.Mutex
	reqs     map[string]*approval.Request
	watchers map[string][]chan struct{}
	// watching receives the ID whenever a live page starts watching a request.
	watching chan string
	calls    int
}

func newFakeWorkflow(reqs ...*approval.Request) *fakeWorkflow {
	f := &fakeWorkflow{reqs: map[string]*approval.Request{}, watchers: map[string][]chan struct{}{}, watching: make(chan string, 16)}
	for _, r := range reqs {
		f.reqs[r.ID] = r
	}
	return f
}

func clone(r *approval.Request) *approval.Request {
	c := *r
	c.Approvals = slices.Clone(r.Approvals)
	return &c
}

func (f *fakeWorkflow) Get(_ context.Context, id string) (*approval.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reqs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", approval.ErrNotFound, id)
	}
	return clone(r), nil
}

func (f *fakeWorkflow) List(_ context.Context, state string, viewer authn.Identity) ([]*approval.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*approval.Request
	for _, r := range f.reqs {
		if (state == "" || string(r.State) == state) && r.VisibleTo(viewer) {
			out = append(out, clone(r))
		}
	}
	slices.SortFunc(out, func(a, b *approval.Request) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (f *fakeWorkflow) Approve(_ context.Context, id string, by authn.Identity, comment string) (*approval.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	r, ok := f.reqs[id]
	if !ok {
		return nil, approval.ErrNotFound
	}
	if r.State != approval.StatePending {
		return clone(r), approval.ErrAlreadyDecided
	}
	if err := r.CheckApprover(by); err != nil {
		return clone(r), err
	}
	r.Approvals = append(r.Approvals, approval.Approval{By: approval.Person{Subject: by.Subject, Email: by.Email}, Comment: comment, At: testNow})
	if len(r.Approvals) >= r.Approvers.Count {
		r.State, r.DecidedAt, r.GrantID = approval.StateApproved, testNow, "grant-1"
	}
	f.changed(id)
	return clone(r), nil
}

func (f *fakeWorkflow) Deny(_ context.Context, id string, by authn.Identity, comment string) (*approval.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	r, ok := f.reqs[id]
	if !ok {
		return nil, approval.ErrNotFound
	}
	if r.State != approval.StatePending {
		return clone(r), approval.ErrAlreadyDecided
	}
	if err := r.CheckDenier(by); err != nil {
		return clone(r), err
	}
	r.State, r.DecidedAt, r.DeniedBy, r.Comment = approval.StateDenied, testNow, &approval.Person{Subject: by.Subject, Email: by.Email}, comment
	f.changed(id)
	return clone(r), nil
}

// Wait returns at once with the request as it stands when it is decided, else after the next
// change (the tests have no clocks to wait for).
func (f *fakeWorkflow) Wait(ctx context.Context, id string, _ time.Duration) (*approval.Request, error) {
	wake, stop, _ := f.Changes(ctx, id)
	defer stop()
	r, err := f.Get(ctx, id)
	if err != nil || r.State != approval.StatePending {
		return r, err
	}
	select {
	case <-wake:
	case <-ctx.Done():
		return r, ctx.Err()
	}
	return f.Get(ctx, id)
}

func (f *fakeWorkflow) Changes(_ context.Context, id string) (<-chan struct{}, func(), error) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.watchers[id] = append(f.watchers[id], ch)
	f.mu.Unlock()
	select {
	case f.watching <- id:
	default:
	}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.watchers[id] = slices.DeleteFunc(f.watchers[id], func(c chan struct{}) bool { return c == ch })
	}, nil
}

// changed wakes the watchers of id; f.mu is held.
func (f *fakeWorkflow) changed(id string) {
	for _, ch := range f.watchers[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// waitOnly hides Changes, so that the pages fall back to Workflow.Wait.
type waitOnly struct{ Workflow }

// fakeSessions: the session cookie holds a user name; the CSRF token is derived from it.
type fakeSessions struct{}

func (fakeSessions) identity(r *http.Request) (authn.Identity, bool) {
	c, err := r.Cookie(authn.SessionCookie)
	if err != nil {
		return authn.Identity{}, false
	}
	id, ok := users[c.Value]
	return id, ok
}

func (s fakeSessions) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.identity(r)
		if !ok {
			http.Redirect(w, r, authn.LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r.WithContext(authn.WithIdentity(r.Context(), id)))
	})
}

func (fakeSessions) CSRFToken(r *http.Request) string {
	c, err := r.Cookie(authn.SessionCookie)
	if err != nil {
		return ""
	}
	return "csrf-" + c.Value
}

func (s fakeSessions) VerifyCSRF(r *http.Request) error {
	want := s.CSRFToken(r)
	if want == "" || r.PostFormValue(authn.CSRFField) != want {
		return fmt.Errorf("%w: missing or wrong %s", authn.ErrCSRF, authn.CSRFField)
	}
	return nil
}

// heldRequest is alice's held S3 delete, one approval needed from sre-leads.
func heldRequest(id string) *approval.Request {
	return &approval.Request{
		ID:        id,
		State:     approval.StatePending,
		Requester: alice,
		Action: catalog.Action{Cloud: "aws", Service: "s3", Operation: "DeleteObject", IAMAction: "s3:DeleteObject",
			Resource: "arn:aws:s3:::billing-exports/2026/02/ledger.csv", Region: "us-east-1", Account: "123456789012",
			Risk: catalog.Destructive, Known: true},
		Target:    "prod-aws",
		Context:   approval.RequestContext{Reason: "clean up the February export", Ticket: "OPS-1234", SourceIP: "10.1.2.3", UserAgent: "aws-cli/2.9.19"},
		Rule:      "prod-destructive-needs-sre",
		Message:   "destructive calls on prod need an SRE lead",
		Approvers: approval.Approvers{Groups: []string{"sre-leads"}, Count: 1},
		Grant:     approval.GrantTerms{TTL: time.Hour, Uses: 1, Scope: approval.ScopeResource},
		Approvals: []approval.Approval{},
		CreatedAt: testNow.Add(-7 * time.Minute),
		ExpiresAt: testNow.Add(24*time.Hour - 7*time.Minute),
		URL:       "http://airlock.test/requests/" + id,
	}
}
