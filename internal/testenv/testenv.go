// Package testenv starts the real peers that integration tests use (redis-server, MinIO, Dex,
// Chromium) the same way for every test, on loopback ports, and cleans them up. A test that
// needs a peer skips only under -short; a missing binary fails the test with the command that
// installs it (scripts/install-test-deps.sh), so CI never passes by silently skipping.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/chromedp/chromedp"
)

// Integration marks a test as an integration test: skipped under -short, run otherwise.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}

// Binary finds a peer's executable on PATH or in $(go env GOPATH)/bin, or fails the test.
func Binary(t testing.TB, name string, alternatives ...string) string {
	t.Helper()
	Integration(t)
	for _, n := range append([]string{name}, alternatives...) {
		if filepath.IsAbs(n) {
			if _, err := os.Stat(n); err == nil {
				return n
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range binDirs() {
			p := filepath.Join(dir, n)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatalf("%s not found: run scripts/install-test-deps.sh (or go test -short to skip integration tests)", name)
	return ""
}

func binDirs() []string {
	var dirs []string
	if d := os.Getenv("AIRLOCK_TESTBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(out)), "bin"))
	}
	return dirs
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a started peer whose output is kept for failure messages.
type Process struct {
	Cmd *exec.Cmd
	out *LockedBuffer
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// LockedBuffer collects output written from several goroutines (a process's output, a test's
// logs); String returns what it holds so far.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a command until the test ends, printing its output if the test fails.
func Start(t testing.TB, env []string, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Cmd: cmd, out: out}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", filepath.Base(name), tail(out.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// WaitFor polls check until it returns nil or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %v", what, timeout, err)
}

// HTTPReady checks that url answers with a status below 500.
func HTTPReady(url string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

// Redis starts a private redis-server and returns its URL (redis://127.0.0.1:PORT/0).
func Redis(t testing.TB) string {
	t.Helper()
	bin := Binary(t, "redis-server")
	dir := t.TempDir()
	port := FreePort(t)
	Start(t, nil, bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--dir", dir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitFor(t, "redis-server", 10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(buf[:n]), "+PONG") {
			return fmt.Errorf("unexpected reply %q", buf[:n])
		}
		return nil
	})
	return "redis://" + addr + "/0"
}

// MinIO is a running MinIO server: S3 that verifies SigV4, and an STS on the same port.
type MinIO struct {
	URL       string
	AccessKey string
	SecretKey string
	Dir       string
}

// StartMinIO starts a private MinIO server with root credentials.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := Binary(t, "minio")
	m := &MinIO{AccessKey: "minioadmin", SecretKey: "minioadmin123", Dir: t.TempDir()}
	port, cport := FreePort(t), FreePort(t)
	m.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	Start(t, []string{"MINIO_ROOT_USER=" + m.AccessKey, "MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"},
		bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", cport), filepath.Join(m.Dir, "data"))
	WaitFor(t, "minio", 60*time.Second, func() error {
		resp, err := http.Get(m.URL + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	// MinIO answers "live" before its IAM subsystem (and so its STS) is initialised; wait until
	// an AssumeRole succeeds so tests never see "Server not initialized".
	WaitFor(t, "minio sts", 60*time.Second, func() error { return m.assumeRole() })
	return m
}

// assumeRole makes one STS AssumeRole call with the root credentials.
func (m *MinIO) assumeRole() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	_, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/testenv-ready"),
		RoleSessionName: aws.String("testenv"),
	})
	return err
}

// Dex is a running Dex OIDC provider with static users and the "airlock" client.
type Dex struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Dir          string
}

// Further clients that every StartDex registers besides "airlock".
const (
	// DexCLIClientID is the public client of `airlock login` (PKCE loopback and device flow).
	DexCLIClientID = "airlock-cli"
	// DexOtherClientID is an unrelated confidential client: its ID tokens are for another
	// audience.
	DexOtherClientID     = "other-app"
	DexOtherClientSecret = "other-secret"
)

// DexUser is a static Dex user; every user's password is "password".
type DexUser struct {
	Email  string
	Name   string
	Groups []string
}

// DefaultDexUsers are the users every Dex test can log in as.
var DefaultDexUsers = []DexUser{
	{Email: "alice@example.com", Name: "alice", Groups: []string{"engineers", "oncall"}},
	{Email: "bob@example.com", Name: "bob", Groups: []string{"sre-leads"}},
	{Email: "carol@example.com", Name: "carol", Groups: []string{"sre-leads", "engineers"}},
	{Email: "dave@example.com", Name: "dave", Groups: []string{"contractors"}},
}

// bcrypt of "password" (cost 10).
const passwordHash = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"

// StartDex starts Dex with DefaultDexUsers and a client "airlock" whose redirect URIs are given.
func StartDex(t testing.TB, redirectURIs ...string) *Dex {
	t.Helper()
	bin := Binary(t, "dex")
	port := FreePort(t)
	d := &Dex{Issuer: fmt.Sprintf("http://127.0.0.1:%d/dex", port), ClientID: "airlock",
		ClientSecret: "airlock-secret", Dir: t.TempDir()}
	var b strings.Builder
	fmt.Fprintf(&b, "issuer: %s\nstorage: {type: memory}\nweb: {http: 127.0.0.1:%d}\n", d.Issuer, port)
	b.WriteString("logger: {level: warn}\n")
	b.WriteString("oauth2:\n  skipApprovalScreen: true\n  passwordConnector: local\n")
	b.WriteString("  grantTypes: [authorization_code, refresh_token, password, \"urn:ietf:params:oauth:grant-type:device_code\"]\n")
	b.WriteString("  responseTypes: [code]\nenablePasswordDB: true\nstaticPasswords:\n")
	for i, u := range DefaultDexUsers {
		fmt.Fprintf(&b, "- email: %s\n  hash: %q\n  username: %s\n  userID: 00000000-0000-4000-8000-%012d\n  groups: [%s]\n",
			u.Email, passwordHash, u.Name, i+1, strings.Join(u.Groups, ", "))
	}
	b.WriteString("staticClients:\n- id: airlock\n  secret: airlock-secret\n  name: Airlock\n  redirectURIs:\n")
	for _, r := range redirectURIs {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	// A public client for the CLI (loopback redirect + PKCE, device flow). It lists no redirect
	// URIs: Dex then accepts any loopback http://127.0.0.1:PORT/PATH and /device/callback,
	// whereas a listed URI would have to match exactly (the CLI picks a random port).
	fmt.Fprintf(&b, "- id: %s\n  public: true\n  name: Airlock CLI\n", DexCLIClientID)
	// Another confidential client, whose ID tokens Airlock must refuse (wrong audience).
	fmt.Fprintf(&b, "- id: %s\n  secret: %s\n  name: Other App\n  redirectURIs: [\"http://127.0.0.1:1/callback\"]\n",
		DexOtherClientID, DexOtherClientSecret)
	cfg := filepath.Join(d.Dir, "dex.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	Start(t, nil, bin, "serve", cfg)
	WaitFor(t, "dex", 30*time.Second, HTTPReady(d.Issuer+"/.well-known/openid-configuration"))
	return d
}

// Chromium returns the path of Debian's chromium for headless tests.
func Chromium(t testing.TB) string {
	t.Helper()
	return Binary(t, "chromium", "/usr/bin/chromium", "chromium-browser")
}

// ChromiumFlags are the flags every headless run needs on these machines (no network beyond
// loopback: background networking would stall the browser).
var ChromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
	"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"}

// Browser starts headless Chromium (Chromium, with ChromiumFlags and a fresh profile) and
// returns a chromedp context for one tab; both end with the test. The context has no deadline
// (a deadline on the first call would stop the browser); derive one per step. extra adds
// allocator options, such as a window size.
func Browser(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(Chromium(t)), chromedp.UserDataDir(t.TempDir())}
	for _, f := range ChromiumFlags {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if hasValue {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// IDToken logs a Dex user in with the password grant as the "airlock" client and returns the
// ID token (audience "airlock"), as a script or test would get one.
func (d *Dex) IDToken(t testing.TB, email string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {"password"},
		"scope": {"openid email profile groups"}}
	req, _ := http.NewRequest(http.MethodPost, d.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(d.ClientID, d.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("dex password grant: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IDToken == "" {
		t.Fatalf("dex password grant for %s: status %d %v %s", email, resp.StatusCode, err, out.Error)
	}
	return out.IDToken
}
