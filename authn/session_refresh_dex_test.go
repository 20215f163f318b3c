package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store/memory"
)

// dexUser is a static Dex user whose ID stays the same across restarts, as Dex's refresh of a
// static user requires.
type dexUser struct {
	email, name, id string
	groups          []string
}

// sqliteDex is Dex on one issuer with sqlite storage, so that refresh tokens and signing keys
// survive a restart with other static users, the way an administrator's change at the provider
// would look to Airlock. Refresh tokens are strictly rotated (no reuse interval), and Dex asks
// its password connector for the user's current groups on every refresh.
type sqliteDex struct {
	t        *testing.T
	bin      string
	port     int
	dir      string
	redirect string
	proc     *testenv.Process
	*testenv.Dex
}

func startSQLiteDex(t *testing.T, redirect string, users ...dexUser) *sqliteDex {
	t.Helper()
	d := &sqliteDex{t: t, bin: testenv.Binary(t, "dex"), port: testenv.FreePort(t), dir: t.TempDir(), redirect: redirect}
	d.Dex = &testenv.Dex{Issuer: fmt.Sprintf("http://127.0.0.1:%d/dex", d.port), ClientID: "airlock",
		ClientSecret: "airlock-secret", Dir: d.dir}
	d.run("dex.db", users...)
	return d
}

// run (re)starts Dex with users, keeping its state in the sqlite file db.
func (d *sqliteDex) run(db string, users ...dexUser) {
	d.t.Helper()
	if d.proc != nil {
		_ = d.proc.Cmd.Process.Kill()
		testenv.WaitFor(d.t, "dex to stop", 10*time.Second, func() error {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.port))
			if err != nil {
				return nil
			}
			c.Close()
			return fmt.Errorf("port %d still answers", d.port)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "issuer: %s\nstorage: {type: sqlite3, config: {file: %q}}\nweb: {http: 127.0.0.1:%d}\n",
		d.Issuer, filepath.Join(d.dir, db), d.port)
	b.WriteString("logger: {level: warn}\nexpiry: {refreshTokens: {reuseInterval: 0s}}\n")
	b.WriteString("oauth2: {skipApprovalScreen: true, passwordConnector: local, grantTypes: [authorization_code, refresh_token], responseTypes: [code]}\n")
	b.WriteString("enablePasswordDB: true\nstaticPasswords:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "- {email: %s, hash: %q, username: %s, userID: %s, groups: [%s]}\n",
			u.email, testDexPasswordHash, u.name, u.id, strings.Join(u.groups, ", "))
	}
	fmt.Fprintf(&b, "staticClients:\n- {id: airlock, secret: airlock-secret, name: Airlock, redirectURIs: [%q]}\n", d.redirect)
	cfg := filepath.Join(d.dir, "dex.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		d.t.Fatal(err)
	}
	d.proc = testenv.Start(d.t, nil, d.bin, "serve", cfg)
	testenv.WaitFor(d.t, "dex", 30*time.Second, testenv.HTTPReady(d.Issuer+"/.well-known/openid-configuration"))
}

// bcrypt of "password" (cost 10), as in internal/testenv.
const testDexPasswordHash = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"

