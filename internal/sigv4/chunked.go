package sigv4

// Chunk-signed bodies (aws-chunked encoding with STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])
// are parsed, verified and re-signed here by hand: no maintained Go library re-signs an
// aws-chunked body. The SDKs and minio-go only produce one and S3-compatible servers only
// consume one, whereas a proxy has to do both at once, chunk by chunk, without holding the
// whole body: each chunk's signature chains from the one before it, starting at the request's
// own (seed) signature, so a request whose headers are re-signed needs every chunk re-signed
// too. The format is AWS's "Signature Calculations for the Authorization Header: Transferring
// Payload in Multiple Chunks (Chunked Upload)" and its trailing-headers variant.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
)

// Payload hashes of chunk-signed bodies.
const (
	StreamingSignedPayload        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedPayloadTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
)

// MaxChunkSize is the largest chunk a ChunkResigner accepts. Every chunk is held in memory
// once, between reading it and sending it on re-signed (its new signature goes before its
// data and depends on all of it); SDKs send 64 KiB to a few MiB.
const MaxChunkSize = 16 << 20

const (
	chunkAlgorithm   = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
	chunkSigExt      = ";chunk-signature="
	trailerSigName   = "x-amz-trailer-signature:"
	// maxChunkHeader bounds one framing line (a chunk header or a trailer line).
	maxChunkHeader = 4096
	// maxTrailer bounds the trailing headers altogether.
	maxTrailer = 16 << 10
)

var emptyHash = sha256.Sum256(nil)

// ChunkChain is where one side's chain of chunk signatures starts: the signing key, the
// request's X-Amz-Date and scope, and the seed signature (the request's own). It holds a
// derived signing key, so it never prints: its String and LogValue say only what it is.
type ChunkChain struct {
	key     []byte
	amzDate string
	scope   string
	seed    [sha256.Size]byte
}

// NewChunkChain describes a chain that starts at seed (a raw 32-byte signature), for a request
// signed at amzDate (20060102T150405Z) with the signing key of region and service on that day.
func NewChunkChain(key []byte, amzDate, region, service string, seed []byte) (*ChunkChain, error) {
	if len(key) != sha256.Size || len(seed) != sha256.Size || len(amzDate) != len(DateFormat) {
		return nil, errors.New("chunk chain: need a 32-byte key and seed and an X-Amz-Date")
	}
	c := &ChunkChain{key: bytes.Clone(key), amzDate: amzDate,
		scope: string(AppendScope(nil, amzDate[:8], region, service))}
	copy(c.seed[:], seed)
	return c, nil
}

func (*ChunkChain) String() string { return "sigv4.ChunkChain{redacted}" }

// LogValue keeps the key out of logs.
func (c *ChunkChain) LogValue() slog.Value { return slog.StringValue(c.String()) }

// chunkSigner walks a chain: each signature covers the one before it.
type chunkSigner struct {
	chain *ChunkChain
	prev  [sha256.Size]byte
	mac   hash.Hash
	sts   []byte
}

func newChunkSigner(c *ChunkChain) chunkSigner {
	return chunkSigner{chain: c, prev: c.seed, mac: hmac.New(sha256.New, c.key)}
}

// next signs the next link: a data chunk (algorithm chunkAlgorithm, with the empty hash before
// the chunk's) or the trailing headers (trailerAlgorithm). It returns the new signature.
func (s *chunkSigner) next(algorithm string, sum *[sha256.Size]byte) [sha256.Size]byte {
	b := append(s.sts[:0], algorithm...)
	b = append(b, '\n')
	b = append(b, s.chain.amzDate...)
	b = append(b, '\n')
	b = append(b, s.chain.scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, s.prev[:])
	b = append(b, '\n')
	if algorithm == chunkAlgorithm {
		b = hex.AppendEncode(b, emptyHash[:])
		b = append(b, '\n')
	}
	b = hex.AppendEncode(b, sum[:])
	s.sts = b
	s.mac.Reset()
	s.mac.Write(b)
	s.mac.Sum(s.prev[:0])
	return s.prev
}

// ChunkError is a chunk-signed body refused while it streams. Code is the S3 error code for
// the client (SignatureDoesNotMatch, IncompleteBody, InvalidRequest); the message never holds
// a signature or a key.
type ChunkError struct {
	Code    string
	Message string
	cause   error // a read error from the client, for the operator's log
}

func (e *ChunkError) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Message + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *ChunkError) Unwrap() error { return e.cause }

