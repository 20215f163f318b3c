package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/internal/testenv"
)

// payloadRecorder remembers how each PUT minio-go sent was signed, to prove the uploads below
// really were chunk-signed (minio-go picks the scheme itself).
type payloadRecorder struct {
	mu   sync.Mutex
	puts []string // "x-amz-content-sha256 | content-encoding"
	next http.RoundTripper
}

func (p *payloadRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		p.mu.Lock()
		p.puts = append(p.puts, r.Header.Get("X-Amz-Content-Sha256")+" | "+r.Header.Get("Content-Encoding"))
		p.mu.Unlock()
	}
	return p.next.RoundTrip(r)
}

func (p *payloadRecorder) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.puts) == 0 {
		return ""
	}
	return p.puts[len(p.puts)-1]
}

// TestE2EChunkSignedUploadsWithMinioGo uploads through Airlock with minio-go, which over plain
// HTTP signs every 64 KiB chunk of a PutObject (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and the
// -TRAILER variant with a CRC32C trailer): Airlock checks each chunk with the client's issued
// secret and re-signs it for MinIO, which checks it again with the minted credentials.
func TestE2EChunkSignedUploadsWithMinioGo(t *testing.T) {
	testenv.Integration(t)
	m := testenv.StartMinIO(t)
	e := startAirlock(t, m, "", e2eConfig)
	creds := e.issueAWS(t)
	ctx := context.Background()
	endpoint := strings.TrimPrefix(e.url, "http://")
	rec := &payloadRecorder{next: http.DefaultTransport}
	client := func(trailers bool) *minio.Client {
		c, err := minio.New(endpoint, &minio.Options{
			Creds:  miniocreds.NewStaticV4(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
			Secure: false, Region: "us-east-1", Transport: rec, TrailingHeaders: trailers, MaxRetries: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	viaAirlock := client(false)
	if err := viaAirlock.MakeBucket(ctx, "chunked", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket through Airlock: %v", err)
	}

	data := make([]byte, 5<<20+4321) // 81 chunks of 64 KiB and a short one
	for i := range data {
		data[i] = byte(i*131 + i>>12)
	}
	for _, tc := range []struct {
		name, key, payload string
		c                  *minio.Client
		opts               minio.PutObjectOptions
	}{
		{"chunk-signed", "plain.bin", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", viaAirlock, minio.PutObjectOptions{}},
		{"chunk-signed with a CRC32C trailer", "trailer.bin", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", client(true),
			minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := tc.c.PutObject(ctx, "chunked", tc.key, bytes.NewReader(data), int64(len(data)), tc.opts)
			if err != nil {
				t.Fatalf("PutObject through Airlock: %v", err)
			}
			if sent := rec.last(); sent != tc.payload+" | aws-chunked" {
				t.Fatalf("minio-go sent %q, want %q with Content-Encoding aws-chunked", sent, tc.payload)
			}
			if info.Size != int64(len(data)) {
				t.Fatalf("uploaded %d bytes, want %d", info.Size, len(data))
			}
			obj, err := viaAirlock.GetObject(ctx, "chunked", tc.key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back through Airlock: %d bytes, equal %v, err %v", len(got), bytes.Equal(got, data), err)
			}
			e.waitForForward(t, "s3:PutObject", "chunked/"+tc.key, 200)
		})
	}

	// Hand-built uploads whose chunk is changed after signing: refused, and MinIO keeps nothing.
	direct, err := minio.New(strings.TrimPrefix(m.URL, "http://"), &minio.Options{
		Creds: miniocreds.NewStaticV4(m.AccessKey, m.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The body is 80 chunks of 64 KiB, each framed in 90 bytes ("10000;chunk-signature=", 64 hex
	// digits, two CRLFs), then a chunk of 4321 bytes whose header is 87 bytes long.
	lastChunkData := int64(80*(65536+90) + 87)
	for _, tc := range []struct {
		name, key string
		at        int64 // the body offset whose byte is flipped
		mustSee   bool  // the client must get the S3 error (little of its body is left unread)
	}{
		{"last chunk", "tampered-last.bin", lastChunkData + 100, true},
		{"middle chunk", "tampered-middle.bin", 20 << 16, false},
	} {
		t.Run("tampered "+tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, e.url+"/chunked/"+tc.key, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			req = miniosigner.StreamingSignV4(req, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken,
				"us-east-1", int64(len(data)), time.Now().UTC(), minioHasher{sha256.New()})
			auth := req.Header.Get("Authorization")
			seed := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
			signed, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatal(err)
			}
			signed[tc.at] ^= 1
			req.Body, req.GetBody = io.NopCloser(bytes.NewReader(signed)), nil
			resp, err := http.DefaultClient.Do(req)
			switch {
			case err == nil:
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>SignatureDoesNotMatch</Code>") {
					t.Fatalf("tampered upload: %d %s, want 403 SignatureDoesNotMatch", resp.StatusCode, body)
				}
			case tc.mustSee:
				t.Fatalf("tampered upload: %v, want a 403 answer", err)
			default:
				t.Logf("tampered upload: the connection closed before the answer (%v)", err)
			}
			if _, err := direct.StatObject(ctx, "chunked", tc.key, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
				t.Fatalf("MinIO after the refused upload: %v, want NoSuchKey", err)
			}
			e.waitForForward(t, "s3:PutObject", "chunked/"+tc.key, 403)
			raw, err := os.ReadFile(e.auditFile)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), seed) {
				t.Fatal("the request signature is in the audit trail")
			}
		})
	}
}

// waitForForward waits for the forward event of action on a resource ending in suffix, which
// Airlock writes after the answer, and checks its upstream status.
func (e *e2eEnv) waitForForward(t *testing.T, action, suffix string, status int) {
	t.Helper()
	var found *audit.Event
	testenv.WaitFor(t, "forward event of "+suffix, 10*time.Second, func() error {
		for _, ev := range e.auditEvents() {
			if ev.Kind == audit.KindForward && ev.Action == action && strings.HasSuffix(ev.Resource, suffix) {
				found = &ev
				return nil
			}
		}
		return fmt.Errorf("no forward event yet")
	})
	if found.UpstreamStatus != status {
		t.Fatalf("forward event of %s: upstream_status %d, want %d", suffix, found.UpstreamStatus, status)
	}
}

// minioHasher is the SHA-256 minio-go's streaming signer asks for.
type minioHasher struct{ hash.Hash }

func (minioHasher) Close() {}
