package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store/memory"
)

// forwardEnv is the forward proxy in front of the test pipeline, whose target's endpoint
// override points at the fake upstream: nothing in these tests leaves loopback.
type forwardEnv struct {
	*pipeline
	proxyURL *url.URL
	ca       *CA
	client   *http.Client
}

func newForwardEnv(t *testing.T, otherHosts string) *forwardEnv {
	t.Helper()
	p := newPipeline(t, "1s")
	ca, err := LoadOrCreateCA(context.Background(), testCAConfig(memory.New(nil), 3))
	if err != nil {
		t.Fatal(err)
	}
	settings := &config.Config{PublicURL: p.airlock.URL, Forward: config.ForwardProxy{Enabled: true, OtherHosts: otherHosts}}
	f, err := NewForward(ForwardConfig{Settings: settings, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CA: ca, Cloud: p.airlock.Config.Handler})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.Close(ctx)
	})
	u, _ := url.Parse(srv.URL)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	return &forwardEnv{pipeline: p, proxyURL: u, ca: ca, client: client}
}

// signed builds a request to a real AWS URL signed with alice's Airlock-issued credentials.
func (e *forwardEnv) signed(t *testing.T, method, rawURL, service, region, body string) *http.Request {
	t.Helper()
	creds, err := e.issuer.IssueAWS(alice, "dev", "forward test")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, rawURL, strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	c := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hash, service, region, time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

func (e *forwardEnv) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestForwardModeInterceptsAWSAndTakesThePipeline(t *testing.T) {
	e := newForwardEnv(t, "refuse")
	resp, body := e.do(t, e.signed(t, "GET", "https://s3.us-east-1.amazonaws.com/", "s3", "us-east-1", ""))
	if resp.StatusCode != 200 || !strings.Contains(body, "ListAllMyBucketsResult") {
		t.Fatalf("ListBuckets through the forward proxy: %d %s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != e.ca.Certificate().Subject.CommonName {
		t.Error("the client did not see a certificate from Airlock's CA")
	}
	if e.audit.find("decision", "s3:ListAllMyBuckets", "allow") == nil {
		t.Error("no decision event")
	}

	// Virtual-hosted style: the bucket in the host becomes path-style at the endpoint override.
	resp, body = e.do(t, e.signed(t, "PUT", "https://my-bucket.s3.us-east-1.amazonaws.com/dir/key.txt", "s3", "us-east-1", "data"))
	if resp.StatusCode != 200 {
		t.Fatalf("PutObject: %d %s", resp.StatusCode, body)
	}
	if last := e.upstream.last.Load(); last == nil || last.URL.Path != "/my-bucket/dir/key.txt" {
		t.Errorf("upstream saw %v", last.URL)
	}
	if ev := e.audit.find("decision", "s3:PutObject", "allow"); ev == nil || !strings.Contains(ev.Resource, "my-bucket/dir/key.txt") {
		t.Errorf("PutObject named as %+v", ev)
	}

	// Plain-HTTP proxy requests to an allowlisted host take the same path.
	resp, body = e.do(t, e.signed(t, "GET", "http://s3.us-east-1.amazonaws.com/", "s3", "us-east-1", ""))
	if resp.StatusCode != 200 {
		t.Errorf("plain-HTTP ListBuckets: %d %s", resp.StatusCode, body)
	}
}

func TestForwardModeRefusesCallsItCannotAttribute(t *testing.T) {
	e := newForwardEnv(t, "refuse")
	before := e.upstream.hits.Load()

	// Not signed at all.
	req, _ := http.NewRequest("GET", "https://s3.us-east-1.amazonaws.com/", nil)
	resp, body := e.do(t, req)
	if resp.StatusCode != 403 || !strings.Contains(body, "InvalidClientTokenId") {
		t.Errorf("unsigned: %d %s", resp.StatusCode, body)
	}
	// Signed for one service, sent to another service's host.
	resp, body = e.do(t, e.signed(t, "GET", "https://ec2.us-east-1.amazonaws.com/?Action=DescribeInstances", "s3", "us-east-1", ""))
	if resp.StatusCode != 403 {
		t.Errorf("service/host mismatch: %d %s", resp.StatusCode, body)
	}
	// A Host header other than the tunnel's host.
	req = e.signed(t, "GET", "https://s3.us-east-1.amazonaws.com/", "s3", "us-east-1", "")
	req.Host = "s3.eu-west-1.amazonaws.com"
	resp, body = e.do(t, req)
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("host mismatch: %d %s", resp.StatusCode, body)
	}
	// A GCP host without an Airlock token.
	req, _ = http.NewRequest("GET", "https://compute.googleapis.com/compute/v1/projects/p/zones", nil)
	req.Header.Set("Authorization", "Bearer ya29.someone-elses-token")
	resp, body = e.do(t, req)
	if resp.StatusCode != 401 || !strings.Contains(body, "UNAUTHENTICATED") {
		t.Errorf("foreign GCP token: %d %s", resp.StatusCode, body)
	}
	if e.upstream.hits.Load() != before {
		t.Error("a refused call reached the upstream")
	}
}

// rawConnect sends CONNECT host to the proxy and returns the status line and body.
func rawConnect(t *testing.T, proxy *url.URL, host string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxy.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestForwardModeRefusesOtherHosts(t *testing.T) {
	e := newForwardEnv(t, "refuse")
	status, body := rawConnect(t, e.proxyURL, "example.internal:443")
	if status != 403 || !strings.Contains(body, "example.internal") || !strings.Contains(body, "other_hosts") {
		t.Errorf("CONNECT example.internal: %d %q", status, body)
	}
	// Token endpoints are not control plane: not intercepted, so refused too.
	if status, _ := rawConnect(t, e.proxyURL, "login.microsoftonline.com:443"); status != 403 {
		t.Errorf("CONNECT login.microsoftonline.com: %d", status)
	}
	// An allowlisted host on another port is refused rather than tunnelled.
	if status, _ := rawConnect(t, e.proxyURL, "s3.us-east-1.amazonaws.com:8443"); status != 403 {
		t.Errorf("CONNECT s3 on 8443: %d", status)
	}
	resp, err := e.client.Get("http://example.internal/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("plain GET example.internal: %d", resp.StatusCode)
	}
}

func TestForwardModePassesOtherHostsThroughUntouched(t *testing.T) {
	e := newForwardEnv(t, "passthrough")
	site := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the site itself")
	}))
	defer site.Close()
	roots := x509.NewCertPool()
	roots.AddCert(site.Certificate())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(e.proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get(site.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "the site itself" {
		t.Errorf("body %q", b)
	}
	if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, site.Certificate().Raw) {
		t.Error("the client did not see the site's own certificate")
	}
}

