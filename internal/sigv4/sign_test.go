package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signCase is one request to sign with both signers.
type signCase struct {
	name    string
	service string
	method  string
	url     string // parsed as a client would; path and query may be overridden below
	rawPath string // when set: URL.RawPath, with URL.Path its decoding
	opaque  string
	header  [][2]string // added with Header.Add (canonical keys)
	rawKeys [][2]string // set directly in the map, key as written
	length  int64
	token   string
	payload string
}

const (
	hexPayload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	bodySHA    = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
)

var signTime = time.Date(2026, 11, 24, 10, 30, 5, 0, time.UTC)

func signCases() []signCase {
	return []signCase{
		{name: "s3 get object", service: "s3", method: "GET", url: "https://bucket.s3.eu-west-1.amazonaws.com/photos/2026/a.jpg", payload: "UNSIGNED-PAYLOAD", token: "session-token"},
		{name: "s3 key with space and unicode", service: "s3", method: "PUT", url: "https://s3.us-east-1.amazonaws.com/bucket/r%C3%A9sum%C3%A9%20final.pdf", rawPath: "/bucket/r%C3%A9sum%C3%A9%20final.pdf", length: 11, payload: bodySHA,
			header: [][2]string{{"Content-Type", "application/pdf"}, {"X-Amz-Meta-Owner", "  team   a  "}, {"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="}, {"X-Amz-Storage-Class", "STANDARD_IA"}}},
		{name: "s3 key with escaped slash and double slash", service: "s3", method: "GET", url: "https://s3.amazonaws.com/bucket//a%2Fb/./c/../d", rawPath: "/bucket//a%2Fb/./c/../d", payload: "UNSIGNED-PAYLOAD"},
		{name: "s3 list with prefix", service: "s3", method: "GET", url: "https://bucket.s3.amazonaws.com/?list-type=2&prefix=a%2Fb%20c&delimiter=%2F&max-keys=10", payload: hexPayload},
		{name: "s3 unsigned trailer", service: "s3", method: "PUT", url: "https://bucket.s3.amazonaws.com/k", length: 1024, payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			header: [][2]string{{"Content-Encoding", "aws-chunked"}, {"X-Amz-Decoded-Content-Length", "1000"}, {"X-Amz-Trailer", "x-amz-checksum-crc32"}}},
		{name: "s3 zero content length", service: "s3", method: "PUT", url: "https://bucket.s3.amazonaws.com/empty", payload: hexPayload, header: [][2]string{{"Content-Length", "0"}}},
		{name: "s3 subresource without value", service: "s3", method: "GET", url: "https://bucket.s3.amazonaws.com/k?acl&versionId=", payload: hexPayload},
		{name: "dynamodb get item", service: "dynamodb", method: "POST", url: "https://dynamodb.us-east-1.amazonaws.com/", length: 42, payload: bodySHA, token: "tok/with+chars==",
			header: [][2]string{{"Content-Type", "application/x-amz-json-1.0"}, {"X-Amz-Target", "DynamoDB_20120810.GetItem"}, {"User-Agent", "aws-sdk-go-v2/1.0"}, {"Accept-Encoding", "identity"}, {"Amz-Sdk-Invocation-Id", "1b2c"}, {"Amz-Sdk-Request", "attempt=1; max=3"}}},
		{name: "ec2 query with repeats", service: "ec2", method: "GET", url: "https://ec2.eu-west-1.amazonaws.com/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=web&Filter.1.Value.1=api&InstanceId.1=i-1", payload: hexPayload},
		{name: "ec2 post form", service: "ec2", method: "POST", url: "https://ec2.amazonaws.com/", length: 44, payload: bodySHA, header: [][2]string{{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}},
		{name: "sts with token", service: "sts", method: "POST", url: "https://sts.amazonaws.com/", length: 73, payload: bodySHA, token: "FwoGZXIvYXdzEJr//////////wEaDM",
			header: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}, {"X-Amzn-Trace-Id", "Root=1-5759e988"}, {"Expect", "100-continue"}}},
		{name: "lambda invoke escaped arn", service: "lambda", method: "POST", url: "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations",
			rawPath: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations", length: 2, payload: bodySHA,
			header: [][2]string{{"X-Amz-Invocation-Type", "RequestResponse"}, {"X-Amz-Client-Context", "e30="}}},
		{name: "lambda qualifier query", service: "lambda", method: "GET", url: "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/my-fn?Qualifier=%24LATEST", payload: hexPayload},
		{name: "apigateway path", service: "apigateway", method: "GET", url: "https://apigateway.eu-west-1.amazonaws.com/restapis/a1b2/stages/prod%20v2", rawPath: "/restapis/a1b2/stages/prod%20v2", payload: hexPayload},
		{name: "execute-api with dots and unicode", service: "execute-api", method: "GET", url: "https://abc.execute-api.us-east-1.amazonaws.com/prod/./users/../caf\u00e9/%E2%9C%93?q=caf%C3%A9&sort=-name&x=a+b&y=~t*&z=%2B", payload: hexPayload, token: "t"},
		{name: "execute-api spaces in path", service: "execute-api", method: "DELETE", url: "https://abc.execute-api.us-east-1.amazonaws.com/prod/a b/c", payload: hexPayload},
		{name: "query sort after encoding", service: "execute-api", method: "GET", url: "https://h.example/?a=a-b&a=a%2Fb&A=1&b=&b&%E2%9C%93=1&~=2&*=3", payload: hexPayload},
		{name: "query with malformed escape and semicolon", service: "execute-api", method: "GET", url: "https://h.example/p?ok=1&bad=%zz&x;y=2&=empty&&", payload: hexPayload},
		{name: "multi-value and spaced headers", service: "dynamodb", method: "POST", url: "https://dynamodb.us-east-1.amazonaws.com/", length: 5, payload: bodySHA,
			header: [][2]string{{"X-Custom", " one  two "}, {"X-Custom", "three"}, {"X-Tab", "\ta\t b  c\t"}, {"X-Empty", ""}}},
		{name: "mixed-case keys in the map", service: "dynamodb", method: "POST", url: "https://dynamodb.us-east-1.amazonaws.com/", payload: bodySHA,
			rawKeys: [][2]string{{"x-lower", "v1"}, {"X-UPPER", "v2"}, {"user-agent", "signed because not canonical"}, {"host", "ignored.example"}, {"content-length", "99"}}},
		{name: "same header in two spellings, same value", service: "dynamodb", method: "POST", url: "https://dynamodb.us-east-1.amazonaws.com/", payload: bodySHA,
			rawKeys: [][2]string{{"X-Dup", "same"}, {"x-dup", "same"}}},
		{name: "default https port dropped", service: "sts", method: "GET", url: "https://sts.amazonaws.com:443/?Action=GetCallerIdentity&Version=2011-06-15", payload: hexPayload},
		{name: "non-default port kept", service: "s3", method: "GET", url: "http://127.0.0.1:9000/bucket/key", payload: "UNSIGNED-PAYLOAD", token: "minio-token"},
		{name: "default http port dropped", service: "s3", method: "HEAD", url: "http://minio.local:80/bucket", payload: hexPayload},
		{name: "ipv6 host with default port", service: "ec2", method: "GET", url: "https://[::1]:443/?Action=DescribeRegions", payload: hexPayload},
		{name: "opaque path", service: "dynamodb", method: "GET", url: "https://example.com/", opaque: "//example.com/a%2Fb/c?ignored", payload: hexPayload},
		{name: "every ignored header", service: "sts", method: "POST", url: "https://sts.amazonaws.com/", payload: hexPayload,
			header: [][2]string{{"Authorization", "old"}, {"User-Agent", "ua"}, {"X-Amzn-Trace-Id", "t"}, {"Expect", "100-continue"}, {"Transfer-Encoding", "chunked"}, {"X-Amz-Date", "stale"}}},
	}
}

