package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/internal/testenv"
)

// The approval workflow end to end, with every peer real: Dex for logins, MinIO upstream, the
// aws CLI as the requester's tool, headless Chromium as the approver's browser.
const e2eApprovalConfig = `
listen: {{LISTEN}}
public_url: {{PUBLIC}}
oidc:
  issuer: {{ISSUER}}
  client_id: airlock
  client_secret_env: AIRLOCK_E2E_OIDC_SECRET
  groups_claim: groups
redis:
  encryption_key_env: AIRLOCK_E2E_STORE_KEY
targets:
{{LOCAL_TARGET}}
policies:
  - name: two-person-deletes
    actions: ["s3:DeleteObject*"]
    when: 'action.resource.contains("two-person")'
    decision: hold
    message: two-person objects need two SRE leads
    approvers: {groups: [sre-leads], count: 2}
    grant: {ttl: 1h, uses: 1}
  - name: object-deletes-need-sre
    actions: ["s3:DeleteObject*"]
    groups: [engineers]
    decision: hold
    message: object deletes need an SRE lead
    approvers: {groups: [sre-leads], count: 1}
    grant: {ttl: 1h, uses: 1}
  - name: reads-and-writes-flow
    risk: [read, write]
    decision: allow
  - name: default-deny
    decision: deny
hold: {wait: 60s, request_ttl: 1h}
audit:
  file: {{AUDIT}}
`

// startAirlockWithOIDC starts Airlock on ln (whose address Dex already knows as the callback).
func startAirlockWithOIDC(t *testing.T, ln net.Listener, minio *testenv.MinIO, dex *testenv.Dex) *e2eEnv {
	t.Helper()
	t.Setenv("AIRLOCK_E2E_OIDC_SECRET", dex.ClientSecret)
	return startAirlockWith(t, e2eApprovalConfig, e2eOptions{ln: ln, minio: minio, replace: []string{"{{ISSUER}}", dex.Issuer}})
}

