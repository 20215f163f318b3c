package authn

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store/memory"
)

// dexLogin fills Dex's local login form.
func dexLogin(user string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), user),
		chromedp.SendKeys(chromedp.ID("password"), "password"),
		chromedp.Click(chromedp.ID("submit-login")),
	)
}

// dexSite is Airlock's stand-in for browser tests: the auth routes, an approval page showing who
// is logged in with which groups (#who) and an approve form with its CSRF token, and the form's
// target (#done).
func dexSite(s *Sessions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/auth/", s.Handler())
	mux.Handle("GET /requests/{id}", s.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		fmt.Fprintf(w, `<html><body><p id="who">%s in %s</p>
<form method="post" action="/requests/%s/approve"><input type="hidden" name="%s" value="%s">
<button id="approve" type="submit">Approve</button></form></body></html>`,
			html.EscapeString(id.Email), html.EscapeString(strings.Join(id.Groups, ",")), html.EscapeString(r.PathValue("id")),
			CSRFField, html.EscapeString(s.CSRFToken(r)))
	})))
	mux.Handle("POST /requests/{id}/approve", s.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.VerifyCSRF(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprint(w, `<html><body><p id="done">approved</p></body></html>`)
	})))
	return mux
}

// A browser opens an approval page, is sent to Dex, logs in, and lands back on the page with
// a session cookie; the page's approve form (with its CSRF token) then works.
func TestDexBrowserLogin(t *testing.T) {
	ctx := testenv.Browser(t, chromedp.WindowSize(1280, 900))
	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	d := testenv.StartDex(t, publicURL+CallbackPath)
	aud := &recordingAuditor{}
	s, err := NewSessions(context.Background(), SessionsConfig{OIDC: dexOIDC(t, d, nil), Store: memory.New(nil),
		PublicURL: publicURL, Auditor: aud})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = dexSite(s)
	srv.Start()
	t.Cleanup(srv.Close)

	step, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(step,
		chromedp.Navigate(srv.URL+"/requests/7"),
		dexLogin("carol@example.com"),
		chromedp.WaitVisible(chromedp.ID("who")),
	); err != nil {
		t.Fatalf("browser login: %v", err)
	}
	who, err := chromedp.Run(step, chromedp.Text(chromedp.ID("who")))
	if err != nil {
		t.Fatal(err)
	}
	location, err := chromedp.Run(step, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	jar, err := chromedp.Call(step, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := jar.Cookies
	if err := chromedp.Do(step, chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.ID("done"))); err != nil {
		t.Fatalf("approve form: %v", err)
	}
	done, err := chromedp.Run(step, chromedp.Text(chromedp.ID("done")))
	if err != nil {
		t.Fatal(err)
	}
	if who != "carol@example.com in sre-leads,engineers" || location != srv.URL+"/requests/7" {
		t.Fatalf("landed on %s showing %q", location, who)
	}
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == SessionCookie {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Path != "/" {
		t.Fatalf("session cookie = %+v", session)
	}
	if done != "approved" {
		t.Fatalf("approve form: %q", done)
	}
	if ev := aud.all(); len(ev) != 1 || ev[0].Identity.Email != "carol@example.com" || ev[0].Kind != "login" {
		t.Fatalf("login events = %+v", ev)
	}
}
