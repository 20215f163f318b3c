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