// apiCall calls the requests API with a bearer token and returns status and body.
func (e *e2eEnv) apiCall(token, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// pendingFor waits until a pending request for the resource appears (as approver sees it)
// that is not one of the known IDs, and returns it.
func (e *e2eEnv) pendingFor(approverToken, resourceSuffix string, known ...string) *approval.Request {
	e.t.Helper()
	var found *approval.Request
	testenv.WaitFor(e.t, "held request for "+resourceSuffix, 30*time.Second, func() error {
		status, body := e.apiCall(approverToken, "GET", "/api/v1/requests?state=pending", nil)
		if status != 200 {
			return fmt.Errorf("list: %d %s", status, body)
		}
		var list struct{ Requests []*approval.Request }
		if err := json.Unmarshal(body, &list); err != nil {
			return err
		}
		for _, r := range list.Requests {
			if strings.HasSuffix(r.Action.Resource, resourceSuffix) && !contains(known, r.ID) {
				found = r
				return nil
			}
		}
		return fmt.Errorf("none among %d pending", len(list.Requests))
	})
	return found
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cliResult is how a backgrounded aws CLI call ended.
type cliResult struct {
	out  string
	err  error
	took time.Duration
}

// awsCLIAsync runs the aws CLI in the background (a held call blocks until decided).
func (e *e2eEnv) awsCLIAsync(bin string, args ...string) <-chan cliResult {
	ch := make(chan cliResult, 1)
	start := time.Now()
	go func() {
		out, err := e.awsCLIQuiet(bin, args...)
		ch <- cliResult{out: out, err: err, took: time.Since(start)}
	}()
	return ch
}

// awsCLIQuiet is e.awsCLI without t.Helper/t.Fatal, safe off the test goroutine; the long read
// timeout keeps the CLI waiting as long as Airlock holds the call.
func (e *e2eEnv) awsCLIQuiet(bin string, args ...string) (string, error) {
	airlock, err := airlockBinary()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "airlock-awscli-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	cfgFile := filepath.Join(dir, "config")
	profile := fmt.Sprintf("[profile airlock]\nregion = us-east-1\ncredential_process = %s credentials aws --server %s --target local --reason \"JIRA-42 e2e approval\"\n", airlock, e.url)
	if err := os.WriteFile(cfgFile, []byte(profile), 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command(bin, append([]string{"--profile", "airlock", "--endpoint-url", e.url, "--cli-read-timeout", "180"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE="+cfgFile, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_DEFAULT_REGION=us-east-1", "AIRLOCK_TOKEN="+e.token,
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_ENDPOINT_URL=",
		"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// minioHasObject asks MinIO directly (root credentials, not through Airlock).
func minioHasObject(t *testing.T, m *testenv.MinIO, bucket, key string) bool {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(testenv.Binary(t, "/usr/bin/aws"), "--endpoint-url", m.URL, "s3api", "head-object", "--bucket", bucket, "--key", key)
	env := []string{"HOME=" + dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true
	}
	if strings.Contains(string(out), "Not Found") || strings.Contains(string(out), "404") {
		return false
	}
	t.Fatalf("head-object %s/%s at MinIO: %v\n%s", bucket, key, err, out)
	return false
}

// artifactDir is where screenshots go: $AIRLOCK_TEST_ARTIFACTS when set (CI keeps it), else
// the test's artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("AIRLOCK_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// saveScreenshot writes a PNG and checks that it is one, of a nonzero size.
func saveScreenshot(t *testing.T, name string, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if r := img.Bounds(); r.Dx() == 0 || r.Dy() == 0 {
		t.Fatalf("screenshot %s is empty: %v", name, r)
	}
	p := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes, %dx%d)", p, len(b), img.Bounds().Dx(), img.Bounds().Dy())
}

func TestE2EApprovalInBrowser(t *testing.T) {
	testenv.Integration(t)
	cli := testenv.Binary(t, "/usr/bin/aws")
	minio := testenv.StartMinIO(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dex := testenv.StartDex(t, "http://"+ln.Addr().String()+"/auth/callback")
	e := startAirlockWithOIDC(t, ln, minio, dex)
	alice := dex.IDToken(t, "alice@example.com")
	bob := dex.IDToken(t, "bob@example.com")
	carol := dex.IDToken(t, "carol@example.com")
	dave := dex.IDToken(t, "dave@example.com")
	e.token = alice // the aws CLI's credential_process runs as alice

	bucket := fmt.Sprintf("e2e-approval-%d", time.Now().UnixNano()%1e6)
	src := filepath.Join(t.TempDir(), "doomed.txt")
	if err := os.WriteFile(src, []byte("delete me after approval\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	awsOK := func(args ...string) {
		t.Helper()
		if out, err := e.awsCLIQuiet(cli, args...); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	awsOK("s3", "mb", "s3://"+bucket)
	awsOK("s3", "cp", src, "s3://"+bucket+"/doomed.txt")
	if !minioHasObject(t, minio, bucket, "doomed.txt") {
		t.Fatal("the object did not reach MinIO")
	}

	// 1. alice's delete is held; the CLI waits.
	held := e.awsCLIAsync(cli, "s3", "rm", "s3://"+bucket+"/doomed.txt")
	req := e.pendingFor(bob, bucket+"/doomed.txt")
	if req.Requester.Email != "alice@example.com" || req.Rule != "object-deletes-need-sre" || req.Action.IAMAction != "s3:DeleteObject" {
		t.Fatalf("held request = %+v", req)
	}

	// 2. Refusals by the API: alice may not approve her own request, dave is no approver.
	if status, body := e.apiCall(alice, "POST", "/api/v1/requests/"+req.ID+"/approve", map[string]string{"comment": "me"}); status != 403 || !strings.Contains(string(body), `"self_approval"`) {
		t.Errorf("self-approval: %d %s", status, body)
	}
	if status, body := e.apiCall(dave, "POST", "/api/v1/requests/"+req.ID+"/approve", nil); status != 403 || !strings.Contains(string(body), `"not_approver"`) {
		t.Errorf("dave's approval: %d %s", status, body)
	}

	// The same through the approver CLI: bob lists it; alice's and dave's approvals are refused
	// with a clear message.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"requests", "--server", e.url, "--token", bob}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), req.ID) || !strings.Contains(out.String(), "alice@example.com") || !strings.Contains(out.String(), "0/1") {
		t.Errorf("airlock requests as bob: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for user, want := range map[string]string{alice: "refused: you cannot approve your own request", dave: "refused: you are not in the approver groups"} {
		out.Reset()
		errOut.Reset()
		if code := run(context.Background(), []string{"approve", req.ID, "--server", e.url, "--token", user}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), want) {
			t.Errorf("airlock approve: exit %d %q, want %q", code, errOut.String(), want)
		}
	}

	// 3. bob opens the page in a real browser, logs in at Dex, sees the request and approves.
	ctx := testenv.Browser(t, chromedp.WindowSize(1280, 1000))
	step, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	page := e.url + "/requests/" + req.ID
	if err := chromedp.Do(step,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "bob@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "password"),
		chromedp.Click(chromedp.ID("submit-login")),
		chromedp.WaitVisible(chromedp.ID("approve")),
	); err != nil {
		t.Fatalf("bob's login and page: %v", err)
	}
	if loc, _ := chromedp.Run(step, chromedp.Location()); loc != page {
		t.Errorf("after login bob is on %s, want %s", loc, page)
	}
	text, err := innerText(step, "request")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"alice@example.com", "engineers", "s3:DeleteObject", bucket + "/doomed.txt", "object-deletes-need-sre",
		"object deletes need an SRE lead", "JIRA-42 e2e approval", "Destructive", "Pending", "Approvals: 0 of 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	before, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "approval-before.png", before)
	if err := chromedp.Do(step,
		chromedp.SendKeys(chromedp.ID("comment"), "ok, go ahead"),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.CSS(".notice.ok")),
	); err != nil {
		t.Fatalf("approve click: %v", err)
	}
	state, _ := innerText(step, "state")
	if state != "Approved" {
		t.Errorf("state after approval: %q", state)
	}
	after, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "approval-after.png", after)

	// 4. The held CLI call completes, and the object is gone from MinIO.
	select {
	case res := <-held:
		if res.err != nil {
			t.Fatalf("held aws s3 rm failed after approval: %v\n%s", res.err, res.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the held aws s3 rm did not complete after the approval")
	}
	if minioHasObject(t, minio, bucket, "doomed.txt") {
		t.Fatal("the object is still in MinIO after the approved delete")
	}

	// 5. The grant had one use: the retry is held again, as a new request. Denying it with a
	// comment releases the waiting CLI at once, with the comment.
	awsOK("s3", "cp", src, "s3://"+bucket+"/doomed.txt")
	retry := e.awsCLIAsync(cli, "s3", "rm", "s3://"+bucket+"/doomed.txt")
	again := e.pendingFor(bob, bucket+"/doomed.txt", req.ID)
	denyAt := time.Now()
	if status, body := e.apiCall(bob, "POST", "/api/v1/requests/"+again.ID+"/deny", map[string]string{"comment": "one delete was enough"}); status != 200 {
		t.Fatalf("deny: %d %s", status, body)
	}
	select {
	case res := <-retry:
		if res.err == nil || !strings.Contains(res.out, "AccessDenied") || !strings.Contains(res.out, "one delete was enough") {
			t.Errorf("denied retry: err=%v\n%s", res.err, res.out)
		}
		// "At once": well before hold.wait (60s) would have let it go.
		if d := time.Since(denyAt); d > 30*time.Second {
			t.Errorf("the denied call was released %s after the denial", d)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the denial did not release the waiting CLI call")
	}
	if !minioHasObject(t, minio, bucket, "doomed.txt") {
		t.Error("the denied delete removed the object")
	}

	// 6. Two-person rule: bob's approval leaves it pending (and bob cannot count twice);
	// carol's completes it. bob watches the page meanwhile: it updates live, without reload.
	awsOK("s3", "cp", src, "s3://"+bucket+"/two-person/doomed.txt")
	twoHeld := e.awsCLIAsync(cli, "s3", "rm", "s3://"+bucket+"/two-person/doomed.txt")
	two := e.pendingFor(bob, "two-person/doomed.txt")
	if two.Rule != "two-person-deletes" || two.Approvers.Count != 2 {
		t.Fatalf("two-person request = %+v", two)
	}
	if err := chromedp.Do(step, chromedp.Navigate(e.url+"/requests/"+two.ID), chromedp.WaitVisible(chromedp.ID("approve"))); err != nil {
		t.Fatalf("open two-person page: %v", err)
	}
	status, body := e.apiCall(bob, "POST", "/api/v1/requests/"+two.ID+"/approve", map[string]string{"comment": "first"})
	var r approval.Request
	if status != 200 || json.Unmarshal(body, &r) != nil || r.State != approval.StatePending || len(r.Approvals) != 1 {
		t.Fatalf("bob's approval of the two-person request: %d %s", status, body)
	}
	if err := chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS(`#approvals li`)), chromedp.WaitNotVisible(chromedp.ID("approve"))); err != nil {
		t.Errorf("the open page did not show bob's approval live (and retire his approve button): %v", err)
	}
	if status, body := e.apiCall(bob, "POST", "/api/v1/requests/"+two.ID+"/approve", nil); status != 409 || !strings.Contains(string(body), `"already_approved"`) {
		t.Errorf("bob approving twice: %d %s", status, body)
	}
	select {
	case res := <-twoHeld:
		t.Fatalf("the two-person call went through with one approval: %v\n%s", res.err, res.out)
	default:
	}
	// carol approves with the CLI.
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"approve", two.ID, "--server", e.url, "--token", carol, "--comment", "second"}, &out, &errOut); code != 0 ||
		!strings.HasPrefix(out.String(), "Approved "+two.ID) {
		t.Fatalf("carol's airlock approve: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if err := chromedp.Do(step, chromedp.WaitVisible(chromedp.CSS(`#state.state-approved`))); err != nil {
		t.Errorf("the open page did not turn approved live: %v", err)
	}
	live, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err == nil {
		saveScreenshot(t, "two-person-approved-live.png", live)
	}
	select {
	case res := <-twoHeld:
		if res.err != nil {
			t.Fatalf("two-person delete after both approvals: %v\n%s", res.err, res.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the two-person call was not released after the second approval")
	}
	if minioHasObject(t, minio, bucket, "two-person/doomed.txt") {
		t.Error("the two-person object is still in MinIO")
	}

	// The list page shows the decided requests to bob.
	if err := chromedp.Do(step, chromedp.Navigate(e.url+"/requests"), chromedp.WaitVisible(chromedp.ID("decided-h"))); err != nil {
		t.Fatal(err)
	}
	listText, err := chromedp.Run(step, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(listText, "Recently decided") || strings.Count(listText, "s3:DeleteObject") < 3 {
		t.Errorf("list page:\n%s", listText)
	}

	// On a phone-sized screen the page still reads (the screenshot is for people to judge).
	if err := chromedp.Do(step, chromedp.EmulateViewport(390, 844), chromedp.Navigate(e.url+"/requests/"+two.ID),
		chromedp.WaitVisible(chromedp.ID("state"))); err != nil {
		t.Fatal(err)
	}
	if phone, err := chromedp.Run(step, chromedp.FullScreenshot(100)); err == nil {
		saveScreenshot(t, "two-person-phone.png", phone)
	}
	if err := chromedp.Do(step, chromedp.Navigate(e.url+"/requests")); err != nil {
		t.Fatal(err)
	}
	if phone, err := chromedp.Run(step, chromedp.FullScreenshot(100)); err == nil {
		saveScreenshot(t, "list-phone.png", phone)
	}

	// Every step is in the audit log, and the chain verifies.
	events := e.auditEvents()
	for _, want := range []struct{ kind, action, decision string }{
		{"decision", "s3:DeleteObject", "hold"},
		{"approval", "s3:DeleteObject", "allow"},
		{"approval", "s3:DeleteObject", "deny"},
		{"forward", "s3:DeleteObject", "allow"},
	} {
		if !hasEvent(events, want.kind, want.action, want.decision) {
			t.Errorf("audit has no %s event for %s (%s)", want.kind, want.action, want.decision)
		}
	}
}

// innerText reads an element's visible text in one script evaluation. The request page updates
// itself while it is open (server-sent events), which can invalidate the node IDs that a DOM
// query action resolves first ("No node with given id found"); a script has no such window.
func innerText(ctx context.Context, id string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](
		`(function () { const el = document.getElementById(`+strconv.Quote(id)+`); return el ? el.innerText : ""; })()`))
}