func TestForwardUpstreamIsTheRequestedHostOnlyWhenAllowlisted(t *testing.T) {
	cfg := &config.Config{PublicURL: "http://127.0.0.1:8080"}
	p := &Proxy{cfg: Config{Settings: cfg}}
	cases := []struct {
		name, host, path, service, region, endpoint string
		wantHost, wantPath                          string
		wantErr                                     bool
	}{
		{name: "service host", host: "s3.us-east-1.amazonaws.com", path: "/b/k", service: "s3", region: "us-east-1", wantHost: "s3.us-east-1.amazonaws.com", wantPath: "/b/k"},
		{name: "virtual-hosted bucket", host: "bkt.s3.us-east-1.amazonaws.com", path: "/k", service: "s3", region: "us-east-1", wantHost: "bkt.s3.us-east-1.amazonaws.com", wantPath: "/k"},
		{name: "bucket with dots", host: "a.b.s3.us-west-2.amazonaws.com", path: "/k", service: "s3", region: "us-west-2", wantHost: "a.b.s3.us-west-2.amazonaws.com", wantPath: "/k"},
		{name: "ec2", host: "ec2.eu-west-1.amazonaws.com", path: "/", service: "ec2", region: "eu-west-1", wantHost: "ec2.eu-west-1.amazonaws.com", wantPath: "/"},
		{name: "override wins", host: "bkt.s3.us-east-1.amazonaws.com", path: "/k", service: "s3", region: "us-east-1", endpoint: "http://127.0.0.1:9000", wantHost: "127.0.0.1:9000", wantPath: "/bkt/k"},
		{name: "region mismatch", host: "ec2.eu-west-1.amazonaws.com", path: "/", service: "ec2", region: "us-east-1", wantErr: true},
		{name: "service mismatch", host: "ec2.us-east-1.amazonaws.com", path: "/", service: "iam", region: "us-east-1", wantErr: true},
		{name: "override does not excuse a mismatch", host: "ec2.us-east-1.amazonaws.com", path: "/", service: "s3", region: "us-east-1", endpoint: "http://127.0.0.1:9000", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://"+tc.host+tc.path, nil)
			r = r.WithContext(withForwardHost(r.Context(), tc.host))
			c := &call{r: r, sig: &authn.SigV4Result{Service: tc.service, Region: tc.region}, target: &config.Target{Name: "t", Endpoint: tc.endpoint}}
			up, err := p.upstreamFor(c)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want a refusal, got %+v", up)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if up.host != tc.wantHost || up.path != tc.wantPath {
				t.Errorf("upstream %s%s, want %s%s", up.host, up.path, tc.wantHost, tc.wantPath)
			}
		})
	}
}
