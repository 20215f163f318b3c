package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store/memory"
)

// recordingAuditor keeps events; fail makes Record fail.
type recordingAuditor struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (a *recordingAuditor) Record(_ context.Context, e *audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit sink down")
	}
	a.events = append(a.events, *e)
	return nil
}

func (a *recordingAuditor) all() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

func TestAPIAuthenticatorBearer(t *testing.T) {
	p := newFakeProvider(t)
	o := newTestOIDC(t, p, nil)
	aud := &recordingAuditor{}
	a, err := NewAPIAuthenticator(APIAuthenticatorConfig{Verifier: o, Store: memory.New(nil), Auditor: aud})
	if err != nil {
		t.Fatal(err)
	}
	if a.BootstrapEnabled() {
		t.Fatal("bootstrap enabled without config")
	}
	good := p.sign(p.claims("airlock-cli", time.Hour))
	req := func(h string) *http.Request {
		r := httptest.NewRequest("POST", "/api/v1/credentials/aws", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return r
	}

	for range 3 {
		id, err := a.Authenticate(req("Bearer " + good))
		if err != nil || id.Email != "alice@example.com" {
			t.Fatalf("Authenticate = %+v, %v", id, err)
		}
	}
	ev := aud.all()
	if len(ev) != 1 || ev[0].Kind != audit.KindLogin || ev[0].Step != StepTokenFirstUse || ev[0].Identity.Email != "alice@example.com" {
		t.Fatalf("want one login event for the token's first use, got %+v", ev)
	}
	if b, _ := json.Marshal(ev[0]); strings.Contains(string(b), good[len(good)-20:]) {
		t.Fatal("the audit event carries the token")
	}

	for name, tc := range map[string]struct {
		header string
		also   error
	}{
		"missing":       {"", nil},
		"basic scheme":  {"Basic YWxpY2U6cGFzc3dvcmQ=", nil},
		"empty bearer":  {"Bearer ", nil},
		"expired":       {"Bearer " + p.sign(p.claims("airlock", -time.Minute)), ErrTokenExpired},
		"wrong aud":     {"Bearer " + p.sign(p.claims("other-app", time.Hour)), ErrWrongAudience},
		"forged":        {"Bearer " + resign(t, good, testRSAKey(t, 2)), ErrBadSignature},
		"not a JWT":     {"Bearer hello", ErrTokenMalformed},
		"bootstrap off": {"Bearer a-bootstrap-token-of-some-length", ErrTokenMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := a.Authenticate(req(tc.header))
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("err = %v, want also %v", err, tc.also)
			}
		})
	}

	// The middleware answers 401 with a JSON reason.
	rec := httptest.NewRecorder()
	a.Require(http.NotFoundHandler()).ServeHTTP(rec, req("Bearer "+p.sign(p.claims("other-app", time.Hour))))
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "another client") || rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("Require: %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	a.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		_, _ = w.Write([]byte(id.Email))
	})).ServeHTTP(rec, req("Bearer "+good))
	if rec.Code != 200 || rec.Body.String() != "alice@example.com" {
		t.Fatalf("Require: %d %q", rec.Code, rec.Body)
	}
}

func TestAPIAuthenticatorAuditDown(t *testing.T) {
	p := newFakeProvider(t)
	aud := &recordingAuditor{fail: true}
	a, err := NewAPIAuthenticator(APIAuthenticatorConfig{Verifier: newTestOIDC(t, p, nil), Store: memory.New(nil), Auditor: aud})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/v1/requests", nil)
	r.Header.Set("Authorization", "Bearer "+p.sign(p.claims("airlock", time.Hour)))
	if _, err := a.Authenticate(r); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("err = %v, want ErrAuditUnavailable", err)
	}
	aud.mu.Lock()
	aud.fail = false
	aud.mu.Unlock()
	if _, err := a.Authenticate(r); err != nil || len(aud.all()) != 1 {
		t.Fatalf("after the sink recovers: %v, %d events", err, len(aud.all()))
	}
}