// S3 error codes of ChunkError.
const (
	CodeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	CodeIncompleteBody        = "IncompleteBody"
	CodeInvalidRequest        = "InvalidRequest"
)

func malformed(format string, args ...any) *ChunkError {
	return &ChunkError{Code: CodeIncompleteBody, Message: "malformed aws-chunked body: " + fmt.Sprintf(format, args...)}
}

// ChunkResigner reads a chunk-signed body, checks every chunk's signature (and the trailer's)
// against the client's chain, and yields the same bytes with every signature replaced by one
// of the upstream's chain. Chunk sizes and the signatures' length do not change, so neither
// does the body's length. A chunk goes out only once its client signature is verified, and the
// final chunk only once the decoded length matches and the body has ended, so an upstream
// reading from it never receives a complete upload that failed verification: the first bad
// chunk ends the stream with a *ChunkError instead.
type ChunkResigner struct {
	src      *bufio.Reader
	body     io.Closer
	client   chunkSigner
	upstream chunkSigner
	trailer  bool
	declared int64 // x-amz-decoded-content-length
	decoded  int64

	out  []byte // the current chunk, re-signed, as it goes out
	off  int
	last bool // out holds the final chunk
	err  error
}

// NewChunkResigner wraps body, which the client signed with the client chain, to be sent on
// signed with the upstream chain. decodedLength is the request's x-amz-decoded-content-length;
// trailer is true for STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.
func NewChunkResigner(body io.ReadCloser, client, upstream *ChunkChain, decodedLength int64, trailer bool) *ChunkResigner {
	return &ChunkResigner{src: bufio.NewReaderSize(body, maxChunkHeader), body: body,
		client: newChunkSigner(client), upstream: newChunkSigner(upstream),
		trailer: trailer, declared: decodedLength}
}

