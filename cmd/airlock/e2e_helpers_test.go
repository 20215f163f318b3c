package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// issueAWS asks the running Airlock for client credentials, as `airlock credentials aws` does.
func (e *e2eEnv) issueAWS(t *testing.T) aws.Credentials {
	t.Helper()
	body, err := requestCredentials(context.Background(), e.url, e.token, "aws", "local", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ AccessKeyId, SecretAccessKey, SessionToken, Expiration string }
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

type e2eResponse struct {
	StatusCode int
	body       string
}

type requestOption func(*http.Request)

func withHost(h string) requestOption { return func(r *http.Request) { r.Host = h } }

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// signedRequest signs an S3 request with aws-sdk-go-v2's signer (as the SDKs do), lets tamper
// change it after signing, and sends it to Airlock.
func (e *e2eEnv) signedRequest(t *testing.T, creds aws.Credentials, method, path string, body []byte, tamper func(*http.Request), opts ...requestOption) e2eResponse {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return e2eResponse{StatusCode: resp.StatusCode, body: string(b)}
}