func TestAPIAuthenticatorBootstrap(t *testing.T) {
	const token = "dev-bootstrap-0123456789abcdef"
	dev := config.Dev{BootstrapTokenEnv: "AIRLOCK_TEST_BOOTSTRAP",
		BootstrapIdentity: config.BootstrapIdentity{Subject: "ci", Email: "ci@example.com", Groups: []string{"engineers"}}}
	if !BootstrapEnabled(dev) || BootstrapEnabled(config.Dev{}) {
		t.Fatal("BootstrapEnabled")
	}
	if _, err := NewAPIAuthenticator(APIAuthenticatorConfig{Dev: dev}); err == nil || !strings.Contains(err.Error(), "AIRLOCK_TEST_BOOTSTRAP") {
		t.Fatalf("unset variable: err = %v", err)
	}
	t.Setenv("AIRLOCK_TEST_BOOTSTRAP", "short")
	if _, err := NewAPIAuthenticator(APIAuthenticatorConfig{Dev: dev}); err == nil {
		t.Fatal("short token accepted")
	}
	t.Setenv("AIRLOCK_TEST_BOOTSTRAP", token)
	a, err := NewAPIAuthenticator(APIAuthenticatorConfig{Dev: dev})
	if err != nil {
		t.Fatal(err)
	}
	if !a.BootstrapEnabled() {
		t.Fatal("not enabled")
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	id, err := a.Authenticate(r)
	if err != nil || id.Subject != "ci" || !id.InGroup("engineers") {
		t.Fatalf("bootstrap: %+v, %v", id, err)
	}
	r.Header.Set("Authorization", "Bearer "+token+"x")
	if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong bootstrap token: %v", err)
	}
}

func TestAPIAuthenticatorSessionCookie(t *testing.T) {
	p := newFakeProvider(t)
	s := newTestSessions(t, p, "http://airlock.test", nil)
	a, err := NewAPIAuthenticator(APIAuthenticatorConfig{Sessions: s})
	if err != nil {
		t.Fatal(err)
	}
	sid, err := s.create(context.Background(), Identity{Subject: "bob", Email: "bob@example.com", Groups: []string{"sre-leads"}})
	if err != nil {
		t.Fatal(err)
	}
	cookie := &http.Cookie{Name: SessionCookie, Value: sid}

	get := httptest.NewRequest("GET", "/api/v1/requests", nil)
	get.AddCookie(cookie)
	if id, err := a.Authenticate(get); err != nil || id.Email != "bob@example.com" {
		t.Fatalf("GET with session: %+v, %v", id, err)
	}

	post := httptest.NewRequest("POST", "/api/v1/requests/r1/approve", strings.NewReader(`{}`))
	post.AddCookie(cookie)
	if _, err := a.Authenticate(post); !errors.Is(err, ErrCSRF) {
		t.Fatalf("POST without CSRF token: err = %v, want ErrCSRF", err)
	}
	post.Header.Set(CSRFHeader, s.CSRFToken(get))
	if _, err := a.Authenticate(post); err != nil {
		t.Fatalf("POST with CSRF token: %v", err)
	}
	post.Header.Set("Origin", "http://evil.test")
	if _, err := a.Authenticate(post); !errors.Is(err, ErrCSRF) {
		t.Fatalf("cross-origin POST: err = %v", err)
	}

	bad := httptest.NewRequest("GET", "/", nil)
	bad.AddCookie(&http.Cookie{Name: SessionCookie, Value: "made-up"})
	if _, err := a.Authenticate(bad); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestAuthConfigHandler(t *testing.T) {
	p := newFakeProvider(t)
	o := newTestOIDC(t, p, nil)
	rec := httptest.NewRecorder()
	AuthConfigHandler(o, "").ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/auth/config", nil))
	var got AuthConfig
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Issuer != p.srv.URL || got.ClientID != "airlock-cli" || !slices.Contains(got.Scopes, "openid") {
		t.Fatalf("auth config = %+v", got)
	}
	if strings.Contains(rec.Body.String(), "airlock-secret") {
		t.Fatal("auth config leaks the client secret")
	}
}
