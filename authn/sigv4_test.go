package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// testClock is a settable clock shared by the issuer and the verifier.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newTestIssuer(t testing.TB, key []byte, now func() time.Time) *Issuer {
	t.Helper()
	i, err := NewIssuer(IssuerConfig{Key: key, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func newTestVerifier(t testing.TB, now func() time.Time) *SigV4Verifier {
	t.Helper()
	v, err := NewSigV4Verifier(SigV4Config{Issuer: newTestIssuer(t, testKey(1), now), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func assertCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want *Error with code %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%s), want %s", e.Code, e.Message, code)
	}
}

var testIdentity = Identity{Subject: "u-alice", Email: "alice@example.com", Groups: []string{"engineers", "oncall"}}

// sdkRequest is a request as an AWS SDK would build it before signing.
type sdkRequest struct {
	service, region string
	method          string
	path            string // escaped path and query, as on the wire
	host            string // Host header; "" = the test server's address
	header          map[string]string
	body            string
	// payload is what the signer covers: "" = SHA-256 of body.
	payload string
	// contentSHA256 sends the payload hash as x-amz-content-sha256 (S3 always does).
	contentSHA256 bool
	presign       bool
	expires       int // presign only
}

func ec2Query() sdkRequest {
	return sdkRequest{service: "ec2", region: "us-east-1", method: "POST", path: "/", host: "ec2.us-east-1.amazonaws.com",
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
		body:   "Action=TerminateInstances&InstanceId.1=i-0123456789abcdef0&Version=2016-11-15"}
}

func dynamoJSON() sdkRequest {
	return sdkRequest{service: "dynamodb", region: "eu-west-1", method: "POST", path: "/", host: "dynamodb.eu-west-1.amazonaws.com",
		header: map[string]string{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.DeleteTable"},
		body:   `{"TableName":"orders"}`}
}

func s3GetPathStyle() sdkRequest {
	return sdkRequest{service: "s3", region: "us-east-1", method: "GET", path: "/my-bucket/reports/2026%2F03/q1%20summary+final.csv?versionId=3%2Fx",
		contentSHA256: true}
}

func s3PutVirtualHost() sdkRequest {
	return sdkRequest{service: "s3", region: "us-east-1", method: "PUT", path: "/dir/obj%3Dname~1.txt", host: "my-bucket.s3.us-east-1.amazonaws.com",
		header: map[string]string{"Content-Type": "text/plain", "X-Amz-Server-Side-Encryption": "AES256"},
		body:   strings.Repeat("hello airlock\n", 100), contentSHA256: true}
}

func s3Presigned() sdkRequest {
	return sdkRequest{service: "s3", region: "us-east-1", method: "GET", path: "/my-bucket/a%20b.txt", host: "my-bucket.s3.amazonaws.com",
		payload: payloadUnsigned, presign: true, expires: 900}
}

// sign signs req the way the SDK does, with a fresh signer every time (the SDK signer caches
// signing keys by key ID, not by secret).
func (sr sdkRequest) sign(t testing.TB, srvURL string, creds aws.Credentials, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(sr.method, srvURL+sr.path, strings.NewReader(sr.body))
	if err != nil {
		t.Fatal(err)
	}
	if sr.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if sr.host != "" {
		req.Host = sr.host
	}
	for k, v := range sr.header {
		req.Header.Set(k, v)
	}
	payload := sr.payload
	if payload == "" {
		sum := sha256.Sum256([]byte(sr.body))
		payload = hex.EncodeToString(sum[:])
	}
	if sr.contentSHA256 {
		req.Header.Set("X-Amz-Content-Sha256", payload)
	}
	// The S3 client signs the path as sent; every other client escapes it once more.
	opt := func(o *v4.SignerOptions) { o.DisableURIPathEscaping = sr.service == "s3" }
	signer := v4.NewSigner()
	if !sr.presign {
		if err := signer.SignHTTP(context.Background(), creds, req, payload, sr.service, sr.region, at, opt); err != nil {
			t.Fatal(err)
		}
		return req
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(sr.expires))
	req.URL.RawQuery = q.Encode()
	signed, hdr, err := signer.PresignHTTP(context.Background(), creds, req, payload, sr.service, sr.region, at, opt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(sr.method, signed, strings.NewReader(sr.body))
	if err != nil {
		t.Fatal(err)
	}
	if sr.body == "" {
		out.Body, out.ContentLength = http.NoBody, 0
	}
	out.Host = req.Host
	for k, vs := range hdr {
		if k != "Host" {
			out.Header[k] = vs
		}
	}
	return out
}

func awsCreds(c AWSCredentials) aws.Credentials {
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

// verifyServer runs the verifier behind a real HTTP server, as the proxy will, and reports
// the error code or "OK <subject> <sha256 of the body the handler could read>".
func verifyServer(t testing.TB, v *SigV4Verifier) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(r.Body)
			if err == nil {
				sum := sha256.Sum256(body)
				io.WriteString(w, "OK "+res.Identity.Subject+" "+res.Identity.Target+" "+hex.EncodeToString(sum[:]))
				return
			}
		}
		var e *Error
		if !errors.As(err, &e) {
			http.Error(w, "not an *Error: "+err.Error(), 500)
			return
		}
		w.WriteHeader(e.Status)
		io.WriteString(w, e.Code)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type roundTrip struct {
	clock  *testClock
	issuer *Issuer
	v      *SigV4Verifier
	srv    *httptest.Server
	creds  AWSCredentials
}

func newRoundTrip(t testing.TB, maxBody int64) *roundTrip {
	clock := newTestClock()
	issuer := newTestIssuer(t, testKey(1), clock.Now)
	v, err := NewSigV4Verifier(SigV4Config{Issuer: issuer, Now: clock.Now, MaxBufferedBody: maxBody})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := issuer.IssueAWS(testIdentity, "prod-aws", "OPS-42 rotate keys")
	if err != nil {
		t.Fatal(err)
	}
	return &roundTrip{clock: clock, issuer: issuer, v: v, srv: verifyServer(t, v), creds: creds}
}

func TestSigV4SDKRoundTrip(t *testing.T) {
	rt := newRoundTrip(t, 0)
	presignedSTS := sdkRequest{service: "sts", region: "us-east-1", method: "GET", host: "sts.amazonaws.com",
		path: "/?Action=GetCallerIdentity&Version=2011-06-15", header: map[string]string{"X-K8s-Aws-Id": "my-cluster"},
		presign: true, expires: 60}
	unsignedTrailer := s3PutVirtualHost()
	unsignedTrailer.payload = payloadStreamingUnsigned
	cases := map[string]sdkRequest{
		"ec2 query POST":               ec2Query(),
		"dynamodb JSON":                dynamoJSON(),
		"s3 GET path-style":            s3GetPathStyle(),
		"s3 PUT virtual-host":          s3PutVirtualHost(),
		"s3 presigned GET":             s3Presigned(),
		"sts presigned GET":            presignedSTS,
		"s3 PUT streaming unsigned":    unsignedTrailer,
		"s3 PUT unsigned payload":      func() sdkRequest { r := s3PutVirtualHost(); r.payload = payloadUnsigned; return r }(),
		"ec2 with dot segment in path": func() sdkRequest { r := ec2Query(); r.path = "/a/./b/../"; return r }(),
	}
	for name, sr := range cases {
		t.Run(name, func(t *testing.T) {
			status, body := send(t, sr.sign(t, rt.srv.URL, awsCreds(rt.creds), rt.clock.Now()))
			sum := sha256.Sum256([]byte(sr.body))
			want := "OK u-alice prod-aws " + hex.EncodeToString(sum[:])
			if status != 200 || body != want {
				t.Fatalf("got %d %q, want 200 %q", status, body, want)
			}
		})
	}
}

func TestSigV4Result(t *testing.T) {
	rt := newRoundTrip(t, 0)
	r := dynamoJSON().sign(t, "http://airlock.test", awsCreds(rt.creds), rt.clock.Now())
	res, err := rt.v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Email != "alice@example.com" || res.Identity.Ticket != "OPS-42" || res.Identity.Reason != "OPS-42 rotate keys" ||
		!res.Identity.InGroup("oncall") || res.Service != "dynamodb" || res.Region != "eu-west-1" ||
		res.AccessKeyID != rt.creds.AccessKeyID || res.Presigned || !res.Date.Equal(rt.clock.Now()) ||
		!res.Identity.ExpiresAt.Equal(rt.creds.Expiration) {
		t.Errorf("result = %+v", res)
	}
	if got := strings.Join(res.SignedHeaders, ";"); got != "content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target" {
		t.Errorf("signed headers = %s", got)
	}
	sum := sha256.Sum256([]byte(`{"TableName":"orders"}`))
	if res.PayloadHash != hex.EncodeToString(sum[:]) {
		t.Errorf("payload hash = %s", res.PayloadHash)
	}
	// The verifier read the body to hash it and must hand it back, replayable.
	if b, _ := io.ReadAll(r.Body); string(b) != `{"TableName":"orders"}` || r.ContentLength != int64(len(b)) || r.GetBody == nil {
		t.Errorf("body after Verify = %q (len %d)", b, r.ContentLength)
	}
	if rc, err := r.GetBody(); err != nil {
		t.Error(err)
	} else if b, _ := io.ReadAll(rc); string(b) != `{"TableName":"orders"}` {
		t.Errorf("GetBody = %q", b)
	}
}

func TestSigV4Refusals(t *testing.T) {
	rt := newRoundTrip(t, 0)
	now := rt.clock.Now()
	other := newTestIssuer(t, testKey(2), rt.clock.Now)
	forged, err := other.IssueAWS(testIdentity, "prod-aws", "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := rt.issuer.IssueAWS(testIdentity, "prod-aws", "")
	if err != nil {
		t.Fatal(err)
	}
	good := awsCreds(rt.creds)
	with := func(f func(*aws.Credentials)) aws.Credentials { c := good; f(&c); return c }

	type tc struct {
		req    sdkRequest
		creds  aws.Credentials
		at     time.Time
		tamper func(*http.Request)
		want   string
	}
	cases := map[string]tc{
		"body changed (hashed by verifier)": {req: ec2Query(), tamper: func(r *http.Request) {
			setBody(r, strings.Replace(ec2Query().body, "i-0123", "i-9999", 1))
		}, want: CodeSignatureDoesNotMatch},
		"body changed (declared hash)": {req: s3PutVirtualHost(), tamper: func(r *http.Request) {
			setBody(r, strings.Repeat("HELLO airlock\n", 100))
		}, want: CodeContentSHA256Mismatch},
		"signed header changed": {req: dynamoJSON(), tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
		}, want: CodeSignatureDoesNotMatch},
		"host changed":   {req: s3PutVirtualHost(), tamper: func(r *http.Request) { r.Host = "other-bucket.s3.us-east-1.amazonaws.com" }, want: CodeSignatureDoesNotMatch},
		"path changed":   {req: s3GetPathStyle(), tamper: func(r *http.Request) { r.URL.Path = "/my-bucket/other.csv"; r.URL.RawPath = "" }, want: CodeSignatureDoesNotMatch},
		"query added":    {req: ec2Query(), tamper: func(r *http.Request) { r.URL.RawQuery = "DryRun=true" }, want: CodeSignatureDoesNotMatch},
		"query changed":  {req: s3GetPathStyle(), tamper: func(r *http.Request) { r.URL.RawQuery = "versionId=4" }, want: CodeSignatureDoesNotMatch},
		"method changed": {req: s3GetPathStyle(), tamper: func(r *http.Request) { r.Method = "DELETE" }, want: CodeSignatureDoesNotMatch},
		"unsigned x-amz header added": {req: s3PutVirtualHost(), tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Acl", "public-read")
		}, want: CodeAccessDenied},
		"wrong secret":            {req: dynamoJSON(), creds: with(func(c *aws.Credentials) { c.SecretAccessKey = second.SecretAccessKey }), want: CodeSignatureDoesNotMatch},
		"forged token":            {req: dynamoJSON(), creds: awsCreds(forged), want: CodeInvalidClientTokenID},
		"key ID of another token": {req: dynamoJSON(), creds: with(func(c *aws.Credentials) { c.AccessKeyID = second.AccessKeyID }), want: CodeInvalidClientTokenID},
		"token bit flipped": {req: dynamoJSON(), creds: with(func(c *aws.Credentials) {
			b := []byte(c.SessionToken)
			b[len(b)/2] ^= 1
			c.SessionToken = string(b)
		}), want: CodeInvalidClientTokenID},
		"no session token":        {req: dynamoJSON(), creds: with(func(c *aws.Credentials) { c.SessionToken = "" }), want: CodeMissingAuthenticationToken},
		"no authentication":       {req: dynamoJSON(), tamper: func(r *http.Request) { r.Header.Del("Authorization") }, want: CodeMissingAuthenticationToken},
		"signed 6m in the future": {req: ec2Query(), at: now.Add(6 * time.Minute), want: CodeRequestTimeTooSkewed},
		"signed 6m ago":           {req: ec2Query(), at: now.Add(-6 * time.Minute), want: CodeRequestTimeTooSkewed},
		"presigned URL expired": {req: func() sdkRequest { r := s3Presigned(); r.expires = 60; return r }(),
			at: now.Add(-2 * time.Minute), want: CodeAccessDenied},
		"presigned URL from the future": {req: s3Presigned(), at: now.Add(10 * time.Minute), want: CodeRequestTimeTooSkewed},
		"presigned URL valid 8 days": {req: func() sdkRequest { r := s3Presigned(); r.expires = 8 * 24 * 3600; return r }(),
			want: CodeIncompleteSignature},
		"presigned query tampered": {req: s3Presigned(), tamper: func(r *http.Request) {
			q := r.URL.Query()
			q.Set("X-Amz-Expires", "3600")
			r.URL.RawQuery = q.Encode()
		}, want: CodeSignatureDoesNotMatch},
		"chunk-signed upload with SigV4a": {req: func() sdkRequest {
			r := s3PutVirtualHost()
			r.payload = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
			return r
		}(), want: CodeNotImplemented},
		"chunk-signed upload without x-amz-decoded-content-length": {req: func() sdkRequest {
			r := s3PutVirtualHost()
			r.payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
			return r
		}(), want: CodeMissingContentLength},
		"unknown streaming payload": {req: func() sdkRequest {
			r := s3PutVirtualHost()
			r.payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-OTHER"
			return r
		}(), want: CodeContentSHA256Mismatch},
		"s3 without x-amz-content-sha256": {req: func() sdkRequest { r := s3GetPathStyle(); r.contentSHA256 = false; return r }(),
			want: CodeIncompleteSignature},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			creds := c.creds
			if creds.AccessKeyID == "" {
				creds = good
			}
			at := c.at
			if at.IsZero() {
				at = now
			}
			req := c.req.sign(t, rt.srv.URL, creds, at)
			if c.tamper != nil {
				c.tamper(req)
			}
			status, body := send(t, req)
			if body != c.want {
				t.Fatalf("got %d %q, want %s", status, body, c.want)
			}
		})
	}
}

func setBody(r *http.Request, s string) {
	r.Body = io.NopCloser(strings.NewReader(s))
	r.ContentLength = int64(len(s))
}

func TestSigV4ExpiredCredentials(t *testing.T) {
	rt := newRoundTrip(t, 0)
	rt.clock.Advance(time.Hour + time.Second)
	// Signed now, so the clock is fine; the credential itself has run out.
	status, body := send(t, dynamoJSON().sign(t, rt.srv.URL, awsCreds(rt.creds), rt.clock.Now()))
	if status != 403 || body != CodeExpiredToken {
		t.Fatalf("got %d %q, want 403 %s", status, body, CodeExpiredToken)
	}
}

func TestSigV4StreamedBodyCheck(t *testing.T) {
	rt := newRoundTrip(t, 64) // bodies over 64 bytes are checked as they stream
	put := s3PutVirtualHost()
	status, body := send(t, put.sign(t, rt.srv.URL, awsCreds(rt.creds), rt.clock.Now()))
	sum := sha256.Sum256([]byte(put.body))
	if status != 200 || body != "OK u-alice prod-aws "+hex.EncodeToString(sum[:]) {
		t.Fatalf("intact large body: got %d %q", status, body)
	}

	req := put.sign(t, rt.srv.URL, awsCreds(rt.creds), rt.clock.Now())
	setBody(req, strings.Repeat("HELLO airlock\n", 100))
	if status, body := send(t, req); body != CodeContentSHA256Mismatch {
		t.Fatalf("tampered large body: got %d %q", status, body)
	}

	// Without a declared hash the verifier has to hash the body first, within the limit.
	if status, body := send(t, ec2Query().sign(t, rt.srv.URL, awsCreds(rt.creds), rt.clock.Now())); body != CodeRequestEntityTooLarge {
		t.Fatalf("large undeclared body: got %d %q", status, body)
	}
}

// Malformed signatures that no SDK produces, built by hand.
func TestSigV4Malformed(t *testing.T) {
	clock := newTestClock()
	v := newTestVerifier(t, clock.Now)
	date := clock.Now().Format(amzDateFormat)
	scope := "AKID/" + date[:8] + "/us-east-1/ec2/aws4_request"
	sig := strings.Repeat("ab", 32)
	cases := []struct {
		name   string
		header map[string]string
		query  string
		want   string
	}{
		{"nothing", nil, "", CodeMissingAuthenticationToken},
		{"sigv2", map[string]string{"Authorization": "AWS AKID:c2lnbmF0dXJl"}, "", CodeNotImplemented},
		{"sigv2 presigned", nil, "AWSAccessKeyId=AKID&Signature=c2ln&Expires=1795605147", CodeNotImplemented},
		{"sigv4a", map[string]string{"Authorization": "AWS4-ECDSA-P256-SHA256 Credential=x"}, "", CodeNotImplemented},
		{"bearer", map[string]string{"Authorization": "Bearer abc"}, "", CodeIncompleteSignature},
		{"no credential", map[string]string{"Authorization": "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + sig, "X-Amz-Date": date}, "", CodeIncompleteSignature},
		{"no signature", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date", "X-Amz-Date": date}, "", CodeIncompleteSignature},
		{"credential twice", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", Credential=" + scope + ", SignedHeaders=host;x-amz-date, Signature=" + sig, "X-Amz-Date": date}, "", CodeIncompleteSignature},
		{"short scope", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/" + date[:8] + "/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig, "X-Amz-Date": date}, "", CodeIncompleteSignature},
		{"short signature", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date, Signature=abcd", "X-Amz-Date": date}, "", CodeIncompleteSignature},
		{"no x-amz-date", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host, Signature=" + sig}, "", CodeIncompleteSignature},
		{"bad x-amz-date", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date, Signature=" + sig, "X-Amz-Date": "2026-03-04T10:00:00Z"}, "", CodeIncompleteSignature},
		{"scope date differs", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260305/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig, "X-Amz-Date": date}, "", CodeSignatureDoesNotMatch},
		{"host not signed", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=x-amz-date, Signature=" + sig, "X-Amz-Date": date}, "", CodeAccessDenied},
		{"upper-case signed header", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=Host;x-amz-date, Signature=" + sig, "X-Amz-Date": date}, "", CodeIncompleteSignature},
		{"header and query", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date, Signature=" + sig, "X-Amz-Date": date}, "X-Amz-Signature=" + sig, CodeIncompleteSignature},
		{"x-amz-date not signed", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host, Signature=" + sig, "X-Amz-Date": date}, "", CodeAccessDenied},
		{"unsigned token", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date, Signature=" + sig, "X-Amz-Date": date, "X-Amz-Security-Token": "t"}, "", CodeAccessDenied},
		{"garbage token", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=" + scope + ", SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=" + sig, "X-Amz-Date": date, "X-Amz-Security-Token": "not-a-token"}, "", CodeInvalidClientTokenID},
		{"presign without date", nil, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(scope) + "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig, CodeIncompleteSignature},
		{"presign wrong algorithm", nil, "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=" + url.QueryEscape(scope) + "&X-Amz-Date=" + date + "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig, CodeIncompleteSignature},
		{"presign signature twice", nil, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(scope) + "&X-Amz-Date=" + date + "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig + "&X-Amz-Signature=" + sig, CodeIncompleteSignature},
		{"presign negative expiry", nil, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(scope) + "&X-Amz-Date=" + date + "&X-Amz-Expires=-5&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig, CodeIncompleteSignature},
		{"presign no token", nil, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(scope) + "&X-Amz-Date=" + date + "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig, CodeMissingAuthenticationToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://ec2.us-east-1.amazonaws.com/?"+c.query, nil)
			for k, val := range c.header {
				r.Header.Set(k, val)
			}
			_, err := v.Verify(r)
			assertCode(t, err, c.want)
			if e := err.(*Error); strings.Contains(e.Message, sig) || e.Status == 0 {
				t.Errorf("message %q (status %d) must not echo the signature and must carry a status", e.Message, e.Status)
			}
		})
	}
	if _, err := v.Verify(nil); err == nil {
		t.Error("Verify(nil) succeeded")
	}
}

func TestSigV4ConfigDefaults(t *testing.T) {
	if _, err := NewSigV4Verifier(SigV4Config{}); err == nil {
		t.Error("verifier without issuer accepted")
	}
	if _, err := NewSigV4Verifier(SigV4Config{Issuer: newTestIssuer(t, testKey(1), nil), MaxSkew: -1}); err == nil {
		t.Error("negative skew accepted")
	}
	v := newTestVerifier(t, nil)
	if v.cfg.MaxSkew != 5*time.Minute || v.cfg.MaxBufferedBody != 8<<20 || v.cfg.Now == nil {
		t.Errorf("defaults = %+v", v.cfg)
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "//": "/", "/./": "/", "/example/..": "/", "/a/b/../c": "/a/c", "/a/b/..": "/a",
		"//example//": "/example/", "/./example": "/example", "/a/.b/": "/a/.b/", "/a%2F../b": "/a%2F../b",
	} {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}
