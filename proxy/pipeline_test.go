package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/signer"
	"github.com/airlockhq/airlock/store/memory"
)

// mintedCreds are what the fake broker hands out: the upstream accepts only these.
var mintedCreds = aws.Credentials{AccessKeyID: "ASIAMINTEDMINTED0001", SecretAccessKey: "minted-secret-key-0123456789", SessionToken: "minted-session-token"}

type staticMinter struct {
	calls      atomic.Int64
	lastPolicy atomic.Pointer[string] // the session policy of the last mint
}

func (m *staticMinter) Credentials(ctx context.Context, t *config.Target, r signer.MintRequest) (aws.Credentials, error) {
	m.calls.Add(1)
	m.lastPolicy.Store(&r.Policy)
	return mintedCreds, nil
}

// recordingAuditor keeps events in memory and can be told to fail.
type recordingAuditor struct {
	mu     sync.Mutex
	events []audit.Event
	fail   atomic.Bool
}

func (a *recordingAuditor) Record(ctx context.Context, e *audit.Event) error {
	if a.fail.Load() {
		return errors.New("disk full")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, *e)
	return nil
}

// await is find for events written after the response (forward events): it waits for them.
func (a *recordingAuditor) await(kind, action, decision string) *audit.Event {
	for i := 0; i < 500; i++ {
		if e := a.find(kind, action, decision); e != nil {
			return e
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (a *recordingAuditor) find(kind, action, decision string) *audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.events {
		e := &a.events[i]
		if e.Kind == kind && e.Action == action && (decision == "" || e.Decision == decision) {
			return e
		}
	}
	return nil
}

// sigV4Upstream is a fake AWS endpoint that checks what AWS checks: the request is signed with
// the minted credentials (the signature recomputed over the signed headers must match) and
// carries the minted session token. It answers like S3.
type sigV4Upstream struct {
	*httptest.Server
	hits atomic.Int64
	last atomic.Pointer[http.Request]
	// answer, when set, writes the response of a call whose signature checked out.
	answer atomic.Pointer[func(http.ResponseWriter, *http.Request)]
}

func newSigV4Upstream(t *testing.T) *sigV4Upstream {
	u := &sigV4Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := checkSignature(r, body); err != nil {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>"+err.Error()+"</Message></Error>")
			return
		}
		u.last.Store(r)
		if answer := u.answer.Load(); answer != nil {
			(*answer)(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, "<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>")
	}))
	t.Cleanup(u.Close)
	return u
}

