package authn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
)

// refreshEnv is a session created by a real browser login at the fake provider.
type refreshEnv struct {
	p      *fakeProvider
	s      *Sessions
	st     store.Store
	clock  *testClock
	aud    *recordingAuditor
	logs   *testenv.LockedBuffer
	cookie *http.Cookie
}

func newRefreshEnv(t *testing.T, mod func(*fakeProvider)) *refreshEnv {
	t.Helper()
	return newRefreshEnvOn(t, memory.New(nil), mod)
}

// newRefreshEnvOn is newRefreshEnv with the sessions in st.
func newRefreshEnvOn(t *testing.T, st store.Store, mod func(*fakeProvider)) *refreshEnv {
	t.Helper()
	e := &refreshEnv{p: newFakeProvider(t), st: st, clock: &testClock{t: time.Now()},
		aud: &recordingAuditor{}, logs: &testenv.LockedBuffer{}}
	if mod != nil {
		mod(e.p)
	}
	srv, s := startSite(t, e.p, func(c *SessionsConfig) {
		c.Store, c.Now, c.Auditor = e.st, e.clock.Now, e.aud
		c.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.s = s
	c := browser(t)
	resp, err := c.Get(srv.URL + "/requests/1")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 {
		t.Fatalf("login: %d %q", resp.StatusCode, b)
	}
	for _, ck := range c.Jar.Cookies(resp.Request.URL) {
		if ck.Name == SessionCookie {
			e.cookie = ck
		}
	}
	if e.cookie == nil {
		t.Fatal("no session cookie after login")
	}
	return e
}

// identity is what a request with the session cookie gets.
func (e *refreshEnv) identity() (Identity, bool) {
	r := httptest.NewRequest("GET", "/requests/1", nil)
	r.AddCookie(e.cookie)
	return e.s.Identity(r)
}

func (e *refreshEnv) record(t *testing.T) (sessionRecord, bool) {
	t.Helper()
	return storedSession(t, e.st, sessionKey(e.cookie.Value))
}

// storedSession reads the session record under key as the store holds it.
func storedSession(t *testing.T, st store.Store, key string) (sessionRecord, bool) {
	t.Helper()
	data, err := st.Get(context.Background(), key)
	if err != nil {
		return sessionRecord{}, false
	}
	var rec sessionRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec, true
}

func (e *refreshEnv) setGroups(groups ...string) {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	e.p.user["groups"] = groups
}

func (e *refreshEnv) refreshes() int {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	return e.p.refreshes
}

// noSecrets fails when a refresh token the provider issued appears in the logs or audit events.
func (e *refreshEnv) noSecrets(t *testing.T) {
	t.Helper()
	e.p.mu.Lock()
	issued := []string{e.p.lastRefresh}
	for rt := range e.p.refreshTokens {
		issued = append(issued, rt)
	}
	e.p.mu.Unlock()
	events := ""
	for _, ev := range e.aud.all() {
		events += ev.Reason + " " + ev.Step + " " + ev.Identity.Email + "\n"
	}
	for _, rt := range issued {
		if rt == "" {
			continue
		}
		if strings.Contains(e.logs.String(), rt) || strings.Contains(events, rt) {
			t.Fatalf("refresh token %q appears in the logs or audit events", rt)
		}
	}
	if strings.Contains(e.logs.String(), "rt-") {
		t.Fatalf("a refresh token appears in the logs:\n%s", e.logs.String())
	}
}

func TestSessionRefreshChangesGroups(t *testing.T) {
	e := newRefreshEnv(t, nil)
	before, _ := e.record(t)
	id, ok := e.identity()
	if !ok || !slices.Equal(id.Groups, []string{"engineers", "oncall"}) || e.refreshes() != 0 {
		t.Fatalf("fresh session: %+v %v after %d refreshes", id, ok, e.refreshes())
	}

	// Removed from oncall at the provider: the first request after groups_refresh sees it.
	e.setGroups("engineers")
	e.clock.Advance(4 * time.Minute)
	if id, _ := e.identity(); !slices.Equal(id.Groups, []string{"engineers", "oncall"}) || e.refreshes() != 0 {
		t.Fatalf("refreshed before groups_refresh: %+v after %d refreshes", id, e.refreshes())
	}
	e.clock.Advance(time.Minute)
	id, ok = e.identity()
	if !ok || !slices.Equal(id.Groups, []string{"engineers"}) || id.Email != "alice@example.com" || e.refreshes() != 1 {
		t.Fatalf("after refresh: %+v %v after %d refreshes", id, ok, e.refreshes())
	}
	after, ok := e.record(t)
	if !ok || !after.Expires.Equal(before.Expires) || !after.Checked.Equal(e.clock.Now().UTC()) ||
		bytes.Equal(after.Refresh, before.Refresh) || !slices.Equal(after.Groups, []string{"engineers"}) {
		t.Fatalf("record after refresh = %+v, before %+v", after, before)
	}
	if id.ExpiresAt != before.Expires {
		t.Fatalf("refresh moved the session's expiry to %s (was %s)", id.ExpiresAt, before.Expires)
	}
	// The refreshed record is trusted until it is stale again: no second refresh.
	if _, ok := e.identity(); !ok || e.refreshes() != 1 {
		t.Fatalf("second read refreshed again (%d)", e.refreshes())
	}
	ev := e.aud.all()
	if len(ev) != 2 || ev[1].Kind != audit.KindLogin || ev[1].Step != StepSessionRefresh ||
		!slices.Equal(ev[1].Identity.Groups, []string{"engineers"}) || !strings.Contains(ev[1].Reason, "before: alice@example.com in groups [engineers, oncall]") {
		t.Fatalf("audit events = %+v", ev)
	}

	// A refresh that changes nothing is not an audit event.
	e.clock.Advance(5 * time.Minute)
	if id, ok := e.identity(); !ok || !slices.Equal(id.Groups, []string{"engineers"}) || e.refreshes() != 2 || len(e.aud.all()) != 2 {
		t.Fatalf("unchanged refresh: %+v %v, %d refreshes, %d events", id, ok, e.refreshes(), len(e.aud.all()))
	}
	e.noSecrets(t)

	// Refreshing never outlives the session.
	e.clock.Advance(12 * time.Hour)
	if _, ok := e.identity(); ok || e.refreshes() != 2 {
		t.Fatalf("expired session refreshed (%d) or accepted (%v)", e.refreshes(), ok)
	}
}

func TestSessionRefreshRefusedEndsSession(t *testing.T) {
	for name, tc := range map[string]struct {
		provider func(*fakeProvider)
		reason   string
	}{
		"refused (user removed, token revoked)": {func(p *fakeProvider) { p.refreshRefused = true }, "refused to refresh it (invalid_grant)"},
		"another subject":                       {func(p *fakeProvider) { p.refreshSubject = "mallory-sub" }, "names another subject"},
		"email no longer verified": {func(p *fakeProvider) { p.user["email_verified"] = false },
			"refreshed ID token was refused: email address not verified"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newRefreshEnv(t, nil)
			e.p.mu.Lock()
			tc.provider(e.p)
			e.p.mu.Unlock()
			e.clock.Advance(5 * time.Minute)
			if id, ok := e.identity(); ok {
				t.Fatalf("refused refresh still gives %+v", id)
			}
			if _, ok := e.record(t); ok {
				t.Fatal("the session record is still in the store")
			}
			ev := e.aud.all()
			if len(ev) != 2 || ev[1].Step != StepLogout || ev[1].Identity.Subject != "alice-sub" ||
				!strings.HasPrefix(ev[1].Reason, "session ended: ") || !strings.Contains(ev[1].Reason, tc.reason) {
				t.Fatalf("audit events = %+v", ev)
			}
			if !strings.Contains(e.logs.String(), "browser session ended") {
				t.Fatalf("no log line says the session ended:\n%s", e.logs.String())
			}
			// Ended for good: the next request does not ask the provider again.
			if _, ok := e.identity(); ok || e.refreshes() != 1 {
				t.Fatalf("after the end: ok=%v, %d refreshes", ok, e.refreshes())
			}
			e.noSecrets(t)
		})
	}
}

func TestSessionRefreshProviderDownKeepsSession(t *testing.T) {
	for name, down := range map[string]func(*fakeProvider, bool){
		"connection dropped": func(p *fakeProvider, on bool) { p.refreshDrop = on },
		"503": func(p *fakeProvider, on bool) {
			p.refreshStatus = map[bool]int{true: http.StatusServiceUnavailable}[on]
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newRefreshEnv(t, nil)
			before, _ := e.record(t)
			e.p.mu.Lock()
			down(e.p, true)
			e.p.mu.Unlock()
			e.clock.Advance(6 * time.Minute)
			if id, ok := e.identity(); ok {
				t.Fatalf("stale session trusted while the provider is down: %+v", id)
			}
			after, ok := e.record(t)
			if !ok || !bytes.Equal(after.Refresh, before.Refresh) || !after.Checked.Equal(before.Checked) {
				t.Fatalf("session changed or deleted by a transient failure: %+v", after)
			}
			if !strings.Contains(e.logs.String(), "browser session treated as logged out for this request: the identity provider cannot refresh its groups now") {
				t.Fatalf("no clear log line:\n%s", e.logs.String())
			}
			if len(e.aud.all()) != 1 {
				t.Fatalf("audit events for a transient failure: %+v", e.aud.all())
			}
			// Until refreshRetryAfter has passed, the session's requests do not wait for the
			// provider again: they are refused at once, even once it is back.
			tried := e.refreshes()
			e.p.mu.Lock()
			down(e.p, false)
			e.p.mu.Unlock()
			e.clock.Advance(refreshRetryAfter - time.Second)
			if _, ok := e.identity(); ok || e.refreshes() != tried {
				t.Fatalf("within refreshRetryAfter: trusted %v, %d refreshes (want %d)", ok, e.refreshes(), tried)
			}
			// The provider is back and the pause is over: the same session refreshes and works again.
			e.clock.Advance(time.Second)
			e.setGroups("sre-leads")
			if id, ok := e.identity(); !ok || !slices.Equal(id.Groups, []string{"sre-leads"}) {
				t.Fatalf("after the provider came back: %+v %v", id, ok)
			}
			e.noSecrets(t)
		})
	}
}

