package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// The helpers below encode and decode aws-chunked bodies the plain way (strings, fmt, a fresh
// HMAC per signature), independently of the ChunkResigner under test.

type testSide struct {
	secret, amzDate, region, service string
	seed                             string // hex
}

var (
	clientSide   = testSide{"client-secret", "20260101T120000Z", "us-east-1", "s3", strings.Repeat("ab", 32)}
	upstreamSide = testSide{"upstream-secret", "20260101T120003Z", "us-east-1", "s3", strings.Repeat("cd", 32)}
)

func (s testSide) key() []byte { return SigningKey(s.secret, s.amzDate[:8], s.region, s.service) }

func (s testSide) chain(t testing.TB) *ChunkChain {
	t.Helper()
	seed, _ := hex.DecodeString(s.seed)
	c, err := NewChunkChain(s.key(), s.amzDate, s.region, s.service, seed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s testSide) sign(prev, algorithm, hashes string) string {
	scope := s.amzDate[:8] + "/" + s.region + "/" + s.service + "/aws4_request"
	m := hmac.New(sha256.New, s.key())
	m.Write([]byte(algorithm + "\n" + s.amzDate + "\n" + scope + "\n" + prev + "\n" + hashes))
	return hex.EncodeToString(m.Sum(nil))
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// encodeChunked signs data in chunks of chunkSize as a client does; trailer, when not empty,
// is the trailing header lines (each "name:value" plus its line end) of the -TRAILER variant.
func (s testSide) encodeChunked(data []byte, chunkSize int, trailer string) []byte {
	var b bytes.Buffer
	prev := s.seed
	for len(data) > 0 {
		n := min(chunkSize, len(data))
		prev = s.sign(prev, "AWS4-HMAC-SHA256-PAYLOAD", hexSum(nil)+"\n"+hexSum(data[:n]))
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n%s\r\n", n, prev, data[:n])
		data = data[n:]
	}
	prev = s.sign(prev, "AWS4-HMAC-SHA256-PAYLOAD", hexSum(nil)+"\n"+hexSum(nil))
	fmt.Fprintf(&b, "0;chunk-signature=%s\r\n", prev)
	if trailer == "" {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	b.WriteString(trailer)
	sig := s.sign(prev, "AWS4-HMAC-SHA256-TRAILER", hexSum([]byte(canonicalTrailer(trailer))))
	fmt.Fprintf(&b, "x-amz-trailer-signature:%s\r\n\r\n", sig)
	return b.Bytes()
}

func canonicalTrailer(trailer string) string {
	var c strings.Builder
	for line := range strings.SplitSeq(trailer, "\n") {
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			c.WriteString(line + "\n")
		}
	}
	return c.String()
}

// decodeChunked checks every signature of an aws-chunked body with s and returns the data and
// the trailer lines.
func (s testSide) decodeChunked(t *testing.T, body []byte, withTrailer bool) (data []byte, trailer string) {
	t.Helper()
	rest := string(body)
	prev := s.seed
	for {
		line, after, ok := strings.Cut(rest, "\r\n")
		if !ok {
			t.Fatalf("no chunk header in %q", rest)
		}
		sizeHex, sig, ok := strings.Cut(line, ";chunk-signature=")
		size, err := strconv.ParseInt(sizeHex, 16, 64)
		if !ok || err != nil {
			t.Fatalf("chunk header %q", line)
		}
		chunk := after[:size]
		want := s.sign(prev, "AWS4-HMAC-SHA256-PAYLOAD", hexSum(nil)+"\n"+hexSum([]byte(chunk)))
		if sig != want {
			t.Fatalf("chunk %d bytes after %d: signature %s, want %s", size, len(data), sig, want)
		}
		prev = sig
		data = append(data, chunk...)
		rest = after[size:]
		if size == 0 {
			break
		}
		if !strings.HasPrefix(rest, "\r\n") {
			t.Fatalf("no CRLF after a chunk")
		}
		rest = rest[2:]
	}
	if !withTrailer {
		if rest != "\r\n" {
			t.Fatalf("after the final chunk: %q, want CRLF", rest)
		}
		return data, ""
	}
	i := strings.Index(rest, "x-amz-trailer-signature:")
	if i < 0 || !strings.HasSuffix(rest, "\r\n\r\n") {
		t.Fatalf("trailer %q", rest)
	}
	trailer = rest[:i]
	sig := strings.TrimSuffix(rest[i+len("x-amz-trailer-signature:"):], "\r\n\r\n")
	if want := s.sign(prev, "AWS4-HMAC-SHA256-TRAILER", hexSum([]byte(canonicalTrailer(trailer)))); sig != want {
		t.Fatalf("trailer signature %s, want %s", sig, want)
	}
	return data, trailer
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func resign(t testing.TB, body []byte, declared int64, trailer bool) *ChunkResigner {
	return NewChunkResigner(io.NopCloser(bytes.NewReader(body)), clientSide.chain(t), upstreamSide.chain(t), declared, trailer)
}

func TestChunkResignerRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		chunk     int
		trailer   string
		readBytes bool // through iotest.OneByteReader on both sides
	}{
		{name: "several chunks", size: 3*65536 + 1000, chunk: 65536},
		{name: "one chunk", size: 100, chunk: 65536},
		{name: "empty object", size: 0, chunk: 65536},
		{name: "exact multiple", size: 4 * 8192, chunk: 8192},
		{name: "trailer CRLF (AWS SDKs)", size: 70000, chunk: 65536, trailer: "x-amz-checksum-crc32:AAAAAA==\r\n"},
		{name: "trailer LF (minio-go)", size: 70000, chunk: 65536, trailer: "x-amz-checksum-crc32c:sOO8/Q==\n\r\n"},
		{name: "two trailers", size: 10, chunk: 4, trailer: "x-amz-checksum-crc32:AAAAAA==\r\nx-amz-meta-a:b\r\n"},
		{name: "1-byte reads", size: 20000, chunk: 8192, readBytes: true},
		{name: "1-byte reads with trailer", size: 20000, chunk: 8192, trailer: "x-amz-checksum-crc32:AAAAAA==\r\n", readBytes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := testData(tc.size)
			in := clientSide.encodeChunked(data, tc.chunk, tc.trailer)
			var src io.Reader = bytes.NewReader(in)
			if tc.readBytes {
				src = iotest.OneByteReader(src)
			}
			r := NewChunkResigner(io.NopCloser(src), clientSide.chain(t), upstreamSide.chain(t), int64(tc.size), tc.trailer != "")
			var from io.Reader = r
			if tc.readBytes {
				from = iotest.OneByteReader(r)
			}
			out, err := io.ReadAll(from)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(in) {
				t.Fatalf("re-signed body is %d bytes, the client's %d", len(out), len(in))
			}
			if bytes.Equal(out, in) {
				t.Fatal("the body went out with the client's signatures")
			}
			got, trailer := upstreamSide.decodeChunked(t, out, tc.trailer != "")
			if !bytes.Equal(got, data) {
				t.Fatal("re-signed body carries other data")
			}
			if trailer != tc.trailer {
				t.Fatalf("trailer %q, want %q", trailer, tc.trailer)
			}
			// Read after the end keeps saying EOF.
			if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
				t.Fatalf("read after EOF: %d, %v", n, err)
			}
		})
	}
}