func checkSignature(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+mintedCreds.AccessKeyID+"/") {
		return errors.New("not signed with the minted key")
	}
	if r.Header.Get("X-Amz-Security-Token") != mintedCreds.SessionToken {
		return errors.New("missing minted session token")
	}
	scope := strings.Split(strings.SplitN(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 Credential="), ",", 2)[0], "/")
	signed := strings.Split(between(auth, "SignedHeaders=", ","), ";")
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	re, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range signed {
		if h != "host" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		s := sha256.Sum256(body)
		hash = hex.EncodeToString(s[:])
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), mintedCreds, re, hash, scope[3], scope[2], date); err != nil {
		return err
	}
	if re.Header.Get("Authorization") != auth {
		return errors.New("signature mismatch")
	}
	return nil
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

type pipeline struct {
	t        *testing.T
	airlock  *httptest.Server
	upstream *sigV4Upstream
	issuer   *authn.Issuer
	workflow *approval.Workflow
	audit    *recordingAuditor
	minter   *staticMinter
	px       *Proxy
}

const pipelinePolicies = `
policies:
  - name: no-bucket-deletes
    actions: ["s3:DeleteBucket", "dynamodb:DeleteTable"]
    decision: deny
    message: ask the data team
  - name: object-deletes-need-sre
    actions: ["s3:DeleteObject"]
    decision: hold
    approvers: {groups: [sre-leads]}
    grant: {ttl: 1h, uses: 1}
  - name: reads-flow
    risk: [read, write]
    decision: allow
  - name: default-deny
    decision: deny
`

func newPipeline(t *testing.T, holdWait string) *pipeline {
	t.Helper()
	return newPipelineWith(t, holdWait, pipelinePolicies)
}

// payrollPolicies are pipelinePolicies with reads of the payroll bucket held (a CEL rule, kept
// out of pipelinePolicies so that BenchmarkPipeline's GetObject does not evaluate it).
var payrollPolicies = strings.Replace(pipelinePolicies, "  - name: reads-flow\n", `  - name: payroll-reads-need-sre
    actions: ["s3:GetObject*"]
    when: 'action.resource.startsWith("arn:aws:s3:::payroll/")'
    decision: hold
    approvers: {groups: [sre-leads]}
  - name: reads-flow
`, 1)

func newPipelineWith(t *testing.T, holdWait, policies string) *pipeline {
	t.Helper()
	up := newSigV4Upstream(t)
	cfg, err := config.Parse([]byte("listen: 127.0.0.1:8080\ntargets:\n  - name: dev\n    cloud: aws\n    role_arn: arn:aws:iam::111122223333:role/x\n    regions: [us-east-1]\n    endpoint: " + up.URL + "\nhold: {wait: " + holdWait + "}\n" + policies))
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New(nil)
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := authn.NewSigV4Verifier(authn.SigV4Config{Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := approval.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	aud := &recordingAuditor{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	wf, err := approval.NewWorkflow(approval.WorkflowConfig{Store: st, Auditor: aud, PublicURL: cfg.PublicURL, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	minter := &staticMinter{}
	px, err := New(Config{Settings: cfg, Logger: logger, SigV4: verifier, Policy: engine, Approvals: wf, AWS: minter, Audit: aud})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(px)
	t.Cleanup(srv.Close)
	cfg.PublicURL = srv.URL
	return &pipeline{t: t, airlock: srv, upstream: up, issuer: issuer, workflow: wf, audit: aud, minter: minter, px: px}
}

var alice = authn.Identity{Subject: "alice", Email: "alice@example.com", Groups: []string{"engineers"}}
var bob = authn.Identity{Subject: "bob", Email: "bob@example.com", Groups: []string{"sre-leads"}}

// send signs a request with alice's Airlock-issued credentials, as the SDKs do.
func (p *pipeline) send(method, path, service string, header http.Header, body string) (*http.Response, string) {
	p.t.Helper()
	creds, err := p.issuer.IssueAWS(alice, "dev", "INC-7 cleanup")
	if err != nil {
		p.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, p.airlock.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	if service == "s3" {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hash, service, "us-east-1", time.Now()); err != nil {
		p.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAllowedCallIsReSignedWithMintedCredentials(t *testing.T) {
	p := newPipeline(t, "1s")
	resp, body := p.send("GET", "/", "s3", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "ListAllMyBucketsResult") {
		t.Fatalf("ListBuckets: %d %s", resp.StatusCode, body)
	}
	if p.upstream.hits.Load() != 1 || p.upstream.last.Load() == nil {
		t.Fatal("upstream did not accept the re-signed call")
	}
	if d := p.audit.find("decision", "s3:ListAllMyBuckets", "allow"); d == nil || d.Policy != "reads-flow" || d.Identity.Email != "alice@example.com" || d.Reason != "INC-7 cleanup" {
		t.Errorf("decision event: %+v", d)
	}
	if f := p.audit.await("forward", "s3:ListAllMyBuckets", ""); f == nil || f.UpstreamStatus != 200 {
		t.Errorf("forward event: %+v", f)
	}
}

func TestDeniedCallNamesTheRuleInTheCloudsFormat(t *testing.T) {
	p := newPipeline(t, "1s")
	resp, body := p.send("DELETE", "/bkt", "s3", nil, "")
	if resp.StatusCode != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") || !strings.Contains(body, "no-bucket-deletes") || !strings.Contains(body, "ask the data team") {
		t.Errorf("s3 DeleteBucket: %d %s", resp.StatusCode, body)
	}
	// JSON protocol: the error is JSON with __type, as the SDKs parse it.
	h := http.Header{"X-Amz-Target": {"DynamoDB_20120810.DeleteTable"}, "Content-Type": {"application/x-amz-json-1.0"}}
	resp, body = p.send("POST", "/", "dynamodb", h, `{"TableName":"orders"}`)
	if resp.StatusCode != 403 || !strings.Contains(body, `"__type":"AccessDenied"`) || resp.Header.Get("X-Amzn-ErrorType") != "AccessDenied" {
		t.Errorf("dynamodb DeleteTable: %d %s", resp.StatusCode, body)
	}
	if p.upstream.hits.Load() != 0 || p.minter.calls.Load() != 0 {
		t.Error("a denied call reached the broker or the upstream")
	}
	if d := p.audit.find("decision", "dynamodb:DeleteTable", "deny"); d == nil || !strings.Contains(d.Resource, "orders") {
		t.Errorf("deny event: %+v", d)
	}
}

func TestUnknownActionIsHighestRiskAndDenied(t *testing.T) {
	p := newPipeline(t, "1s")
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	resp, body := p.send("POST", "/", "ec2", h, "Action=FrobnicateEverything&Version=2016-11-15")
	if resp.StatusCode != 403 || !strings.Contains(body, "<Response><Errors><Error><Code>AccessDenied") ||
		!strings.Contains(body, "Airlock cannot name this call") || !strings.Contains(body, "only a rule naming ec2:Unknown matches it") {
		t.Errorf("unknown EC2 action: %d %s", resp.StatusCode, body)
	}
	d := p.audit.find("decision", "ec2:Unknown", "deny")
	if d == nil || d.Risk != "privilege" {
		t.Errorf("unknown action must be named ec2:Unknown with risk privilege: %+v", d)
	}
}

// TestActionSmuggledInAnUnreadBodyIsUnknown: a query-protocol POST that names a read in its
// query string while its form body (unsigned, so never buffered) names a delete must not be
// decided as the read.
func TestActionSmuggledInAnUnreadBodyIsUnknown(t *testing.T) {
	p := newPipeline(t, "1s")
	creds, err := p.issuer.IssueAWS(alice, "dev", "INC-7")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", p.airlock.URL+"/?Action=DescribeInstances&Version=2016-11-15",
		strings.NewReader("Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, "UNSIGNED-PAYLOAD", "ec2", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "ec2:Unknown") {
		t.Errorf("smuggled TerminateInstances: %d %s", resp.StatusCode, body)
	}
	if p.audit.find("decision", "ec2:DescribeInstances", "") != nil || p.upstream.hits.Load() != 0 {
		t.Error("the call was decided as the query string's DescribeInstances or forwarded")
	}
}

// TestCopyIsDecidedOnItsSourceToo: a copy writes its destination and reads its source; the
// read is decided too. A held read holds the copy with an approval request for the read, whose
// grant lets the retried copy through; the minted session policy allows both (AWS checks both).
func TestCopyIsDecidedOnItsSourceToo(t *testing.T) {
	p := newPipelineWith(t, "1s", payrollPolicies)
	copyOut := http.Header{"X-Amz-Copy-Source": {"/payroll/2026.csv"}}
	resp, body := p.send("PUT", "/scratch/copy.csv", "s3", copyOut, "")
	if resp.StatusCode != 403 || !strings.Contains(body, "s3:PutObject also needs s3:GetObject on arn:aws:s3:::payroll/2026.csv, which needs approval") ||
		!strings.Contains(body, "payroll-reads-need-sre") {
		t.Fatalf("copy out of payroll: %d %s", resp.StatusCode, body)
	}
	if p.upstream.hits.Load() != 0 {
		t.Fatal("the held copy was forwarded")
	}
	pending, err := p.workflow.List(context.Background(), string(approval.StatePending), bob)
	if err != nil || len(pending) != 1 || pending[0].Action.IAMAction != "s3:GetObject" || pending[0].Action.Resource != "arn:aws:s3:::payroll/2026.csv" {
		t.Fatalf("the approval request must name the read: %+v %v", pending, err)
	}
	if _, err := p.workflow.Approve(context.Background(), pending[0].ID, bob, "ok"); err != nil {
		t.Fatal(err)
	}
	if resp, body := p.send("PUT", "/scratch/copy.csv", "s3", copyOut, ""); resp.StatusCode != 200 {
		t.Fatalf("the copy after the read was approved: %d %s", resp.StatusCode, body)
	}
	// One allow decision for the retried copy, naming who approved its read.
	var allows []audit.Event
	p.audit.mu.Lock()
	for _, ev := range p.audit.events {
		if ev.Kind == "decision" && ev.Decision == "allow" && ev.Source == "arn:aws:s3:::payroll/2026.csv" {
			allows = append(allows, ev)
		}
	}
	p.audit.mu.Unlock()
	if len(allows) != 1 || len(allows[0].Approvers) == 0 {
		t.Errorf("allow decisions of the approved copy = %+v, want one with its approvers", allows)
	}
	// A copy out of a bucket whose reads flow needs nothing, with both statements in the policy.
	resp, body = p.send("PUT", "/scratch/copy.csv", "s3", http.Header{"X-Amz-Copy-Source": {"/reports/q1.csv"}}, "")
	if resp.StatusCode != 200 || p.upstream.hits.Load() != 2 {
		t.Fatalf("copy out of reports: %d %s", resp.StatusCode, body)
	}
	want := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::scratch/copy.csv"},` +
		`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/q1.csv"}]}`
	if got := p.minter.lastPolicy.Load(); got == nil || *got != want {
		t.Errorf("session policy of the copy = %v, want %s", got, want)
	}
	if f := p.audit.await("forward", "s3:PutObject", ""); f == nil || f.Source == "" || len(f.Also) != 1 || f.Also[0] != (audit.Permission{Action: "s3:GetObject", Resource: f.Source}) {
		t.Errorf("forward event of the copy: %+v", f)
	}
}

// TestWhatACallAlsoNeedsIsDecided: a call that also needs a permission no rule here allows
// (both are privilege) is refused naming it, and the same call without it goes through:
// RunInstances with an instance profile hands the instance a role (iam:PassRole), a PutObject
// with x-amz-acl sets the object's ACL (s3:PutObjectAcl).
func TestWhatACallAlsoNeedsIsDecided(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	const launch = "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1&MaxCount=1"
	for _, tc := range []struct {
		name, method, path, service string
		with, without               http.Header
		withBody, withoutBody       string
		want                        string
	}{
		{"instance with a role", "POST", "/", "ec2", form, form, launch + "&IamInstanceProfile.Name=admin", launch, "also needs iam:PassRole on admin"},
		{"upload with a public ACL", "PUT", "/reports/q1.csv", "s3", http.Header{"X-Amz-Acl": {"public-read"}}, nil, "data", "data", "also needs s3:PutObjectAcl on arn:aws:s3:::reports/q1.csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t, "1s")
			resp, body := p.send(tc.method, tc.path, tc.service, tc.with, tc.withBody)
			if resp.StatusCode != 403 || !strings.Contains(body, tc.want) || !strings.Contains(body, "default-deny") {
				t.Errorf("with it: %d %s", resp.StatusCode, body)
			}
			if p.upstream.hits.Load() != 0 {
				t.Fatal("the refused call was forwarded")
			}
			if resp, body := p.send(tc.method, tc.path, tc.service, tc.without, tc.withoutBody); resp.StatusCode != 200 {
				t.Errorf("without it: %d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestHeldCallGoesThroughWhenApprovedWhileWaiting(t *testing.T) {
	p := newPipeline(t, "30s")
	go func() {
		// Approve as soon as the request is pending.
		for i := 0; i < 1000; i++ {
			reqs, _ := p.workflow.List(context.Background(), "pending", bob)
			if len(reqs) > 0 {
				if _, err := p.workflow.Approve(context.Background(), reqs[0].ID, bob, "ok"); err != nil {
					t.Errorf("approve: %v", err)
				}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	resp, body := p.send("DELETE", "/bkt/key.txt", "s3", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("held DeleteObject after approval: %d %s", resp.StatusCode, body)
	}
	if d := p.audit.find("decision", "s3:DeleteObject", "hold"); d == nil || d.ApprovalID == "" {
		t.Errorf("hold event: %+v", d)
	}
	if d := p.audit.find("decision", "s3:DeleteObject", "allow"); d == nil || len(d.Approvers) == 0 {
		t.Errorf("allow-after-approval event must name the approvers: %+v", d)
	}
}

func TestHeldCallTimesOutThenRetryUsesTheGrantOnce(t *testing.T) {
	p := newPipeline(t, "50ms")
	resp, body := p.send("DELETE", "/bkt/key.txt", "s3", nil, "")
	if resp.StatusCode != 403 || !strings.Contains(body, "/requests/") || !strings.Contains(body, "object-deletes-need-sre") {
		t.Fatalf("held call: %d %s", resp.StatusCode, body)
	}
	if p.upstream.hits.Load() != 0 {
		t.Fatal("held call reached the upstream")
	}
	reqs, err := p.workflow.List(context.Background(), "pending", bob)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("pending: %v %v", reqs, err)
	}
	if _, err := p.workflow.Approve(context.Background(), reqs[0].ID, alice, "self"); !errors.Is(err, approval.ErrSelfApproval) && !errors.Is(err, approval.ErrNotApprover) {
		t.Errorf("self-approval: %v", err)
	}
	if _, err := p.workflow.Approve(context.Background(), reqs[0].ID, bob, "ok"); err != nil {
		t.Fatal(err)
	}
	if resp, body := p.send("DELETE", "/bkt/key.txt", "s3", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("retry after approval: %d %s", resp.StatusCode, body)
	}
	// The grant had one use: the next identical call is held again.
	if resp, body := p.send("DELETE", "/bkt/key.txt", "s3", nil, ""); resp.StatusCode != 403 || !strings.Contains(body, "/requests/") {
		t.Fatalf("second retry must be held again: %d %s", resp.StatusCode, body)
	}
	if p.upstream.hits.Load() != 1 {
		t.Errorf("upstream hits = %d, want 1", p.upstream.hits.Load())
	}
}

func TestFailsClosedWhenAuditCannotBeWritten(t *testing.T) {
	p := newPipeline(t, "1s")
	p.audit.fail.Store(true)
	resp, body := p.send("GET", "/", "s3", nil, "")
	if resp.StatusCode != 503 || !strings.Contains(body, "ServiceUnavailable") || !strings.Contains(body, "audit") {
		t.Errorf("audit down: %d %s", resp.StatusCode, body)
	}
	if p.upstream.hits.Load() != 0 {
		t.Error("call forwarded without an audit record")
	}
}

func TestTamperedAndForgedRequests(t *testing.T) {
	p := newPipeline(t, "1s")
	creds, _ := p.issuer.IssueAWS(alice, "dev", "")
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	sign := func(req *http.Request, body string) {
		sum := sha256.Sum256([]byte(body))
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hex.EncodeToString(sum[:]), "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	do := func(req *http.Request) (int, string) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Path changed after signing.
	req, _ := http.NewRequest("GET", p.airlock.URL+"/a", nil)
	sign(req, "")
	req.URL.Path = "/b"
	if code, body := do(req); code != 403 || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Errorf("tampered path: %d %s", code, body)
	}
	// Body changed after signing.
	req, _ = http.NewRequest("PUT", p.airlock.URL+"/bkt/k", strings.NewReader("good"))
	sign(req, "good")
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader("evil")), 4
	if code, body := do(req); code != 400 || !strings.Contains(body, "XAmzContentSHA256Mismatch") {
		t.Errorf("tampered body: %d %s", code, body)
	}
	// A forged Host cannot pick the upstream: the call still goes to the target's endpoint.
	req, _ = http.NewRequest("GET", p.airlock.URL+"/", nil)
	req.Host = "attacker.example"
	sign(req, "")
	if code, body := do(req); code != 200 {
		t.Errorf("forged host: %d %s", code, body)
	}
	if got := p.upstream.last.Load(); got == nil || got.Host != strings.TrimPrefix(p.upstream.URL, "http://") {
		t.Errorf("upstream saw host %v", got)
	}
	if p.upstream.hits.Load() != 1 {
		t.Errorf("upstream hits = %d, want 1 (only the forged-host call)", p.upstream.hits.Load())
	}
}

func TestUpstreamUnreachableIsAReadableError(t *testing.T) {
	p := newPipeline(t, "1s")
	p.upstream.Close()
	resp, body := p.send("GET", "/", "s3", nil, "")
	if resp.StatusCode != 502 || !strings.Contains(body, "unreachable") {
		t.Errorf("upstream down: %d %s", resp.StatusCode, body)
	}
	if f := p.audit.await("forward", "s3:ListAllMyBuckets", ""); f == nil || f.UpstreamStatus != 502 {
		t.Errorf("forward event for an unreachable upstream: %+v", f)
	}
}

func TestPresignedURLIsForwardedWithHeaderSignatureAndItsOwnQuery(t *testing.T) {
	p := newPipeline(t, "1s")
	creds, err := p.issuer.IssueAWS(alice, "dev", "INC-7 cleanup")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", p.airlock.URL+"/bkt/report.csv?versionId=3&response-content-type=text%2Fplain", nil)
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u) // a browser or curl: no signature headers, only the URL
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned GetObject: %d %s", resp.StatusCode, body)
	}
	last := p.upstream.last.Load()
	if last == nil {
		t.Fatal("the upstream did not accept the re-signed call")
	}
	q := last.URL.Query()
	if q.Get("versionId") != "3" || q.Get("response-content-type") != "text/plain" {
		t.Errorf("the client's own parameters must reach the upstream: %q", last.URL.RawQuery)
	}
	for k := range q {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			t.Errorf("presigned-URL parameter %s reached the upstream: %q", k, last.URL.RawQuery)
		}
	}
}

func TestResponseOfUnknownLengthIsStreamedAsItArrives(t *testing.T) {
	// The upstream sends the first part of a chunked answer and sends the rest only once the
	// client has read that part: if Airlock held the first part back, the call would hang.
	p := newPipeline(t, "1s")
	clientHasFirst := make(chan struct{})
	answer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "first part;")
		http.NewResponseController(w).Flush()
		select {
		case <-clientHasFirst:
		case <-time.After(20 * time.Second):
			return // the test fails on the client side
		}
		io.WriteString(w, "second part")
	}
	p.upstream.answer.Store(&answer)

	creds, err := p.issuer.IssueAWS(alice, "dev", "INC-7 cleanup")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", p.airlock.URL+"/bkt/stream.bin", nil)
	req.Header.Set("X-Amz-Content-Sha256", emptyPayloadHash)
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, emptyPayloadHash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first part;"))
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); got <- err }()
	select {
	case err := <-got:
		if err != nil || string(first) != "first part;" {
			t.Fatalf("first part: %q, %v", first, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the first part of a streamed answer did not reach the client before the rest was sent")
	}
	close(clientHasFirst)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second part" {
		t.Errorf("rest: %q, %v", rest, err)
	}
}

// emptyPayloadHash is the SHA-256 of no bytes.
var emptyPayloadHash = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()
