package authn

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/store/memory"
)

func newTestSessions(t *testing.T, p *fakeProvider, publicURL string, mod func(*SessionsConfig)) *Sessions {
	t.Helper()
	cfg := SessionsConfig{OIDC: newTestOIDC(t, p, nil), Store: memory.New(nil), PublicURL: publicURL}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSessions(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// airlockSite is a stand-in for Airlock's server: the auth routes, a page behind RequireLogin
// that shows who is logged in and its CSRF token, and a form target that checks CSRF.
func airlockSite(s *Sessions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/auth/", s.Handler())
	mux.Handle("GET /requests/{id}", s.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		_, _ = io.WriteString(w, "request "+r.PathValue("id")+" for "+id.Email+" csrf="+s.CSRFToken(r))
	})))
	mux.Handle("POST /requests/{id}/approve", s.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.VerifyCSRF(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, "approved")
	})))
	return mux
}

// startSite starts Airlock's stand-in with sessions against the fake provider.
func startSite(t *testing.T, p *fakeProvider, mod func(*SessionsConfig)) (*httptest.Server, *Sessions) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	s := newTestSessions(t, p, publicURL, mod)
	srv.Config.Handler = airlockSite(s)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, s
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBrowserLoginLogout(t *testing.T) {
	p := newFakeProvider(t)
	aud := &recordingAuditor{}
	srv, s := startSite(t, p, func(c *SessionsConfig) { c.Auditor = aud })
	c := browser(t)

	// An unauthenticated page load goes to the provider and back to the same page.
	var sessionCookie *http.Cookie
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		for _, ck := range req.Response.Cookies() {
			if ck.Name == SessionCookie && ck.Value != "" {
				sessionCookie = ck
			}
		}
		return nil
	}
	resp, err := c.Get(srv.URL + "/requests/42?tab=approvals")
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, resp)
	if resp.Request.URL.Path != "/requests/42" || resp.Request.URL.RawQuery != "tab=approvals" || !strings.HasPrefix(page, "request 42 for alice@example.com") {
		t.Fatalf("landed on %s: %q", resp.Request.URL, page)
	}
	if sessionCookie == nil || !sessionCookie.HttpOnly || sessionCookie.SameSite != http.SameSiteLaxMode ||
		sessionCookie.Path != "/" || sessionCookie.Secure || sessionCookie.MaxAge != int((12*time.Hour).Seconds()) {
		t.Fatalf("session cookie = %+v", sessionCookie)
	}
	ev := aud.all()
	if len(ev) != 1 || ev[0].Kind != audit.KindLogin || ev[0].Step != StepBrowserLogin || ev[0].Identity.Subject != "alice-sub" {
		t.Fatalf("login events = %+v", ev)
	}
	csrf := page[strings.Index(page, "csrf=")+5:]

	// A state-changing POST without the CSRF token is refused; with it, it goes through.
	resp, err = c.PostForm(srv.URL+"/requests/42/approve", url.Values{"comment": {"ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "CSRF") {
		t.Fatalf("POST without CSRF: %d %q", resp.StatusCode, b)
	}
	resp, err = c.PostForm(srv.URL+"/requests/42/approve", url.Values{CSRFField: {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(srv.URL+"/requests/42/approve", url.Values{CSRFField: {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 || b != "approved" {
		t.Fatalf("POST with CSRF: %d %q", resp.StatusCode, b)
	}

	// Logout needs CSRF too, then ends the session on the server and sends the browser to the
	// provider's end_session_endpoint.
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = noRedirect.PostForm(srv.URL+LogoutPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", resp.StatusCode)
	}
	resp, err = noRedirect.PostForm(srv.URL+LogoutPath, url.Values{CSRFField: {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	body(t, resp)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, p.srv.URL+"/logout?") {
		t.Fatalf("logout: %d to %q", resp.StatusCode, loc)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(sessionCookie)
	if _, ok := s.Identity(r); ok {
		t.Fatal("the old session cookie still works after logout")
	}
	if ev := aud.all(); len(ev) != 2 || ev[1].Step != StepLogout {
		t.Fatalf("events after logout = %+v", ev)
	}
}

func TestSessionExpires(t *testing.T) {
	p := newFakeProvider(t)
	now := time.Now()
	s := newTestSessions(t, p, "https://airlock.example", func(c *SessionsConfig) {
		c.TTL = time.Hour
		c.Now = func() time.Time { return now }
	})
	sid, err := s.create(context.Background(), Identity{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sid})
	if _, ok := s.Identity(r); !ok {
		t.Fatal("fresh session refused")
	}
	now = now.Add(time.Hour + time.Second)
	if _, ok := s.Identity(r); ok {
		t.Fatal("session outlived its TTL")
	}
	if c := s.cookie(SessionCookie, "x", "/", time.Hour); !c.Secure {
		t.Fatal("cookie not Secure with an https public URL")
	}
}

func TestLoginRefusals(t *testing.T) {
	p := newFakeProvider(t)
	srv, _ := startSite(t, p, nil)

	// A callback without the login cookie (another browser, or a forged link) is refused.
	resp, err := browser(t).Get(srv.URL + CallbackPath + "?code=x&state=y")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "start again") {
		t.Fatalf("callback without state: %d %q", resp.StatusCode, b)
	}

	// An ID token whose nonce is not the login's is refused.
	p.badNonce = true
	resp, err = browser(t).Get(srv.URL + LoginPath + "?next=/requests/1")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "nonce") {
		t.Fatalf("bad nonce: %d %q", resp.StatusCode, b)
	}
	p.badNonce = false

	// Only local paths are followed after login.
	c := browser(t)
	resp, err = c.Get(srv.URL + LoginPath + "?next=" + url.QueryEscape("//evil.example/x"))
	if err != nil {
		t.Fatal(err)
	}
	body(t, resp)
	if resp.Request.URL.Host != strings.TrimPrefix(srv.URL, "http://") || resp.Request.URL.Path != "/" {
		t.Fatalf("open redirect: landed on %s", resp.Request.URL)
	}

	// A POST to a page without a session is refused rather than redirected.
	resp, err = browser(t).PostForm(srv.URL+"/requests/1/approve", nil)
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST without session: %d", resp.StatusCode)
	}
}

func TestLoginAuditDownRefusesLogin(t *testing.T) {
	p := newFakeProvider(t)
	srv, _ := startSite(t, p, func(c *SessionsConfig) { c.Auditor = &recordingAuditor{fail: true} })
	resp, err := browser(t).Get(srv.URL + "/requests/1")
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login with the audit log down: %d", resp.StatusCode)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "/",
		"/requests/42":           "/requests/42",
		"/requests/42?tab=a#x":   "/requests/42?tab=a#x",
		"//evil.example":         "/",
		"/\\evil.example":        "/",
		"https://evil.example/":  "/",
		"javascript:alert(1)":    "/",
		"requests/42":            "/",
		"/a\nb":                  "/",
		"/%2F%2Fevil.example":    "/%2F%2Fevil.example",
		"http:/evil.example":     "/",
		"/\t/evil.example":       "/",
		"/requests/1?next=//x.y": "/requests/1?next=//x.y",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "http://x", "/a?b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := localPath(in)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.Contains(got, "\\") {
			t.Fatalf("localPath(%q) = %q is not local", in, got)
		}
	})
}

func TestVerifyCSRF(t *testing.T) {
	p := newFakeProvider(t)
	s := newTestSessions(t, p, "https://airlock.example", nil)
	sid, err := s.create(context.Background(), Identity{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	good := s.csrfFor(sid)
	other := s.csrfFor("another-session")
	for name, tc := range map[string]struct {
		header map[string]string
		form   string
		ok     bool
	}{
		"form token":            {form: CSRFField + "=" + good, ok: true},
		"header token":          {header: map[string]string{CSRFHeader: good}, ok: true},
		"same origin":           {header: map[string]string{CSRFHeader: good, "Origin": "https://airlock.example", "Sec-Fetch-Site": "same-origin"}, ok: true},
		"no token":              {},
		"token of another":      {form: CSRFField + "=" + other},
		"cross-site fetch":      {header: map[string]string{CSRFHeader: good, "Sec-Fetch-Site": "cross-site"}},
		"same-site other port":  {header: map[string]string{CSRFHeader: good, "Sec-Fetch-Site": "same-site"}},
		"foreign origin":        {header: map[string]string{CSRFHeader: good, "Origin": "https://evil.example"}},
		"opaque origin (null)":  {header: map[string]string{CSRFHeader: good, "Origin": "null"}},
		"http downgrade origin": {header: map[string]string{CSRFHeader: good, "Origin": "http://airlock.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/requests/1/approve", strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sid})
			err := s.VerifyCSRF(r)
			if tc.ok != (err == nil) {
				t.Fatalf("VerifyCSRF = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrCSRF) {
				t.Fatalf("err %v does not wrap ErrCSRF", err)
			}
		})
	}
}
