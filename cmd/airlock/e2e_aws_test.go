package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/internal/testenv"
)

// airlockBinary builds cmd/airlock once per test run: the aws CLI calls it as credential_process.
var airlockBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "airlock-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "airlock")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// e2eEnv is one Airlock server started in-process on a loopback port, in front of MinIO.
type e2eEnv struct {
	t         *testing.T
	url       string
	token     string
	auditFile string
	minio     *testenv.MinIO
	cfg       *config.Config
	logs      *testenv.LockedBuffer // Airlock's log, written while tests read it
}

const e2eToken = "e2e-bootstrap-token-0123456789"

// e2eOptions says how startAirlockWith starts Airlock.
type e2eOptions struct {
	ln       net.Listener   // nil: a fresh loopback port
	minio    *testenv.MinIO // fills {{MINIO}} and {{LOCAL_TARGET}}
	redisURL string         // "" = the in-memory store
	replace  []string       // more placeholder/value pairs
	server   []serverOption // hooks into newServer (test doubles for cloud identities)
}

// e2eLocalTarget is the AWS target every MinIO-backed test uses ({{LOCAL_TARGET}}).
const e2eLocalTarget = `  - name: local
    cloud: aws
    role_arn: arn:aws:iam::000000000000:role/airlock-e2e
    regions: [us-east-1]
    endpoint: {{MINIO}}
    sts_endpoint: {{MINIO}}
    session_policy: false
    base_credentials: {access_key_id_env: MINIO_ACCESS_KEY, secret_access_key_env: MINIO_SECRET_KEY}`

// startAirlock starts Airlock in front of MinIO with cfgYAML.
func startAirlock(t *testing.T, minio *testenv.MinIO, redisURL, cfgYAML string) *e2eEnv {
	t.Helper()
	return startAirlockWith(t, cfgYAML, e2eOptions{minio: minio, redisURL: redisURL})
}