// TestChunkResignerIOTest runs the standard reader checks on the re-signed body.
func TestChunkResignerIOTest(t *testing.T) {
	data := testData(50000)
	in := clientSide.encodeChunked(data, 8192, "")
	want, err := io.ReadAll(resign(t, in, int64(len(data)), false))
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(resign(t, in, int64(len(data)), false), want); err != nil {
		t.Fatal(err)
	}
}

// TestChunkSignatureVectors checks the chain against AWS's published example ("Example: PUT
// Object" of the chunked upload page): 65 KiB of 'a' in a 64 KiB and a 1 KiB chunk.
func TestChunkSignatureVectors(t *testing.T) {
	key := SigningKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
	seed, _ := hex.DecodeString("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	c, err := NewChunkChain(key, "20130524T000000Z", "us-east-1", "s3", seed)
	if err != nil {
		t.Fatal(err)
	}
	s := newChunkSigner(c)
	for i, tc := range []struct {
		size int
		want string
	}{
		{65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"},
		{1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"},
		{0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"},
	} {
		sum := sha256.Sum256(bytes.Repeat([]byte("a"), tc.size))
		if got := s.next(chunkAlgorithm, &sum); hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("chunk %d: %x, want %s", i, got, tc.want)
		}
	}
}

func TestChunkResignerRefuses(t *testing.T) {
	data := testData(3 * 8192)
	good := clientSide.encodeChunked(data, 8192, "")
	goodTrailer := clientSide.encodeChunked(data, 8192, "x-amz-checksum-crc32:AAAAAA==\r\n")
	replace := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not in the body", old)
		}
		return bytes.Replace(bytes.Clone(b), []byte(old), []byte(new), 1)
	}
	firstSig := string(good[len("2000;chunk-signature=") : len("2000;chunk-signature=")+64])
	otherSecret := clientSide
	otherSecret.secret = "wrong"
	for _, tc := range []struct {
		name     string
		body     []byte
		declared int64
		trailer  bool
		code     string
	}{
		{"bad chunk signature", replace(good, firstSig, strings.Repeat("0", 64)), -1, false, CodeSignatureDoesNotMatch},
		{"tampered data", func() []byte { b := bytes.Clone(good); b[100] ^= 1; return b }(), -1, false, CodeSignatureDoesNotMatch},
		{"signed with another secret", otherSecret.encodeChunked(data, 8192, ""), -1, false, CodeSignatureDoesNotMatch},
		{"chunks reordered", append(append(append([]byte{}, good[8192+89:2*(8192+89)]...), good[:8192+89]...), good[2*(8192+89):]...), -1, false, CodeSignatureDoesNotMatch},
		{"truncated in a chunk", good[:5000], -1, false, CodeIncompleteBody},
		{"truncated before the final chunk", good[:3*(8192+89)], -1, false, CodeIncompleteBody},
		{"final CRLF missing", good[:len(good)-2], -1, false, CodeIncompleteBody},
		{"data after the final chunk", append(bytes.Clone(good), "x"...), -1, false, CodeIncompleteBody},
		{"longer than declared", good, int64(len(data) - 1), false, CodeIncompleteBody},
		{"shorter than declared", good, int64(len(data) + 1), false, CodeIncompleteBody},
		{"no CRLF after data", replace(good, "\r\n2000;", "\r\r2000;"), -1, false, CodeIncompleteBody},
		{"size not hex", replace(good, "2000;", "20g0;"), -1, false, CodeIncompleteBody},
		{"no signature", replace(good, ";chunk-signature=", ";chunk-sig="), -1, false, CodeIncompleteBody},
		{"short signature", replace(good, firstSig, firstSig[:63]), -1, false, CodeIncompleteBody},
		{"LF-only header", replace(good, firstSig+"\r\n", firstSig+"\n"), -1, false, CodeIncompleteBody},
		{"oversize chunk", []byte("1000001;chunk-signature=" + strings.Repeat("0", 64) + "\r\n"), -1, false, CodeInvalidRequest},
		{"endless header line", bytes.Repeat([]byte("1"), 10000), -1, false, CodeIncompleteBody},
		{"empty body", nil, -1, false, CodeIncompleteBody},
		{"trailer tampered", replace(goodTrailer, "AAAAAA==", "AAAAAB=="), -1, true, CodeSignatureDoesNotMatch},
		{"trailer signature missing", replace(goodTrailer, "x-amz-trailer-signature:", "x-amz-trailer-signatur:"), -1, true, CodeIncompleteBody},
		{"trailer variant without trailer", good, -1, true, CodeIncompleteBody},
		{"plain variant with trailer", goodTrailer, -1, false, CodeIncompleteBody},
		{"trailer line without colon", replace(goodTrailer, "x-amz-checksum-crc32:", "x-amz-checksum-crc32="), -1, true, CodeIncompleteBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			declared := tc.declared
			if declared < 0 {
				declared = int64(len(data))
			}
			out, err := io.ReadAll(resign(t, tc.body, declared, tc.trailer))
			var ce *ChunkError
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("err = %v, want a ChunkError %s", err, tc.code)
			}
			// Fail closed: what went out before the error never holds the final chunk, so
			// an upstream never sees a complete upload.
			if bytes.Contains(out, []byte("\r\n0;chunk-signature=")) || bytes.HasPrefix(out, []byte("0;")) {
				t.Fatal("the final chunk went out before the error")
			}
			// No signature of either side in the message.
			for _, s := range []string{firstSig, clientSide.seed, upstreamSide.seed} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error message holds a signature: %v", err)
				}
			}
		})
	}
}

