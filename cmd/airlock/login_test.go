package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/internal/testenv"
)

// outputBuffer is an io.Writer that a test can read while a command writes.
type outputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *outputBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *outputBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// isolateConfigDir points os.UserConfigDir at a fresh directory.
func isolateConfigDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	return dir
}

func fakeIDToken(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": "s", "email": "alice@example.com", "exp": exp.Unix()})
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + "." + enc([]byte("sig"))
}

func TestTokenStore(t *testing.T) {
	dir := isolateConfigDir(t)
	ctx := context.Background()
	if _, err := loadToken(ctx, "https://airlock.example"); !errors.Is(err, errNotLoggedIn) {
		t.Fatalf("no login: err = %v", err)
	}
	fresh := fakeIDToken(time.Now().Add(time.Hour))
	if err := saveLogin(ctx, "https://airlock.example/", &storedLogin{Issuer: "https://idp.example", ClientID: "airlock-cli",
		IDToken: fresh, Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err := loadToken(ctx, "https://airlock.example")
	if err != nil || got != fresh {
		t.Fatalf("loadToken = %q, %v", got, err)
	}
	path := filepath.Join(dir, "airlock", "tokens.json")
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock left behind: %v", err)
	}

	// Near expiry without a refresh token: a clear error, no stale token.
	tokenNow = func() time.Time { return time.Now().Add(58 * time.Minute) }
	t.Cleanup(func() { tokenNow = time.Now })
	if _, err := loadToken(ctx, "https://airlock.example"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired login: err = %v", err)
	}

	var out outputBuffer
	if err := logoutCmd(ctx, []string{"--server", "https://airlock.example"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := loadToken(ctx, "https://airlock.example"); !errors.Is(err, errNotLoggedIn) {
		t.Fatalf("after logout: err = %v", err)
	}
}

func TestLoginRequiresServer(t *testing.T) {
	var stderr outputBuffer
	if code := run(context.Background(), []string{"login"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "--server") {
		t.Fatalf("login without --server: exit %d, %q", code, stderr.String())
	}
}

// airlockWithDex starts Dex and an Airlock stand-in that serves /api/v1/auth/config, and
// returns the stand-in's URL and a verifier that accepts the CLI client's tokens.
func airlockWithDex(t *testing.T) (string, *testenv.Dex, *authn.OIDC) {
	t.Helper()
	d := testenv.StartDex(t)
	o, err := authn.NewOIDC(context.Background(), authn.OIDCConfig{Issuer: d.Issuer, ClientID: d.ClientID,
		ClientSecret: d.ClientSecret, ExtraAudiences: []string{testenv.DexCLIClientID}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/auth/config", authn.AuthConfigHandler(o, ""))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, d, o
}

// runLogin runs `airlock login` in the background and returns its stderr and exit code channel.
func runLogin(t *testing.T, args ...string) (*outputBuffer, *outputBuffer, chan int) {
	t.Helper()
	stdout, stderr := &outputBuffer{}, &outputBuffer{}
	exit := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	go func() { exit <- run(ctx, append([]string{"login"}, args...), stdout, stderr) }()
	return stdout, stderr, exit
}

func waitForOutput(t *testing.T, what string, buf *outputBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s in output: %q", what, buf.String())
	return nil
}

func waitExit(t *testing.T, exit chan int, stdout, stderr *outputBuffer) {
	t.Helper()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("airlock login exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("airlock login did not finish\nstderr: %s", stderr)
	}
}

// The device flow against a real Dex: the test plays the user on "another device" with an HTTP
// client; the stored login then yields an ID token that Airlock accepts, renews silently, and
// is gone after logout.
func TestLoginDeviceFlowDex(t *testing.T) {
	isolateConfigDir(t)
	server, d, o := airlockWithDex(t)
	stdout, stderr, exit := runLogin(t, "--server", server, "--device")
	m := waitForOutput(t, "verification URL", stderr, regexp.MustCompile(`or open (\S+user_code=\S+)`))

	jar, _ := cookiejar.New(nil)
	user := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := user.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := regexp.MustCompile(`name="user_code"[^>]*value="([A-Z0-9-]+)"`).FindSubmatch(page)
	if resp.StatusCode != 200 || code == nil {
		t.Fatalf("device page: %d %s", resp.StatusCode, page)
	}
	resp, err = user.PostForm(d.Issuer+"/device/auth/verify_code", url.Values{"user_code": {string(code[1])}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.Path, "/auth/local") {
		t.Fatalf("user code led to %s, not the login form", resp.Request.URL)
	}
	resp, err = user.PostForm(resp.Request.URL.String(), url.Values{"login": {"alice@example.com"}, "password": {"password"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Request.URL.Path, "/device/callback") {
		t.Fatalf("login form led to %d %s: %s", resp.StatusCode, resp.Request.URL, page)
	}
	waitExit(t, exit, stdout, stderr)
	if !strings.Contains(stdout.String(), "Logged in to "+server+" as alice@example.com (groups: engineers, oncall)") {
		t.Fatalf("stdout: %q", stdout)
	}

	ctx := context.Background()
	token, err := loadToken(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	id, err := o.VerifyIDToken(ctx, token)
	if err != nil || id.Email != "alice@example.com" || !slices.Equal(id.Groups, []string{"engineers", "oncall"}) {
		t.Fatalf("stored token: %+v, %v", id, err)
	}

	// Near expiry, loadToken renews with the refresh token, silently.
	tokenNow = func() time.Time { return id.ExpiresAt.Add(-time.Minute) }
	t.Cleanup(func() { tokenNow = time.Now })
	renewed, err := loadToken(ctx, server)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if renewed == token {
		t.Fatal("token not renewed near expiry")
	}
	if id2, err := o.VerifyIDToken(ctx, renewed); err != nil || id2.Email != "alice@example.com" {
		t.Fatalf("renewed token: %+v, %v", id2, err)
	}
	tokenNow = time.Now
	if again, err := loadToken(ctx, server); err != nil || again != renewed {
		t.Fatalf("fresh token not reused: %v", err)
	}

	var out outputBuffer
	if code := run(ctx, []string{"logout", "--server", server}, &out, &out); code != 0 || !strings.Contains(out.String(), "Logged out of "+server) {
		t.Fatalf("logout: %d %q", code, out.String())
	}
	if _, err := loadToken(ctx, server); !errors.Is(err, errNotLoggedIn) {
		t.Fatalf("after logout: %v", err)
	}
}

// The browser flow: PKCE with a loopback redirect; the "browser" that the CLI opens is
// headless Chromium, which logs in at Dex and is sent back to the CLI's callback.
func TestLoginBrowserLoopbackDex(t *testing.T) {
	isolateConfigDir(t)
	server, _, o := airlockWithDex(t)
	browser := testenv.Browser(t)
	browsed := make(chan error, 1)
	var result string
	defaultOpener := openBrowser
	t.Cleanup(func() { openBrowser = defaultOpener })
	openBrowser = func(u string) error {
		if !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
			return fmt.Errorf("unexpected login URL %s", u)
		}
		go func() {
			ctx, cancel := context.WithTimeout(browser, 60*time.Second)
			defer cancel()
			err := chromedp.Do(ctx,
				chromedp.Navigate(u),
				chromedp.WaitVisible(chromedp.ID("login")),
				chromedp.SendKeys(chromedp.ID("login"), "bob@example.com"),
				chromedp.SendKeys(chromedp.ID("password"), "password"),
				chromedp.Click(chromedp.ID("submit-login")),
				chromedp.WaitVisible(chromedp.ID("result")),
			)
			if err == nil {
				result, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
			}
			browsed <- err
		}()
		return nil
	}
	stdout, stderr, exit := runLogin(t, "--server", server)
	waitExit(t, exit, stdout, stderr)
	if err := <-browsed; err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !strings.Contains(result, "Logged in to Airlock") {
		t.Fatalf("callback page says %q", result)
	}
	if !strings.Contains(stderr.String(), "If it did not open, visit:") {
		t.Fatalf("login URL not printed: %q", stderr)
	}
	token, err := loadToken(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := o.VerifyIDToken(context.Background(), token); err != nil || id.Email != "bob@example.com" || !id.InGroup("sre-leads") {
		t.Fatalf("stored token: %+v, %v", id, err)
	}
}