// Read yields the re-signed body.
func (r *ChunkResigner) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.err != nil {
			return 0, r.err
		}
		if r.last {
			r.err, r.out, r.off = io.EOF, nil, 0 // the buffer is the collector's now
			return 0, io.EOF
		}
		if err := r.nextChunk(); err != nil {
			r.err, r.out, r.off = err, nil, 0
			return 0, err
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// Close closes the client's body.
func (r *ChunkResigner) Close() error { return r.body.Close() }

// nextChunk reads, verifies and re-signs one chunk (with the trailer, for the final chunk of
// the trailer variant) into r.out.
func (r *ChunkResigner) nextChunk() error {
	line, err := r.readLine()
	if err != nil {
		return err
	}
	sizeText, sigText, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\r\n")), []byte(chunkSigExt))
	if !ok || len(line) < 2 || line[len(line)-2] != '\r' {
		return malformed("a chunk header must be SIZE;chunk-signature=SIGNATURE and end with CRLF")
	}
	size, ok := parseChunkSize(sizeText)
	if !ok {
		return malformed("the chunk size must be hexadecimal")
	}
	if size > MaxChunkSize {
		return &ChunkError{Code: CodeInvalidRequest, Message: fmt.Sprintf(
			"a chunk of %d bytes is larger than Airlock accepts (%d bytes); send smaller chunks", size, MaxChunkSize)}
	}
	var clientSig [sha256.Size]byte
	if len(sigText) != 2*sha256.Size {
		return malformed("a chunk signature must be 64 hexadecimal characters")
	}
	if _, err := hex.Decode(clientSig[:], sigText); err != nil {
		return malformed("a chunk signature must be 64 hexadecimal characters")
	}
	if r.decoded += size; r.decoded > r.declared {
		return &ChunkError{Code: CodeIncompleteBody, Message: fmt.Sprintf(
			"the chunks carry more than x-amz-decoded-content-length (%d bytes)", r.declared)}
	}

	// The outgoing header has the incoming one's length: the size as sent, a new signature.
	hdr := len(sizeText) + len(chunkSigExt) + 2*sha256.Size + 2
	need := hdr + int(size) + 2
	if cap(r.out) < need {
		r.out = make([]byte, need, max(need, 2*cap(r.out)))
	}
	out := r.out[:hdr]
	copy(out, sizeText)
	copy(out[len(sizeText):], chunkSigExt)
	copy(out[hdr-2:], "\r\n")
	sigAt := len(sizeText) + len(chunkSigExt)

	sum := emptyHash
	if size > 0 {
		out = out[:hdr+int(size)]
		if _, err := io.ReadFull(r.src, out[hdr:]); err != nil {
			return r.readFailed(err)
		}
		sum = sha256.Sum256(out[hdr:])
	}
	final := size == 0
	if !final || !r.trailer {
		if err := r.expectCRLF(); err != nil {
			return err
		}
		out = append(out, "\r\n"...)
	}
	if err := r.verify(chunkAlgorithm, &sum, &clientSig); err != nil {
		return err
	}
	up := r.upstream.next(chunkAlgorithm, &sum)
	hex.Encode(out[sigAt:], up[:])

	if final {
		if r.decoded != r.declared {
			return &ChunkError{Code: CodeIncompleteBody, Message: fmt.Sprintf(
				"the chunks carry %d bytes, x-amz-decoded-content-length says %d", r.decoded, r.declared)}
		}
		if r.trailer {
			if out, err = r.appendTrailer(out); err != nil {
				return err
			}
		}
		// Nothing may follow the final chunk.
		if _, err := r.src.Peek(1); err == nil {
			return malformed("data follows the final chunk")
		} else if !errors.Is(err, io.EOF) {
			return r.readFailed(err)
		}
		r.last = true
	}
	r.out, r.off = out, 0
	return nil
}

func (r *ChunkResigner) verify(algorithm string, sum, clientSig *[sha256.Size]byte) error {
	want := r.client.next(algorithm, sum)
	if !hmac.Equal(want[:], clientSig[:]) {
		what := "a chunk"
		if algorithm == trailerAlgorithm {
			what = "the trailing headers"
		}
		return &ChunkError{Code: CodeSignatureDoesNotMatch, Message: "the signature of " + what +
			" does not match: check the secret access key and signing method"}
	}
	return nil
}

// appendTrailer reads the trailing headers after the final chunk and their signature line and
// the empty line that ends the body, verifies the signature and appends them to out as they
// came, with the signature re-signed. Each header line is hashed as "name:value\n", however it
// ended (CRLF or LF); blank lines are not hashed.
func (r *ChunkResigner) appendTrailer(out []byte) ([]byte, error) {
	h := sha256.New()
	size := 0
	for {
		line, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if size += len(line); size > maxTrailer {
			return nil, malformed("the trailing headers are longer than %d bytes", maxTrailer)
		}
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if sig, ok := bytes.CutPrefix(content, []byte(trailerSigName)); ok {
			var clientSig [sha256.Size]byte
			if len(sig) != 2*sha256.Size || !bytes.HasSuffix(line, []byte("\r\n")) {
				return nil, malformed("the trailer signature must be 64 hexadecimal characters ending with CRLF")
			}
			if _, err := hex.Decode(clientSig[:], sig); err != nil {
				return nil, malformed("the trailer signature must be 64 hexadecimal characters ending with CRLF")
			}
			if err := r.expectCRLF(); err != nil {
				return nil, err
			}
			var sum [sha256.Size]byte
			h.Sum(sum[:0])
			if err := r.verify(trailerAlgorithm, &sum, &clientSig); err != nil {
				return nil, err
			}
			up := r.upstream.next(trailerAlgorithm, &sum)
			out = append(out, trailerSigName...)
			out = hex.AppendEncode(out, up[:])
			return append(out, "\r\n\r\n"...), nil
		}
		if len(content) > 0 {
			if i := bytes.IndexByte(content, ':'); i <= 0 {
				return nil, malformed("a trailing header must be NAME:VALUE")
			}
			h.Write(content)
			h.Write([]byte{'\n'})
		}
		out = append(out, line...)
	}
}

// readLine reads one framing line, LF included; it is valid until the next read.
func (r *ChunkResigner) readLine() ([]byte, error) {
	line, err := r.src.ReadSlice('\n')
	switch {
	case err == nil:
		return line, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, malformed("a framing line is longer than %d bytes", maxChunkHeader)
	}
	return nil, r.readFailed(err)
}

func (r *ChunkResigner) expectCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(r.src, crlf[:]); err != nil {
		return r.readFailed(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return malformed("a chunk's data must be followed by CRLF")
	}
	return nil
}

// readFailed is the error for a body that ended early or could not be read.
func (r *ChunkResigner) readFailed(err error) error {
	e := &ChunkError{Code: CodeIncompleteBody, Message: "the body ended before its final chunk"}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		e.Message, e.cause = "the body could not be read to its final chunk", err
	}
	return e
}

// parseChunkSize parses a chunk size: 1 to 16 hexadecimal digits.
func parseChunkSize(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		if !isHex(c) {
			return 0, false
		}
		n = n<<4 | uint64(unhex(c))
	}
	if n > 1<<62 {
		return 0, false
	}
	return int64(n), true
}