// Against a real Dex and a real browser: carol logs in as an approver (sre-leads); an
// administrator removes her from sre-leads, and her session's groups follow within
// groups_refresh; her account is then replaced at Dex (Dex answers that refresh with a server
// error, which Airlock treats as "cannot say now": the session stops working but is kept); finally
// Dex loses its refresh tokens (a new database), which it answers with a refusal, and the
// session ends.
func TestDexSessionGroupsRefresh(t *testing.T) {
	ctx := testenv.Browser(t, chromedp.WindowSize(1280, 900))
	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	carol := dexUser{email: "carol@example.com", name: "carol", id: "00000000-0000-4000-8000-000000000003",
		groups: []string{"sre-leads", "engineers"}}
	bob := dexUser{email: "bob@example.com", name: "bob", id: "00000000-0000-4000-8000-000000000002", groups: []string{"sre-leads"}}
	d := startSQLiteDex(t, publicURL+CallbackPath, carol, bob)

	clock := &testClock{t: time.Now()} // the sessions' clock: refreshes are due when it moves
	st := memory.New(nil)
	aud := &recordingAuditor{}
	logs := &testenv.LockedBuffer{}
	s, err := NewSessions(context.Background(), SessionsConfig{OIDC: dexOIDC(t, d.Dex, nil), Store: st,
		PublicURL: publicURL, Auditor: aud, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = dexSite(s)
	srv.Start()
	t.Cleanup(srv.Close)

	step := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		t.Cleanup(cancel)
		return c
	}
	who := func() string {
		t.Helper()
		c := step()
		if err := chromedp.Do(c, chromedp.Navigate(srv.URL+"/requests/7"), chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
			t.Fatalf("approval page: %v\n%s", err, logs.String())
		}
		text, err := chromedp.Run(c, chromedp.Text(chromedp.ID("who")))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	sentToLogin := func() {
		t.Helper()
		if err := chromedp.Do(step(), chromedp.Navigate(srv.URL+"/requests/7"), chromedp.WaitVisible(chromedp.ID("login"))); err != nil {
			t.Fatalf("expected Dex's login form: %v\n%s", err, logs.String())
		}
	}
	var sessionKeyOf string // the store key of carol's session
	record := func() (sessionRecord, bool) { t.Helper(); return storedSession(t, st, sessionKeyOf) }
	var seenTokens []string // every refresh token Dex gave the session, read back from the record
	keepToken := func() {
		t.Helper()
		rec, ok := record()
		if !ok {
			t.Fatal("no session record")
		}
		rt, err := s.openRefresh(sessionKeyOf, rec.Refresh)
		if err != nil || rt == "" {
			t.Fatalf("stored refresh token: %q, %v", rt, err)
		}
		seenTokens = append(seenTokens, rt)
	}

	if err := chromedp.Do(step(), chromedp.Navigate(srv.URL+"/requests/7"), dexLogin(carol.email), chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("browser login: %v", err)
	}
	if got := who(); got != "carol@example.com in sre-leads,engineers" {
		t.Fatalf("after login: %q", got)
	}
	jar, err := chromedp.Call(step(), network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range jar.Cookies {
		if c.Name == SessionCookie {
			sessionKeyOf = sessionKey(c.Value)
		}
	}
	keepToken()

	// Removed from sre-leads at Dex: within groups_refresh the page sees it, and the change is
	// on the audit trail.
	carol.groups = []string{"engineers"}
	d.run("dex.db", carol, bob)
	clock.Advance(4 * time.Minute)
	if got := who(); got != "carol@example.com in sre-leads,engineers" {
		t.Fatalf("before groups_refresh: %q", got)
	}
	clock.Advance(time.Minute)
	if got := who(); got != "carol@example.com in engineers" {
		t.Fatalf("after groups_refresh: %q", got)
	}
	ev := aud.all()
	if len(ev) != 2 || ev[1].Step != StepSessionRefresh || !slices.Equal(ev[1].Identity.Groups, []string{"engineers"}) ||
		!strings.Contains(ev[1].Reason, "before: carol@example.com in groups [sre-leads, engineers]") {
		t.Fatalf("audit events = %+v", ev)
	}
	keepToken()
	if seenTokens[0] == seenTokens[1] {
		t.Fatal("the refresh token was not rotated")
	}

	// Her account is replaced by another with the same email (a new user ID): Dex answers the
	// refresh with HTTP 500 ("user not found" in its log), which is not a refusal; the page sends
	// her to log in, and the session is kept (nothing is audited). (Deleting the static user
	// outright makes Dex 2.45 on sqlite hang on the refresh, which ends the same way, after the
	// HTTP client's timeout.)
	impostor := carol
	impostor.id = "00000000-0000-4000-8000-000000000099"
	d.run("dex.db", impostor, bob)
	clock.Advance(5 * time.Minute)
	sentToLogin()
	if _, kept := record(); !kept || !strings.Contains(logs.String(), "the identity provider cannot refresh its groups now") {
		t.Fatalf("session kept=%v after a server error; logs:\n%s", kept, logs.String())
	}
	if len(aud.all()) != 2 {
		t.Fatalf("audit events = %+v", aud.all())
	}

	// Back at Dex, the kept session works again with her current groups, once the pause after
	// a failed refresh (refreshRetryAfter) is over.
	d.run("dex.db", carol, bob)
	clock.Advance(refreshRetryAfter)
	if got := who(); got != "carol@example.com in engineers" {
		t.Fatalf("after carol is back: %q", got)
	}
	keepToken()

	// Dex forgets every refresh token (a new database): its refusal ends the session.
	d.run("fresh.db", carol, bob)
	clock.Advance(5 * time.Minute)
	sentToLogin()
	if _, kept := record(); kept {
		t.Fatal("the session is still in the store after Dex refused the refresh")
	}
	ev = aud.all()
	if len(ev) != 3 || ev[2].Step != StepLogout || ev[2].Identity.Email != carol.email ||
		!strings.Contains(ev[2].Reason, "session ended: the identity provider refused to refresh it (invalid_request)") {
		t.Fatalf("audit events = %+v", ev)
	}
	for _, rt := range seenTokens {
		for _, e := range ev {
			if strings.Contains(e.Reason, rt) {
				t.Fatalf("a refresh token in the audit event %+v", e)
			}
		}
		if strings.Contains(logs.String(), rt) {
			t.Fatalf("a refresh token in the logs:\n%s", logs.String())
		}
	}
}
