package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/internal/sigv4"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/store/memory"
)

// TestMinIOMintAndResign mints through MinIO's STS with its root credentials as the base
// identity, then re-signs client requests with the minted credentials: MinIO verifies SigV4 and
// the session token, so a 200 proves both the mint and the signature.
func TestMinIOMintAndResign(t *testing.T) {
	m := testenv.StartMinIO(t)
	awsEnv(t)
	t.Setenv("TEST_BASE_KEY_ID", m.AccessKey)
	t.Setenv("TEST_BASE_SECRET", m.SecretKey)
	ctx := context.Background()
	b := newTestAWSBroker(t, memory.New(nil), testKey(t), nil)
	target := awsTarget(m.URL)
	target.Regions = []string{"us-east-1"}
	host := strings.TrimPrefix(m.URL, "http://")

	creds := mintWhenReady(t, b, target, MintRequest{SessionName: "alice@example.com"})
	if creds.AccessKeyID == m.AccessKey || creds.SessionToken == "" || time.Until(creds.Expires) < 10*time.Minute {
		t.Fatalf("not temporary credentials: key %s, expires %v", creds.AccessKeyID, creds.Expires)
	}

	send := func(r *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	signed := func(method, path, body, hash string) *http.Request {
		t.Helper()
		r := clientSigned(t, method, host, body)
		r.URL.Scheme, r.URL.Path, r.URL.RawQuery = "http", path, ""
		if err := SignAWS(ctx, r, creds, "s3", "us-east-1", hash, time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}

	if code, body := send(signed(http.MethodPut, "/airlock-test", "", UnsignedPayload)); code != 200 {
		t.Fatalf("CreateBucket: %d %s", code, body)
	}
	obj := "hello from airlock"
	sum := sha256.Sum256([]byte(obj))
	if code, body := send(signed(http.MethodPut, "/airlock-test/greeting.txt", obj, hex.EncodeToString(sum[:]))); code != 200 {
		t.Fatalf("PutObject (body hash): %d %s", code, body)
	}
	code, body := send(signed(http.MethodGet, "/", "", ""))
	if code != 200 || !strings.Contains(body, "<Name>airlock-test</Name>") {
		t.Fatalf("ListBuckets: %d %s", code, body)
	}
	if code, body := send(signed(http.MethodGet, "/airlock-test/greeting.txt", "", UnsignedPayload)); code != 200 || body != obj {
		t.Fatalf("GetObject: %d %q", code, body)
	}

	// A body that does not match the declared hash is refused.
	wrong := sha256.Sum256([]byte("something else"))
	if code, _ := send(signed(http.MethodPut, "/airlock-test/x.txt", obj, hex.EncodeToString(wrong[:]))); code == 200 {
		t.Error("MinIO accepted a body that does not match the signed hash")
	}
	// Tampering after signing is refused.
	tampered := signed(http.MethodGet, "/", "", "")
	auth := tampered.Header.Get("Authorization")
	last := auth[len(auth)-1]
	flip := byte('0')
	if last == '0' {
		flip = '1'
	}
	tampered.Header.Set("Authorization", auth[:len(auth)-1]+string(flip))
	if code, body := send(tampered); code != 403 || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Errorf("tampered signature: %d %s", code, body)
	}
	moved := signed(http.MethodGet, "/", "", "")
	moved.URL.Path = "/airlock-test"
	if code, _ := send(moved); code != 403 {
		t.Errorf("request changed after signing: %d, want 403", code)
	}
	noToken := signed(http.MethodGet, "/", "", "")
	noToken.Header.Del("X-Amz-Security-Token")
	if code, body := send(noToken); code/100 != 4 {
		t.Errorf("without the session token: %d %s, want a refusal", code, body)
	}
}

// TestMinIOSessionPolicyNarrows checks against a real STS that the session policy is sent and
// enforced: credentials minted for s3:ListAllMyBuckets cannot create a bucket.
func TestMinIOSessionPolicyNarrows(t *testing.T) {
	m := testenv.StartMinIO(t)
	awsEnv(t)
	t.Setenv("TEST_BASE_KEY_ID", m.AccessKey)
	t.Setenv("TEST_BASE_SECRET", m.SecretKey)
	ctx := context.Background()
	b := newTestAWSBroker(t, memory.New(nil), testKey(t), nil)
	target := awsTarget(m.URL)
	target.Regions = nil // us-east-1 by default
	creds := mintWhenReady(t, b, target, MintRequest{SessionName: "alice@example.com",
		Policy: SessionPolicy("s3:ListAllMyBuckets", "")})
	host := strings.TrimPrefix(m.URL, "http://")
	do := func(method, path string) int {
		r := clientSigned(t, method, host, "")
		r.URL.Scheme, r.URL.Path, r.URL.RawQuery = "http", path, ""
		if err := SignAWS(ctx, r, creds, "s3", "us-east-1", UnsignedPayload, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(http.MethodGet, "/"); code != 200 {
		t.Errorf("ListBuckets under its own session policy: %d", code)
	}
	if code := do(http.MethodPut, "/not-allowed"); code != 403 {
		t.Errorf("CreateBucket outside the session policy: %d, want 403", code)
	}
}

// mintWhenReady mints, retrying while MinIO's IAM is still starting: /minio/health/live (what
// testenv waits for) answers before the STS can ("Server not initialized").
func mintWhenReady(t *testing.T, b *AWSBroker, target *config.Target, m MintRequest) aws.Credentials {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		creds, err := b.Credentials(context.Background(), target, m)
		if err == nil {
			return creds
		}
		if !strings.Contains(err.Error(), "Server not initialized") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMinIOResignsChunkSignedUpload re-signs a body that minio-go chunk-signed for another
// secret (the client's, as Airlock issued it) and sends it to MinIO, which checks every chunk
// signature: a 200 and the same bytes read back prove the chain was re-signed from the new
// seed; a chunk tampered on the way is refused and leaves no object behind.
func TestMinIOResignsChunkSignedUpload(t *testing.T) {
	m := testenv.StartMinIO(t)
	creds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}
	host := strings.TrimPrefix(m.URL, "http://")
	send := func(r *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	plain := func(method, path string) *http.Request {
		r := clientSigned(t, method, host, "")
		r.URL.Scheme, r.URL.Path, r.URL.RawQuery = "http", path, ""
		if err := SignAWS(context.Background(), r, creds, "s3", "us-east-1", UnsignedPayload, time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if code, body := send(plain(http.MethodPut, "/airlock-chunked")); code != 200 {
		t.Fatalf("CreateBucket: %d %s", code, body)
	}

	data := make([]byte, 3<<20+12345) // 49 chunks of 64 KiB and a short one
	for i := range data {
		data[i] = byte(i * 31)
	}
	chunked := func(key string, trailer bool, tamperAt int) *http.Request {
		t.Helper()
		// The client signs for its own (Airlock-issued) secret and talks to Airlock's host.
		const clientKeyID, clientSecret = "ASIACLIENTEXAMPLE", "client-secret-issued-by-airlock"
		now := time.Now().UTC()
		r, err := http.NewRequest(http.MethodPut, "http://airlock.example/airlock-chunked/"+key, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if trailer {
			crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
			r.Trailer = http.Header{"x-amz-checksum-crc32c": {base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc))}}
			r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32C")
		}
		r = miniosigner.StreamingSignV4(r, clientKeyID, clientSecret, "", "us-east-1", int64(len(data)), now, sha256Hasher{sha256.New()})
		auth := r.Header.Get("Authorization")
		seed, err := hex.DecodeString(auth[strings.LastIndex(auth, "Signature=")+len("Signature="):])
		if err != nil {
			t.Fatal(err)
		}
		amzDate := r.Header.Get("X-Amz-Date")
		client, err := sigv4.NewChunkChain(sigv4.SigningKey(clientSecret, amzDate[:8], "us-east-1", "s3"), amzDate, "us-east-1", "s3", seed)
		if err != nil {
			t.Fatal(err)
		}
		if tamperAt > 0 {
			signed, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			signed[tamperAt] ^= 1
			r.Body, r.GetBody = io.NopCloser(bytes.NewReader(signed)), nil
		}
		r.URL.Host = host
		payload := r.Header.Get("X-Amz-Content-Sha256")
		if err := SignAWSChunked(context.Background(), r, creds, "s3", "us-east-1", payload, client, time.Now()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, trailer := range []bool{false, true} {
		key := fmt.Sprintf("object-trailer-%v", trailer)
		if code, body := send(chunked(key, trailer, 0)); code != 200 {
			t.Fatalf("chunk-signed PutObject (trailer %v): %d %s", trailer, code, body)
		}
		if code, body := send(plain(http.MethodGet, "/airlock-chunked/"+key)); code != 200 || body != string(data) {
			t.Fatalf("GetObject (trailer %v): %d, %d bytes, equal %v", trailer, code, len(body), body == string(data))
		}
	}

	// A bit flipped in the 20th chunk: the upstream request fails with the ChunkError and
	// MinIO keeps no object.
	r := chunked("tampered", false, 20<<16)
	resp, err := http.DefaultClient.Do(r)
	var ce *sigv4.ChunkError
	if err == nil {
		resp.Body.Close()
		t.Fatalf("tampered upload: %d, want the upload aborted", resp.StatusCode)
	}
	if !errors.As(err, &ce) || ce.Code != sigv4.CodeSignatureDoesNotMatch {
		t.Fatalf("tampered upload: %v, want a ChunkError SignatureDoesNotMatch", err)
	}
	if code, _ := send(plain(http.MethodHead, "/airlock-chunked/tampered")); code != 404 {
		t.Fatalf("HeadObject after the aborted upload: %d, want 404", code)
	}
}

// sha256Hasher is the SHA-256 minio-go's streaming signer asks for.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}