// TestChunkResignerOnlySendsVerifiedChunks: a bad second chunk stops the stream after the first.
func TestChunkResignerOnlySendsVerifiedChunks(t *testing.T) {
	data := testData(3 * 8192)
	body := clientSide.encodeChunked(data, 8192, "")
	body[(8192+89)+100] ^= 1 // in the second chunk's data
	out, err := io.ReadAll(resign(t, body, int64(len(data)), false))
	if err == nil {
		t.Fatal("tampered second chunk accepted")
	}
	if len(out) != 8192+89 {
		t.Fatalf("%d bytes went out, want exactly the first chunk (%d)", len(out), 8192+89)
	}
}

func TestChunkChainRedacted(t *testing.T) {
	c := clientSide.chain(t)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %s", c, c, c), c.LogValue().String()} {
		if strings.Contains(s, hex.EncodeToString(c.key)) || strings.Contains(s, clientSide.seed) || strings.Contains(s, string(c.key)) {
			t.Fatalf("chain printed its key or seed: %s", s)
		}
	}
}

// FuzzChunkResigner: no input makes the parser panic, and whatever it accepts is a body of the
// same length whose every signature verifies with the upstream key.
func FuzzChunkResigner(f *testing.F) {
	data := testData(300)
	f.Add(clientSide.encodeChunked(data, 128, ""), int64(300), false)
	f.Add(clientSide.encodeChunked(data, 128, "x-amz-checksum-crc32:AAAAAA==\r\n"), int64(300), true)
	f.Add(clientSide.encodeChunked(nil, 128, ""), int64(0), false)
	f.Add([]byte("ffffffffffffffff;chunk-signature=\r\n"), int64(1), false)
	f.Add([]byte("0;chunk-signature="+strings.Repeat("a", 64)+"\r\nx:y\nx-amz-trailer-signature:\r\n\r\n"), int64(0), true)
	f.Fuzz(func(t *testing.T, body []byte, declared int64, trailer bool) {
		out, err := io.ReadAll(resign(t, body, declared, trailer))
		if err != nil {
			var ce *ChunkError
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(out) != len(body) {
			t.Fatalf("accepted body of %d bytes re-signed to %d", len(body), len(out))
		}
		upstreamSide.decodeChunked(t, out, trailer)
	})
}

// TestChunkResignerStreamsInBoundedMemory re-signs a 64 MiB upload and counts what the
// re-signing allocates: about one chunk, not the body.
func TestChunkResignerStreamsInBoundedMemory(t *testing.T) {
	const size = 64 << 20
	body := clientSide.encodeChunked(testData(size), 64<<10, "")
	r := resign(t, body, size, false)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := io.Copy(io.Discard, r)
	runtime.ReadMemStats(&after)
	if err != nil || n != int64(len(body)) {
		t.Fatalf("copied %d of %d bytes: %v", n, len(body), err)
	}
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("re-signing %d bytes allocated %d bytes", len(body), grew)
	if grew > 1<<20 {
		t.Fatalf("re-signing 64 MiB allocated %d bytes, want under 1 MiB", grew)
	}
}