func (c signCase) request(t testing.TB) *http.Request {
	t.Helper()
	r, err := http.NewRequest(c.method, c.url, nil)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if c.rawPath != "" {
		p, err := url.PathUnescape(c.rawPath)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.Path, r.URL.RawPath = p, c.rawPath
	}
	r.URL.Opaque = c.opaque
	r.ContentLength = c.length
	for _, h := range c.header {
		r.Header.Add(h[0], h[1])
	}
	for _, h := range c.rawKeys {
		r.Header[h[0]] = append(r.Header[h[0]], h[1])
	}
	return r
}

var testCreds = Credentials{AccessKeyID: "ASIAEXAMPLE000000001", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}

// signBoth signs two copies of r, one with each signer (a fresh SDK signer: its key cache is
// keyed by key ID alone), and fails on any difference in what they leave on the request.
func signBoth(t *testing.T, s *Signer, r *http.Request, creds Credentials, service, region, payload string, now time.Time) {
	t.Helper()
	ours, sdk := r.Clone(context.Background()), r.Clone(context.Background())
	s.Sign(ours, creds, service, region, payload, now)
	err := v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken},
		sdk, payload, service, region, now,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = !EscapesPathTwice(service) })
	if err != nil {
		t.Fatalf("sdk signer: %v", err)
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if got, want := ours.Header.Values(h), sdk.Header.Values(h); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s:\n got %q\nwant %q", h, got, want)
		}
	}
	if ours.URL.RawQuery != sdk.URL.RawQuery {
		t.Errorf("RawQuery: got %q, want %q", ours.URL.RawQuery, sdk.URL.RawQuery)
	}
	if ours.Host != sdk.Host {
		t.Errorf("Host: got %q, want %q", ours.Host, sdk.Host)
	}
}