// A login at a provider that gives no refresh token (no offline_access) works as before, until
// its groups are older than groups_refresh: then it needs a new login.
func TestSessionWithoutRefreshTokenNeedsLogin(t *testing.T) {
	e := newRefreshEnv(t, func(p *fakeProvider) { p.noRefresh = true })
	if rec, _ := e.record(t); len(rec.Refresh) != 0 {
		t.Fatalf("record holds a refresh token: %+v", rec)
	}
	if _, ok := e.identity(); !ok {
		t.Fatal("fresh session refused")
	}
	e.clock.Advance(5 * time.Minute)
	if _, ok := e.identity(); ok || e.refreshes() != 0 {
		t.Fatalf("stale session without refresh token: ok=%v, %d refreshes", ok, e.refreshes())
	}
	if !strings.Contains(e.logs.String(), "needs a new login") {
		t.Fatalf("no log line says why:\n%s", e.logs.String())
	}
}

// Many requests on two replicas (two Sessions sharing one store) find the same stale session at
// once: exactly one refresh reaches the provider, and every request gets the refreshed groups.
func TestSessionRefreshConcurrentOnce(t *testing.T) {
	testConcurrentRefreshOnce(t, memory.New(nil))
}

func testConcurrentRefreshOnce(t *testing.T, st store.Store) {
	e := newRefreshEnvOn(t, st, nil)
	replica2, err := NewSessions(context.Background(), SessionsConfig{OIDC: e.s.cfg.OIDC, Store: e.st,
		PublicURL: e.s.cfg.PublicURL, Key: e.s.cfg.Key, Now: e.clock.Now, Auditor: e.aud, Logger: e.s.cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	arrived, gate := make(chan struct{}, 16), make(chan struct{})
	e.p.mu.Lock()
	e.p.refreshArrived, e.p.refreshGate = arrived, gate
	e.p.mu.Unlock()
	e.setGroups("engineers", "sre-leads")
	e.clock.Advance(10 * time.Minute)

	const perReplica = 8
	type result struct {
		id Identity
		ok bool
	}
	results := make(chan result, 2*perReplica)
	var started sync.WaitGroup
	for _, s := range []*Sessions{e.s, replica2, e.s, replica2} {
		for range perReplica / 2 {
			started.Add(1)
			go func() {
				r := httptest.NewRequest("GET", "/requests/1", nil)
				r.AddCookie(e.cookie)
				started.Done()
				id, ok := s.Identity(r)
				results <- result{id, ok}
			}()
		}
	}
	started.Wait()
	<-arrived // one refresh is at the provider; hold it while the others pile up
	close(gate)
	for range 2 * perReplica {
		res := <-results
		if !res.ok || !slices.Equal(res.id.Groups, []string{"engineers", "sre-leads"}) {
			t.Fatalf("a concurrent request got %+v ok=%v\n%s", res.id, res.ok, e.logs.String())
		}
	}
	if n := e.refreshes(); n != 1 {
		t.Fatalf("%d refreshes reached the provider, want 1", n)
	}
	if _, ok := e.record(t); !ok {
		t.Fatal("the session was ended")
	}
	if ev := e.aud.all(); len(ev) != 2 || ev[1].Step != StepSessionRefresh {
		t.Fatalf("audit events = %+v", ev)
	}
}

// The refresh token reaches the store only sealed, bound to its session's key.
func TestSessionRefreshTokenStoredEncrypted(t *testing.T) {
	e := newRefreshEnv(t, nil)
	e.p.mu.Lock()
	rt := e.p.lastRefresh
	e.p.mu.Unlock()
	raw, err := e.st.Get(context.Background(), sessionKey(e.cookie.Value))
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{rt, base64.StdEncoding.EncodeToString([]byte(rt)), base64.RawURLEncoding.EncodeToString([]byte(rt))} {
		if bytes.Contains(raw, []byte(form)) {
			t.Fatalf("the stored record contains the refresh token (%q):\n%s", form, raw)
		}
	}
	rec, _ := e.record(t)
	if got, err := e.s.openRefresh(sessionKey(e.cookie.Value), rec.Refresh); err != nil || got != rt {
		t.Fatalf("sealed token opens to %q, %v", got, err)
	}
	if _, err := e.s.openRefresh(sessionKey("another-session"), rec.Refresh); err == nil {
		t.Fatal("a sealed token copied into another session's record opens")
	}
	// Sessions with another key (another installation) cannot open it either.
	other := newTestSessions(t, e.p, "https://airlock.example", func(c *SessionsConfig) { c.Key = randomBytes(32) })
	if _, err := other.openRefresh(sessionKey(e.cookie.Value), rec.Refresh); err == nil {
		t.Fatal("a sealed token opens under another key")
	}
}
