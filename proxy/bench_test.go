package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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

// cannedUpstream answers every forwarded call at once without a network, so that the benchmark
// measures Airlock and not the loopback.
type cannedUpstream struct{}

func (cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, ContentLength: 2,
		Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
}

// benchSTS answers AssumeRole with fixed credentials; only the first call of each benchmark
// reaches it, the rest are cache hits.
func benchSTS(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIABENCH</AccessKeyId><SecretAccessKey>bench-secret</SecretAccessKey><SessionToken>bench-token</SessionToken><Expiration>%s</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// newBenchProxy wires the pipeline as `airlock serve` does: real verifier, namer, policy
// engine, workflow, AWS broker with its encrypted cache on the memory store, and the audit log
// writing its file and store stream.
func newBenchProxy(tb testing.TB) (*Proxy, *authn.Issuer) {
	tb.Helper()
	sts := benchSTS(tb)
	tb.Setenv("AIRLOCK_BENCH_AK", "AKIABENCHBASE")
	tb.Setenv("AIRLOCK_BENCH_SK", "bench-base-secret")
	cfg, err := config.Parse([]byte(`listen: 127.0.0.1:8080
public_url: http://127.0.0.1:8080
targets:
  - name: dev
    cloud: aws
    role_arn: arn:aws:iam::111122223333:role/bench
    regions: [us-east-1]
    endpoint: http://upstream.invalid
    sts_endpoint: ` + sts.URL + `
    base_credentials: {access_key_id_env: AIRLOCK_BENCH_AK, secret_access_key_env: AIRLOCK_BENCH_SK}
` + pipelinePolicies))
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	st := memory.New(nil)
	aud, err := audit.NewLog(context.Background(), audit.LogConfig{Store: st, File: filepath.Join(tb.TempDir(), "audit.jsonl"), Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { aud.Close() })
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		tb.Fatal(err)
	}
	verifier, err := authn.NewSigV4Verifier(authn.SigV4Config{Issuer: issuer})
	if err != nil {
		tb.Fatal(err)
	}
	engine, err := approval.NewEngine(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	wf, err := approval.NewWorkflow(approval.WorkflowConfig{Store: st, Auditor: aud, PublicURL: cfg.PublicURL, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { wf.Close() })
	broker, err := signer.NewAWSBroker(signer.AWSBrokerConfig{BrokerConfig: signer.BrokerConfig{Store: st, Key: bytes.Repeat([]byte{3}, 32), Logger: logger}})
	if err != nil {
		tb.Fatal(err)
	}
	px, err := New(Config{Settings: cfg, Logger: logger, SigV4: verifier, Policy: engine, Approvals: wf,
		AWS: broker, Audit: aud, Transport: cannedUpstream{}})
	if err != nil {
		tb.Fatal(err)
	}
	return px, issuer
}

// benchCall is one allowed call, signed once by the SDK's signer with Airlock-issued
// credentials (the signature stays valid for the 5-minute skew window).
type benchCall struct {
	name, service, method, target string
	header                        http.Header
	body                          string
}

var benchCalls = []benchCall{
	{name: "s3-GetObject", service: "s3", method: "GET", target: "/bkt/reports/2026/q1.json?x-id=GetObject"},
	{name: "dynamodb-GetItem", service: "dynamodb", method: "POST", target: "/",
		header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amz-Target": {"DynamoDB_20120810.GetItem"}},
		body:   `{"TableName":"orders","Key":{"pk":{"S":"order#1234"}}}`},
	{name: "ec2-DescribeInstances", service: "ec2", method: "POST", target: "/",
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		body:   "Action=DescribeInstances&Version=2016-11-15&MaxResults=50"},
}

func (bc benchCall) request(tb testing.TB, issuer *authn.Issuer) *http.Request {
	creds, err := issuer.IssueAWS(authn.Identity{Subject: "alice", Email: "alice@example.com", Groups: []string{"engineers"}}, "dev", "bench")
	if err != nil {
		tb.Fatal(err)
	}
	r := httptest.NewRequest(bc.method, "http://127.0.0.1:8080"+bc.target, strings.NewReader(bc.body))
	for k, v := range bc.header {
		r.Header[k] = v
	}
	sum := sha256.Sum256([]byte(bc.body))
	hash := hex.EncodeToString(sum[:])
	if bc.service == "s3" {
		r.Header.Set("X-Amz-Content-Sha256", hash)
	}
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, r, hash, bc.service, "us-east-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
	return r
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// Flush is there because the server's writer has it; ReverseProxy calls it.
func (w *discardWriter) Flush() {}

// BenchmarkPipeline measures one allowed call end to end in process: verify, name, decide,
// cached credentials, re-sign, forward (to an in-memory upstream) and two audit events written
// to the file and the stream. The per-iteration request copy and body reset are included.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range benchCalls {
		b.Run(bc.name, func(b *testing.B) {
			px, issuer := newBenchProxy(b)
			tmpl := bc.request(b, issuer)
			w := &discardWriter{h: http.Header{}}
			body := []byte(bc.body)
			serve := func() {
				r := *tmpl
				r.Body = io.NopCloser(bytes.NewReader(body))
				clear(w.h)
				w.status = 200
				px.ServeHTTP(w, &r)
				if w.status != 200 {
					b.Fatalf("status %d", w.status)
				}
			}
			serve() // mint once: the benchmark measures cache hits
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve()
			}
		})
	}
}

func TestBenchPipelineWiring(t *testing.T) {
	// Keeps BenchmarkPipeline's setup honest in `go test`: every benchmark call is allowed and
	// forwarded.
	px, issuer := newBenchProxy(t)
	for _, bc := range benchCalls {
		w := &discardWriter{h: http.Header{}, status: 200}
		px.ServeHTTP(w, bc.request(t, issuer))
		if w.status != 200 {
			t.Errorf("%s: status %d", bc.name, w.status)
		}
	}
}