func TestSignMatchesSDK(t *testing.T) {
	var s Signer
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			creds := testCreds
			creds.SessionToken = c.token
			signBoth(t, &s, c.request(t), creds, c.service, "us-east-1", c.payload, signTime)
			// The same request without a token, in another region, a day later (another key).
			creds.SessionToken = ""
			signBoth(t, &s, c.request(t), creds, c.service, "eu-west-1", c.payload, signTime.Add(24*time.Hour))
		})
	}
}

// TestSignKeyedBySecret: one access key ID with two secrets signs two ways, where the SDK
// signer reused one cached key.
func TestSignKeyedBySecret(t *testing.T) {
	var s Signer
	c := signCases()[0]
	sign := func(secret string) string {
		r := c.request(t)
		s.Sign(r, Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: secret}, "s3", "us-east-1", c.payload, signTime)
		return r.Header.Get("Authorization")
	}
	a, b := sign("secret-one"), sign("secret-two")
	if a == b {
		t.Fatal("two secrets under one key ID gave one signature")
	}
	if sign("secret-one") != a {
		t.Fatal("signing is not reproducible")
	}
}

func TestSignSetsHeadersOnce(t *testing.T) {
	var s Signer
	r := signCases()[0].request(t)
	r.Header.Set("X-Amz-Security-Token", "stale-token")
	creds := testCreds
	creds.SessionToken = "fresh"
	s.Sign(r, creds, "s3", "us-east-1", "UNSIGNED-PAYLOAD", signTime)
	s.Sign(r, creds, "s3", "us-east-1", "UNSIGNED-PAYLOAD", signTime.Add(time.Second))
	if got := r.Header.Values("X-Amz-Security-Token"); len(got) != 1 || got[0] != "fresh" {
		t.Errorf("X-Amz-Security-Token = %q", got)
	}
	if got := r.Header.Values("X-Amz-Date"); len(got) != 1 || got[0] != "20261124T103006Z" {
		t.Errorf("X-Amz-Date = %q", got)
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || !strings.Contains(got[0], "SignedHeaders=host;x-amz-date;x-amz-security-token,") {
		t.Errorf("Authorization = %q", got)
	}
}

// FuzzSignMatchesSDK signs arbitrary paths, queries, headers and times with both signers.
func FuzzSignMatchesSDK(f *testing.F) {
	for i, c := range signCases() {
		u, _ := url.Parse(c.url)
		name, value := "X-Amz-Meta-Seed", "v"
		if len(c.header) > 0 {
			name, value = c.header[0][0], c.header[0][1]
		}
		f.Add(uint8(i), c.method, u.Host, u.EscapedPath(), u.RawQuery, name, value, c.token, c.payload, c.length, signTime.Unix())
	}
	f.Add(uint8(3), "GET", "h:443", "/%zz/a b/\xff", "a=%&&=b&;&a=%41+%2b", "x-AMZ-date", "\x00 \t", "", "", int64(-1), int64(0))
	services := []string{"s3", "dynamodb", "ec2", "sts", "lambda", "apigateway", "execute-api"}
	var s Signer
	f.Fuzz(func(t *testing.T, svc uint8, method, host, rawPath, rawQuery, name, value, token, payload string, length, unix int64) {
		service := services[int(svc)%len(services)]
		r := &http.Request{Method: method, Header: http.Header{}, ContentLength: length,
			URL: &url.URL{Scheme: []string{"https", "http"}[svc>>7], Host: host, Path: rawPath, RawQuery: rawQuery}}
		if p, err := url.PathUnescape(rawPath); err == nil {
			r.URL.Path, r.URL.RawPath = p, rawPath
		}
		r.Header.Set("Content-Type", "application/json")
		if name != "" {
			// The test and the signers set these; their spelling is the canonical one.
			for _, k := range []string{"Content-Type", "X-Amz-Date", "X-Amz-Security-Token"} {
				if strings.EqualFold(k, name) && k != name {
					t.Skip("one header in two spellings: the SDK joins their values in map order")
				}
			}
			r.Header[name] = append(r.Header[name], value)
		}
		now := time.Unix(unix%(1<<37), 0)
		signBoth(t, &s, r, Credentials{AccessKeyID: "AKIDFUZZ", SecretAccessKey: "secret", SessionToken: token}, service, "us-west-2", payload, now)
	})
}

func BenchmarkSign(b *testing.B) {
	c := signCases()[7] // dynamodb GetItem, a typical JSON call
	creds := testCreds
	creds.SessionToken = "session-token"
	reset := func(r *http.Request) {
		delete(r.Header, "Authorization")
		delete(r.Header, "X-Amz-Date")
		delete(r.Header, "X-Amz-Security-Token")
	}
	b.Run("airlock", func(b *testing.B) {
		var s Signer
		r := c.request(b)
		b.ReportAllocs()
		for b.Loop() {
			reset(r)
			s.Sign(r, creds, c.service, "us-east-1", c.payload, signTime)
		}
	})
	b.Run("sdk", func(b *testing.B) {
		s := v4.NewSigner()
		r := c.request(b)
		sdkCreds := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
		b.ReportAllocs()
		for b.Loop() {
			reset(r)
			if err := s.SignHTTP(context.Background(), sdkCreds, r, c.payload, c.service, "us-east-1", signTime); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestScratchHMACMatchesCryptoHMAC(t *testing.T) {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	key := SigningKey("secret", "20261124", "us-east-1", "s3")
	for _, msg := range []string{"", "x", strings.Repeat("string to sign\n", 40)} {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		if want, got := m.Sum(nil), sc.hmac(key, []byte(msg)); !hmac.Equal(got, want) {
			t.Errorf("hmac of %d bytes: got %x, want %x", len(msg), got, want)
		}
	}
}

// TestSignConcurrent signs from several goroutines with several secrets at once (run it with
// -race): pooled scratch and the shared key cache must not mix one signature into another.
func TestSignConcurrent(t *testing.T) {
	var s Signer
	c := signCases()[7]
	want := make([]string, 4)
	creds := func(i int) Credentials {
		return Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "secret-" + string(rune('a'+i))}
	}
	for i := range want {
		r := c.request(t)
		s.Sign(r, creds(i), c.service, "us-east-1", c.payload, signTime)
		want[i] = r.Header.Get("Authorization")
	}
	errs := make(chan string, 8*50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 50 {
				i := (g + n) % len(want)
				r := c.request(t)
				s.Sign(r, creds(i), c.service, "us-east-1", c.payload, signTime)
				if got := r.Header.Get("Authorization"); got != want[i] {
					errs <- got
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("concurrent signature differs: %s", got)
	}
}
