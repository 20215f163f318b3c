package authn

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	miniosigner "github.com/minio/minio-go/v7/pkg/signer"

	"github.com/airlockhq/airlock/internal/sigv4"
)

// minioHasher is the SHA-256 minio-go's streaming signer asks for.
type minioHasher struct{ hash.Hash }

func (minioHasher) Close() {}

// chunkServer verifies the request and then reads its chunk-signed body through a
// ChunkResigner seeded from the verifier's result, as the proxy does; it answers "OK <payload
// hash> <bytes read>", or the error code.
func chunkServer(t *testing.T, v *SigV4Verifier) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		var e *Error
		if errors.As(err, &e) {
			w.WriteHeader(e.Status)
			io.WriteString(w, e.Code)
			return
		}
		if err != nil || res.Chunks == nil {
			http.Error(w, "no chunk chain", 500)
			return
		}
		upstream, _ := sigv4.NewChunkChain(make([]byte, 32), "20260101T000000Z", "us-east-1", "s3", make([]byte, 32))
		decoded, _ := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		n, err := io.Copy(io.Discard, sigv4.NewChunkResigner(r.Body, res.Chunks, upstream, decoded,
			res.PayloadHash == sigv4.StreamingSignedPayloadTrailer))
		var ce *sigv4.ChunkError
		if errors.As(err, &ce) {
			w.WriteHeader(400)
			io.WriteString(w, ce.Code)
			return
		}
		io.WriteString(w, "OK "+res.PayloadHash+" "+strconv.FormatInt(n, 10))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSigV4ChunkSigned signs uploads with minio-go's streaming signer (an independent client
// that sends STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and checks that the verifier hands on the
// chain that the client's chunk signatures follow.
func TestSigV4ChunkSigned(t *testing.T) {
	rt := newRoundTrip(t, 0)
	srv := chunkServer(t, rt.v)
	data := bytes.Repeat([]byte("airlock chunk "), 20000) // 280 kB: five chunks of 64 KiB
	creds := rt.creds
	put := func(secret string, trailer bool, tamper func(*http.Request)) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/key", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if trailer {
			req.Trailer = http.Header{"x-amz-checksum-crc32": {"AAAAAA=="}}
		}
		req = miniosigner.StreamingSignV4(req, creds.AccessKeyID, secret, creds.SessionToken, "us-east-1",
			int64(len(data)), rt.clock.Now(), minioHasher{sha256.New()})
		if tamper != nil {
			tamper(req)
		}
		return send(t, req)
	}
	for _, trailer := range []bool{false, true} {
		status, body := put(creds.SecretAccessKey, trailer, nil)
		want := "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
		if trailer {
			want += "-TRAILER"
		}
		if status != 200 || !strings.HasPrefix(body, "OK "+want+" ") {
			t.Fatalf("trailer %v: got %d %q", trailer, status, body)
		}
	}
	// A chunk changed in transit: the request signature still verifies, the chunk does not.
	status, body := put(creds.SecretAccessKey, false, func(r *http.Request) {
		signed, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		signed[100000] ^= 1 // in the second chunk's data
		r.Body, r.GetBody = io.NopCloser(bytes.NewReader(signed)), nil
	})
	if status != 400 || body != sigv4.CodeSignatureDoesNotMatch {
		t.Fatalf("tampered chunk: got %d %q", status, body)
	}
	if status, body := put("wrong"+creds.SecretAccessKey, false, nil); status != 403 || body != CodeSignatureDoesNotMatch {
		t.Fatalf("wrong secret: got %d %q", status, body)
	}
}