// startAirlockWith is how every end-to-end test starts Airlock: in-process, on a loopback port,
// with cfgYAML's placeholders ({{LISTEN}}, {{PUBLIC}}, {{AUDIT}}, and those of o) filled in; it
// stops with the test and prints Airlock's log when the test failed.
func startAirlockWith(t *testing.T, cfgYAML string, o e2eOptions) *e2eEnv {
	t.Helper()
	ln := o.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	e := &e2eEnv{t: t, url: "http://" + ln.Addr().String(), token: e2eToken, minio: o.minio,
		auditFile: filepath.Join(t.TempDir(), "audit.jsonl"), logs: &testenv.LockedBuffer{}}
	t.Setenv("AIRLOCK_E2E_TOKEN", e2eToken)
	t.Setenv("AIRLOCK_E2E_STORE_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	t.Setenv("AIRLOCK_REDIS_URL", o.redisURL)
	t.Setenv("AIRLOCK_LISTEN", "")
	repl := []string{"{{LISTEN}}", ln.Addr().String(), "{{PUBLIC}}", e.url, "{{AUDIT}}", e.auditFile}
	if o.minio != nil {
		t.Setenv("MINIO_ACCESS_KEY", o.minio.AccessKey)
		t.Setenv("MINIO_SECRET_KEY", o.minio.SecretKey)
		cfgYAML = strings.ReplaceAll(cfgYAML, "{{LOCAL_TARGET}}", e2eLocalTarget)
		repl = append(repl, "{{MINIO}}", o.minio.URL)
	}
	cfg, err := config.Parse([]byte(strings.NewReplacer(append(repl, o.replace...)...).Replace(cfgYAML)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e.cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := newServer(ctx, cfg, logger, o.server...)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		if t.Failed() {
			t.Logf("--- airlock log:\n%s", e.logs.String())
		}
	})
	testenv.WaitFor(t, "airlock", 10*time.Second, testenv.HTTPReady(e.url+"/healthz"))
	return e
}

const e2eConfig = `
listen: {{LISTEN}}
dev:
  bootstrap_token_env: AIRLOCK_E2E_TOKEN
  bootstrap_identity: {subject: alice, email: alice@example.com, groups: [engineers]}
redis:
  encryption_key_env: AIRLOCK_E2E_STORE_KEY
targets:
{{LOCAL_TARGET}}
policies:
  - name: no-bucket-deletes
    actions: ["s3:DeleteBucket"]
    decision: deny
    message: buckets are forever
  - name: object-deletes-need-sre
    actions: ["s3:DeleteObject*"]
    decision: hold
    approvers: {groups: [sre-leads]}
  - name: reads-and-writes-flow
    risk: [read, write]
    decision: allow
  - name: default-deny
    decision: deny
hold: {wait: 1s}
audit:
  file: {{AUDIT}}
`

// mustAWS runs e.awsCLI and fails the test when the CLI fails.
func (e *e2eEnv) mustAWS(t *testing.T, cli string, args ...string) string {
	t.Helper()
	out, err := e.awsCLI(cli, args...)
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// awsCLI runs an aws CLI against Airlock with a credential_process profile.
func (e *e2eEnv) awsCLI(bin string, args ...string) (string, error) {
	e.t.Helper()
	airlock, err := airlockBinary()
	if err != nil {
		e.t.Fatal(err)
	}
	dir := e.t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	profile := fmt.Sprintf("[profile airlock]\nregion = us-east-1\ncredential_process = %s credentials aws --server %s --target local --reason \"JIRA-42 e2e\"\n", airlock, e.url)
	if err := os.WriteFile(cfgFile, []byte(profile), 0o600); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--profile", "airlock", "--endpoint-url", e.url}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE="+cfgFile, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_DEFAULT_REGION=us-east-1", "AIRLOCK_TOKEN="+e.token,
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_ENDPOINT_URL=",
		"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *e2eEnv) auditEvents() []audit.Event {
	e.t.Helper()
	f, err := os.Open(e.auditFile)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var events []audit.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			e.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	return events
}

// hasEvent reports whether an audit event of kind with action and decision exists.
func hasEvent(events []audit.Event, kind, action, decision string) bool {
	for _, ev := range events {
		if ev.Kind == kind && ev.Action == action && (decision == "" || ev.Decision == decision) {
			return true
		}
	}
	return false
}

func awsCLIs(t *testing.T) map[string]string {
	clis := map[string]string{"debian-awscli-v2": testenv.Binary(t, "/usr/bin/aws")}
	// The pip aws-cli v1 on PATH, when the machine has one besides Debian's: test both.
	if p, err := exec.LookPath("aws"); err == nil && p != "/usr/bin/aws" {
		clis["path-awscli"] = p
	}
	return clis
}

func TestE2EAWSCLIThroughAirlock(t *testing.T) {
	testenv.Integration(t)
	minio := testenv.StartMinIO(t)
	stores := map[string]string{"memory": ""}
	stores["redis"] = testenv.Redis(t)
	for storeName, redisURL := range stores {
		for cliName, cli := range awsCLIs(t) {
			t.Run(storeName+"/"+cliName, func(t *testing.T) {
				e := startAirlock(t, minio, redisURL, e2eConfig)
				bucket := strings.ReplaceAll(fmt.Sprintf("e2e-%s-%s-%d", storeName, cliName, time.Now().UnixNano()%1e6), "_", "-")
				src := filepath.Join(t.TempDir(), "hello.txt")
				if err := os.WriteFile(src, []byte("hello through airlock\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				run := func(args ...string) string { t.Helper(); return e.mustAWS(t, cli, args...) }
				run("s3", "mb", "s3://"+bucket)
				run("s3", "cp", src, "s3://"+bucket+"/hello.txt")
				if out := run("s3", "ls", "s3://"+bucket); !strings.Contains(out, "hello.txt") {
					t.Errorf("s3 ls does not list the object: %s", out)
				}
				dst := filepath.Join(t.TempDir(), "back.txt")
				run("s3", "cp", "s3://"+bucket+"/hello.txt", dst)
				if b, _ := os.ReadFile(dst); string(b) != "hello through airlock\n" {
					t.Errorf("downloaded %q", b)
				}
				// A key that needs escaping in the path (space, plus, non-ASCII): S3 paths are
				// signed as sent, not escaped twice, or MinIO refuses the signature.
				odd := "reports/q1 2026+final-Übersicht.txt"
				run("s3", "cp", src, "s3://"+bucket+"/"+odd)
				oddDst := filepath.Join(t.TempDir(), "odd.txt")
				run("s3", "cp", "s3://"+bucket+"/"+odd, oddDst)
				if b, _ := os.ReadFile(oddDst); string(b) != "hello through airlock\n" {
					t.Errorf("downloaded %q for key %q", b, odd)
				}

				// Large enough for a multipart upload (the CLIs' threshold is 8 MiB) and a ranged,
				// parallel download; the CLIs send Expect: 100-continue with the parts.
				big := filepath.Join(t.TempDir(), "big.bin")
				if err := os.WriteFile(big, bytes.Repeat([]byte("airlock multipart "), 20<<20/18), 0o600); err != nil {
					t.Fatal(err)
				}
				run("s3", "cp", big, "s3://"+bucket+"/big.bin")
				bigDst := filepath.Join(t.TempDir(), "big-back.bin")
				run("s3", "cp", "s3://"+bucket+"/big.bin", bigDst)
				if a, b := fileSum(t, big), fileSum(t, bigDst); a != b {
					t.Errorf("the multipart object came back different: %s, want %s", b, a)
				}

				// A delete is held: the CLI gets AccessDenied naming the approval URL.
				out, err := e.awsCLI(cli, "s3", "rm", "s3://"+bucket+"/hello.txt")
				if err == nil || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, e.url+"/requests/") {
					t.Errorf("s3 rm: want a held AccessDenied with the approval URL, got err=%v\n%s", err, out)
				}
				// Deleting the bucket is denied by a named rule.
				out, err = e.awsCLI(cli, "s3", "rb", "s3://"+bucket)
				if err == nil || !strings.Contains(out, "no-bucket-deletes") || !strings.Contains(out, "buckets are forever") {
					t.Errorf("s3 rb: want AccessDenied naming the rule, got err=%v\n%s", err, out)
				}

				events := e.auditEvents()
				for _, want := range []struct{ kind, action, decision string }{
					{"decision", "s3:CreateBucket", "allow"},
					{"forward", "s3:CreateBucket", "allow"},
					{"decision", "s3:PutObject", "allow"},
					{"decision", "s3:ListBucket", "allow"},
					{"decision", "s3:GetObject", "allow"},
					{"decision", "s3:DeleteObject", "hold"},
					{"decision", "s3:DeleteBucket", "deny"},
					{"credential", "", ""},
				} {
					if !hasEvent(events, want.kind, want.action, want.decision) {
						t.Errorf("audit has no %s event for %q (%s)", want.kind, want.action, want.decision)
					}
				}
				// IAM authorizes every step of a multipart upload as s3:PutObject; the operation
				// tells them apart.
				multipart := map[string]bool{}
				for _, ev := range events {
					if ev.Kind == "forward" && ev.Action == "s3:PutObject" && ev.UpstreamStatus == 200 {
						multipart[ev.Operation] = true
					}
				}
				for _, op := range []string{"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"} {
					if !multipart[op] {
						t.Errorf("audit has no forwarded s3:PutObject (%s); saw %v", op, multipart)
					}
				}
				for _, ev := range events {
					if ev.Kind == "forward" && ev.UpstreamStatus == 0 {
						t.Errorf("forward event without upstream status: %+v", ev)
					}
					if ev.Kind == "decision" && ev.Identity.Email != "alice@example.com" {
						t.Errorf("decision event without identity: %+v", ev)
					}
				}
				if res, err := audit.VerifyFiles(audit.ChainFile, e.auditFile); err != nil {
					t.Errorf("audit chain does not verify: %v (%+v)", err, res)
				}
			})
		}
	}
}

// TestE2EUpstreamRefusesUnsignedButAcceptsAirlock checks MinIO's own view: the object written
// through Airlock exists (read back with MinIO's root credentials outside Airlock).
func TestE2EForgedAndTamperedRequests(t *testing.T) {
	testenv.Integration(t)
	minio := testenv.StartMinIO(t)
	e := startAirlock(t, minio, "", e2eConfig)
	creds := e.issueAWS(t)

	// A correctly signed ListBuckets goes through.
	resp := e.signedRequest(t, creds, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("signed ListBuckets: %d %s", resp.StatusCode, resp.body)
	}
	// The body changed after signing: refused before anything reaches MinIO.
	resp = e.signedRequest(t, creds, http.MethodPut, "/tampered-bucket", []byte("original"), func(r *http.Request) {
		r.Body = ioNopCloser("tampered")
		r.ContentLength = int64(len("tampered"))
	})
	if resp.StatusCode != 400 && resp.StatusCode != 403 || !strings.Contains(resp.body, "Mismatch") && !strings.Contains(resp.body, "SignatureDoesNotMatch") {
		t.Errorf("tampered body: %d %s", resp.StatusCode, resp.body)
	}
	// A header changed after signing.
	resp = e.signedRequest(t, creds, http.MethodGet, "/", nil, func(r *http.Request) {
		r.Header.Set("X-Amz-Date", time.Now().UTC().Add(time.Second).Format("20060102T150405Z"))
	})
	if resp.StatusCode != 403 || !strings.Contains(resp.body, "SignatureDoesNotMatch") {
		t.Errorf("tampered header: %d %s", resp.StatusCode, resp.body)
	}
	// A wrong secret.
	bad := creds
	bad.SecretAccessKey = "x" + creds.SecretAccessKey[1:]
	resp = e.signedRequest(t, bad, http.MethodGet, "/", nil, nil)
	if resp.StatusCode != 403 || !strings.Contains(resp.body, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %d %s", resp.StatusCode, resp.body)
	}
	// A forged Host header cannot redirect the call: it still lands on the target's endpoint
	// (MinIO), so ListBuckets answers 200 from MinIO rather than reaching evil.example.
	resp = e.signedRequest(t, creds, http.MethodGet, "/", nil, nil, withHost("evil.example:443"))
	if resp.StatusCode != 200 || !strings.Contains(resp.body, "ListAllMyBucketsResult") {
		t.Errorf("forged host: %d %s", resp.StatusCode, resp.body)
	}
}

// e2eSessionPolicyConfig is the local MinIO target with session policies on (the default): every
// minted credential allows only the call's own action and resource, and MinIO enforces that.
const e2eSessionPolicyConfig = `
listen: {{LISTEN}}
dev:
  bootstrap_token_env: AIRLOCK_E2E_TOKEN
  bootstrap_identity: {subject: alice, email: alice@example.com, groups: [engineers]}
targets:
  - name: local
    cloud: aws
    role_arn: arn:aws:iam::000000000000:role/airlock-e2e
    regions: [us-east-1]
    endpoint: {{MINIO}}
    sts_endpoint: {{MINIO}}
    base_credentials: {access_key_id_env: MINIO_ACCESS_KEY, secret_access_key_env: MINIO_SECRET_KEY}
policies:
  - name: scratch-deletes-flow
    actions: ["s3:DeleteObject"]
    when: 'action.resource.startsWith("arn:aws:s3:::src-")'
    decision: allow
  - name: payroll-reads-need-sre
    actions: ["s3:GetObject*"]
    when: 'action.resource.startsWith("arn:aws:s3:::payroll-")'
    decision: hold
    approvers: {groups: [engineers], allow_self: true}
  - name: reads-and-writes-flow
    risk: [read, write]
    decision: allow
  - name: default-deny
    decision: deny
hold: {wait: 1s}
audit:
  file: {{AUDIT}}
`

// TestE2ECopyUnderSessionPolicies: a copy needs the read of its source as well as the write of
// its destination. Airlock decides both and mints credentials whose session policy allows both,
// which MinIO enforces. A copy out of a bucket whose reads are held is held for the read, and
// goes through once the read is approved.
func TestE2ECopyUnderSessionPolicies(t *testing.T) {
	minio := testenv.StartMinIO(t)
	e := startAirlock(t, minio, "", e2eSessionPolicyConfig)
	cli := testenv.Binary(t, "/usr/bin/aws")
	suffix := time.Now().UnixNano() % 1e6
	src, payroll := fmt.Sprintf("src-%d", suffix), fmt.Sprintf("payroll-%d", suffix)
	file := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(file, []byte("copied through airlock\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string { t.Helper(); return e.mustAWS(t, cli, args...) }
	run("s3", "mb", "s3://"+src)
	run("s3", "mb", "s3://"+payroll)
	run("s3", "cp", file, "s3://"+src+"/a.txt")
	run("s3", "cp", file, "s3://"+payroll+"/p.txt")
	run("s3api", "copy-object", "--bucket", src, "--key", "b.txt", "--copy-source", src+"/a.txt")
	back := filepath.Join(t.TempDir(), "b.txt")
	run("s3", "cp", "s3://"+src+"/b.txt", back)
	if b, _ := os.ReadFile(back); string(b) != "copied through airlock\n" {
		t.Errorf("the copy reads back %q", b)
	}
	copyOut := []string{"s3api", "copy-object", "--bucket", src, "--key", "p.txt", "--copy-source", payroll + "/p.txt"}
	out, err := e.awsCLI(cli, copyOut...)
	m := approvalURL.FindStringSubmatch(out)
	if err == nil || m == nil || !strings.Contains(out, "also needs s3:GetObject on arn:aws:s3:::"+payroll+"/p.txt") || !strings.Contains(out, "payroll-reads-need-sre") {
		t.Fatalf("a copy out of payroll must be held for the read: %v\n%s", err, out)
	}
	if out, err := e.awsCLI(cli, "s3api", "head-object", "--bucket", src, "--key", "p.txt"); err == nil {
		t.Errorf("the held copy reached MinIO:\n%s", out)
	}
	e.approve(m[1])
	run(copyOut...)
	run("s3api", "head-object", "--bucket", src, "--key", "p.txt")
	// A multi-object delete (DeleteObjects) is s3:DeleteObject on the bucket's objects, which
	// the session policy then allows.
	if out := run("s3api", "delete-objects", "--bucket", src, "--delete", "Objects=[{Key=a.txt},{Key=b.txt},{Key=p.txt}]"); strings.Contains(out, "Errors") {
		t.Errorf("delete-objects:\n%s", out)
	}
	if out := run("s3", "ls", "s3://"+src); strings.Contains(out, ".txt") {
		t.Errorf("objects left after delete-objects:\n%s", out)
	}
	// An upload that makes itself public also needs s3:PutObjectAcl, which no rule allows here.
	out, err = e.awsCLI(cli, "s3", "cp", file, "s3://"+src+"/public.txt", "--acl", "public-read")
	if err == nil || !strings.Contains(out, "s3:PutObjectAcl") {
		t.Errorf("an upload with --acl public-read must be refused naming s3:PutObjectAcl: %v\n%s", err, out)
	}
	events := e.auditEvents()
	var copied, refused bool
	for _, ev := range events {
		copied = copied || (ev.Kind == "forward" && ev.Operation == "CopyObject" && ev.UpstreamStatus == 200 && ev.Source == "arn:aws:s3:::"+src+"/a.txt")
		refused = refused || (ev.Kind == "decision" && ev.Operation == "CopyObject" && ev.Decision == "hold" && ev.Source == "arn:aws:s3:::"+payroll+"/p.txt")
	}
	if !copied || !refused {
		t.Errorf("audit: forwarded copy with its source %v, held copy %v", copied, refused)
	}
	deleted := false
	for _, ev := range events {
		deleted = deleted || (ev.Kind == "forward" && ev.Operation == "DeleteObjects" && ev.Resource == "arn:aws:s3:::"+src+"/*" && ev.UpstreamStatus == 200)
	}
	if !deleted {
		t.Error("audit has no forwarded DeleteObjects on the bucket's objects")
	}
}
