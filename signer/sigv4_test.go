package signer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/airlockhq/airlock/internal/sigv4"
	"github.com/airlockhq/airlock/internal/testenv"
)

var testMinted = aws.Credentials{AccessKeyID: "ASIATESTMINTED000001", SecretAccessKey: "minted-secret", SessionToken: "minted-session-token"}

// clientSigned builds a request as a client signed it against Airlock, with every artifact the
// client may leave, then points it at the upstream the way the proxy does.
func clientSigned(t testing.TB, method, target string, body string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://airlock.example:8080/bucket/key?list-type=2&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIACLIENT%2F20261124%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261124T100000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef&x-amz-security-token=client-token&prefix=a%2Fb", rd)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIACLIENT/20261124/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=deadbeef")
	r.Header.Set("X-Amz-Security-Token", "client-token")
	r.Header.Set("X-Amz-Date", "20261124T100000Z")
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	r.Header.Set("Connection", "keep-alive, X-Hop")
	r.Header.Set("X-Hop", "1")
	r.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	r.Header.Set("Keep-Alive", "timeout=5")
	r.Header.Set("X-Amz-Meta-Owner", "team-a")
	r.RequestURI = ""
	u := *r.URL
	u.Scheme, u.Host = "https", target
	r.URL = &u
	return r
}

func TestSignAWSStripsClientArtifacts(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r := clientSigned(t, http.MethodGet, "s3.eu-west-1.amazonaws.com", "")
	if err := SignAWS(context.Background(), r, testMinted, "s3", "eu-west-1", UnsignedPayload, now); err != nil {
		t.Fatal(err)
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=ASIATESTMINTED000001/20261124/eu-west-1/s3/aws4_request,") ||
		strings.Contains(auth, "deadbeef") {
		t.Errorf("Authorization = %q", auth)
	}
	if got := r.Header.Values("X-Amz-Security-Token"); len(got) != 1 || got[0] != "minted-session-token" {
		t.Errorf("X-Amz-Security-Token = %q", got)
	}
	if got := r.Header.Get("X-Amz-Date"); got != "20261124T100000Z" {
		t.Errorf("X-Amz-Date = %q", got)
	}
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != UnsignedPayload {
		t.Errorf("X-Amz-Content-Sha256 = %q", got)
	}
	for _, h := range []string{"Connection", "X-Hop", "Proxy-Authorization", "Keep-Alive"} {
		if r.Header.Get(h) != "" {
			t.Errorf("hop-by-hop header %s forwarded", h)
		}
	}
	if r.Header.Get("X-Amz-Meta-Owner") != "team-a" {
		t.Error("an ordinary header was dropped")
	}
	if r.Host != "s3.eu-west-1.amazonaws.com" {
		t.Errorf("Host = %q, want the upstream", r.Host)
	}
	q := r.URL.Query()
	for k := range q {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			t.Errorf("presigned query parameter %s forwarded", k)
		}
	}
	if q.Get("list-type") != "2" || q.Get("prefix") != "a/b" {
		t.Errorf("query = %q", r.URL.RawQuery)
	}
	if !strings.Contains(auth, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-owner;x-amz-security-token,") {
		t.Errorf("signed headers: %q", auth)
	}

	// An independent signer (fresh, so no cached key) over the same canonical request agrees.
	check := r.Clone(context.Background())
	check.Header.Del("Authorization")
	if err := v4.NewSigner().SignHTTP(context.Background(), testMinted, check, UnsignedPayload, "s3", "eu-west-1", now); err != nil {
		t.Fatal(err)
	}
	if check.Header.Get("Authorization") != auth {
		t.Errorf("re-signing is not reproducible:\n%s\n%s", check.Header.Get("Authorization"), auth)
	}
}

func TestSignAWSPayloadHashes(t *testing.T) {
	now := time.Now()
	body := "Action=DescribeInstances&Version=2016-11-15"
	sum := sha256.Sum256([]byte(body))
	for _, tc := range []struct {
		name, body, hash, wantHeader, wantErr string
	}{
		{"empty body, no hash", "", "", emptySHA256, ""},
		{"body hash", body, hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:]), ""},
		{"unsigned", body, UnsignedPayload, UnsignedPayload, ""},
		{"unsigned trailer", body, StreamingUnsignedPayloadTrailer, StreamingUnsignedPayloadTrailer, ""},
		{"signed streaming", body, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", "signed streaming"},
		{"body without hash", body, "", "", "payload hash required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clientSigned(t, http.MethodPost, "ec2.us-east-1.amazonaws.com", tc.body)
			err := SignAWS(context.Background(), r, testMinted, "ec2", "us-east-1", tc.hash, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("X-Amz-Content-Sha256"); got != tc.wantHeader {
				t.Errorf("X-Amz-Content-Sha256 = %q, want %q", got, tc.wantHeader)
			}
		})
	}
}

func TestSignAWSRefusesUnaddressedRequests(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL.Host = ""
	if err := SignAWS(context.Background(), r, testMinted, "s3", "us-east-1", "", time.Now()); err == nil {
		t.Error("signed a request without an upstream host")
	}
	r = clientSigned(t, http.MethodGet, "s3.amazonaws.com", "")
	if err := SignAWS(context.Background(), r, testMinted, "", "us-east-1", "", time.Now()); err == nil {
		t.Error("signed without a service")
	}
}

func BenchmarkSignAWS(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r := clientSigned(b, http.MethodGet, "s3.eu-west-1.amazonaws.com", "")
		if err := SignAWS(context.Background(), r, testMinted, "s3", "eu-west-1", UnsignedPayload, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSignAWSPathEscapingPerService: S3 signs its path as sent, as the SDK's S3 client does; every
// other service signs the escaped path escaped again. A key with a space or an escaped slash
// would otherwise be refused by S3 as SignatureDoesNotMatch.
func TestSignAWSPathEscapingPerService(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ service, host, rawPath string }{
		{"s3", "s3.eu-west-1.amazonaws.com", "/bucket/reports/a%20b%2Bc%2Fd.csv"},
		{"lambda", "lambda.eu-west-1.amazonaws.com", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afn/invocations"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://airlock.example:8080"+tc.rawPath, nil)
			r.RequestURI = ""
			r.URL.Scheme, r.URL.Host = "https", tc.host
			if err := SignAWS(context.Background(), r, testMinted, tc.service, "eu-west-1", "", now); err != nil {
				t.Fatal(err)
			}
			want := r.Clone(context.Background())
			want.Header.Del("Authorization")
			if err := v4.NewSigner().SignHTTP(context.Background(), testMinted, want, emptySHA256, tc.service, "eu-west-1", now,
				func(o *v4.SignerOptions) { o.DisableURIPathEscaping = tc.service == "s3" }); err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("Authorization"); got != want.Header.Get("Authorization") {
				t.Errorf("Authorization:\n got %s\nwant %s", got, want.Header.Get("Authorization"))
			}
		})
	}
}

// TestMinIOResignsEscapedKeys re-signs S3 calls whose keys and query need escaping (space, '+',
// parentheses, an escaped '/', non-ASCII) and sends them to MinIO, which checks the signature over the path
// as sent: a 200 proves that the S3 path is not escaped a second time.
func TestMinIOResignsEscapedKeys(t *testing.T) {
	m := testenv.StartMinIO(t)
	creds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}
	host := strings.TrimPrefix(m.URL, "http://")
	send := func(method, path, query, body string) (int, string) {
		t.Helper()
		r := clientSigned(t, method, host, body)
		// Sent the way AWS SDKs send an S3 key: every byte outside the unreserved set but '/'
		// percent-encoded (Go alone would leave '+' as it is).
		r.URL.Scheme, r.URL.Path, r.URL.RawPath, r.URL.RawQuery = "http", path, sigv4.URIEncode(path, false), query
		hash := ""
		if body != "" {
			sum := sha256.Sum256([]byte(body))
			hash = hex.EncodeToString(sum[:])
		}
		if err := SignAWS(context.Background(), r, creds, "s3", "us-east-1", hash, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	if code, body := send(http.MethodPut, "/airlock-escapes", "", ""); code != 200 {
		t.Fatalf("CreateBucket: %d %s", code, body)
	}
	const key = "/airlock-escapes/q3 reports/r\u00e9sum\u00e9+final (v2).txt"
	if code, body := send(http.MethodPut, key, "", "contents"); code != 200 {
		t.Fatalf("PutObject %q: %d %s", key, code, body)
	}
	if code, body := send(http.MethodGet, key, "", ""); code != 200 || body != "contents" {
		t.Fatalf("GetObject %q: %d %q", key, code, body)
	}
	code, body := send(http.MethodGet, "/airlock-escapes", "prefix=q3+reports%2Fr%C3%A9&list-type=2", "")
	if code != 200 || !strings.Contains(body, "<Key>q3 reports/r\u00e9sum\u00e9+final (v2).txt</Key>") {
		t.Fatalf("ListObjectsV2 by prefix: %d %s", code, body)
	}
}
