package authn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/internal/sigv4"
)

// payloadHash is the hash the signature covers: x-amz-content-sha256 when the client sent
// it (S3 requires it on header-signed requests), UNSIGNED-PAYLOAD for a presigned S3 URL,
// else the SHA-256 of the body, which then has to be read first (bounded by MaxBufferedBody,
// and before the signature is known good: there is no other way to compute it). hashed
// reports that last case, where the body needs no further check.
func (v *SigV4Verifier) payloadHash(r *http.Request, in *sigv4Input) (payload string, hashed bool, _ *Error) {
	declared := r.Header.Values("X-Amz-Content-Sha256")
	if len(declared) > 1 {
		return "", false, errIncomplete("Only one x-amz-content-sha256 header is allowed")
	}
	if len(declared) == 1 {
		d := declared[0]
		switch {
		case d == payloadUnsigned, d == payloadStreamingUnsigned, d == payloadStreamingSigned,
			d == payloadStreamingSignedTrailer, strings.HasPrefix(d, payloadStreamingECDSAPref):
			return d, false, nil
		case isHexSHA256(d):
			return d, false, nil
		}
		return "", false, refuse(sigv4Err(CodeContentSHA256Mismatch, http.StatusBadRequest,
			"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "+
				"STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] or the hex SHA-256 of the body"))
	}
	if in.service == "s3" {
		if in.presigned {
			return payloadUnsigned, false, nil
		}
		return "", false, errIncomplete("Missing required header for this request: x-amz-content-sha256")
	}
	body, e := v.bufferBody(r, true)
	if e != nil {
		return "", false, e
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), true, nil
}

// chunkChain checks what a chunk-signed upload needs besides its signature and returns the
// chain its chunks must follow: the client's signing key, date and scope, seeded by the
// request's signature. The chunks themselves are checked as they stream (sigv4.ChunkResigner).
func (v *SigV4Verifier) chunkChain(r *http.Request, in *sigv4Input, secret string) (*sigv4.ChunkChain, *Error) {
	if in.presigned {
		return nil, errIncomplete("A chunk-signed upload must be signed in the Authorization header, not a presigned URL")
	}
	decoded := r.Header.Values("X-Amz-Decoded-Content-Length")
	if len(decoded) != 1 {
		return nil, refuse(sigv4Err(CodeMissingContentLength, http.StatusLengthRequired,
			"A chunk-signed upload requires one x-amz-decoded-content-length header"))
	}
	if n, err := strconv.ParseInt(decoded[0], 10, 64); err != nil || n < 0 {
		return nil, refuse(sigv4Err(CodeInvalidArgument, http.StatusBadRequest,
			"x-amz-decoded-content-length must be the object's length in bytes"))
	}
	key := v.keys.Key(secret, in.scopeDate, in.region, in.service)
	chain, err := sigv4.NewChunkChain(key, in.amzDate, in.region, in.service, in.signature)
	if err != nil {
		return nil, errIncomplete("The request cannot start a chunk signature chain")
	}
	return chain, nil
}

func isHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// checkBody holds the body to a declared hex hash; see Verify for the two regimes.
func (v *SigV4Verifier) checkBody(r *http.Request, payload string) *Error {
	if !isHexSHA256(payload) {
		return nil // UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER
	}
	want, _ := hex.DecodeString(payload)
	body, e := v.bufferBody(r, false)
	switch {
	case e == nil:
		if sum := sha256.Sum256(body); !bytes.Equal(sum[:], want) {
			return refuse(errBodyMismatch)
		}
		return nil
	case e.Code == CodeRequestEntityTooLarge:
		// Too large to hold: check it while it streams. bufferBody left what it read in
		// front of the unread rest.
		r.Body = &hashingBody{rc: r.Body, h: sha256.New(), want: want}
		return nil
	default:
		return e
	}
}

// bufferedBody is a body the verifier has read into memory.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (bufferedBody) Close() error { return nil }

// BufferedBody returns the body the verifier already read into memory (to check its hash), so
// that later stages can look at it without reading or copying it again. ok is false when the
// body streams (too large to buffer, or not read). The bytes are shared: read them, never
// change them.
func BufferedBody(r *http.Request) (data []byte, ok bool) {
	if r.Body == http.NoBody {
		return nil, true
	}
	b, ok := r.Body.(bufferedBody)
	return b.data, ok
}

// bufferBody reads the whole body when it fits in MaxBufferedBody and puts it back as a
// replayable body (r.ContentLength and r.GetBody set, so the proxy can forward and retry it).
// When it does not fit it returns RequestEntityTooLarge, leaving r.Body as the bytes already
// read followed by the unread rest, so that nothing is lost.
func (v *SigV4Verifier) bufferBody(r *http.Request, mustFit bool) ([]byte, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		setBufferedBody(r, nil)
		return nil, nil
	}
	if b, ok := r.Body.(bufferedBody); ok {
		return b.data, nil // read already, to compute the payload hash
	}
	limit := v.cfg.MaxBufferedBody
	if r.ContentLength > limit {
		return nil, errTooLarge(mustFit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, refuse(sigv4Err(CodeIncompleteBody, http.StatusBadRequest,
			"The request body could not be read to the end"))
	}
	if int64(buf.Len()) > limit {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), r.Body}
		return nil, errTooLarge(mustFit)
	}
	_ = r.Body.Close()
	setBufferedBody(r, buf.Bytes())
	return buf.Bytes(), nil
}

func errTooLarge(mustFit bool) *Error {
	if mustFit {
		return refuse(sigv4Err(CodeRequestEntityTooLarge, http.StatusRequestEntityTooLarge,
			"The request body is too large for Airlock to hash: send an x-amz-content-sha256 header with the body's SHA-256"))
	}
	return refuse(sigv4Err(CodeRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "The request body is too large to buffer"))
}

func setBufferedBody(r *http.Request, data []byte) {
	r.ContentLength = int64(len(data))
	if len(data) == 0 {
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	r.Body = bufferedBody{bytes.NewReader(data), data}
	r.GetBody = func() (io.ReadCloser, error) { return bufferedBody{bytes.NewReader(data), data}, nil }
}

type readCloser struct {
	io.Reader
	io.Closer
}

// hashingBody hashes a body as it streams and fails the read that reaches EOF when the
// body does not match the declared hash, so that the proxy's copy to the upstream fails.
type hashingBody struct {
	rc   io.ReadCloser
	h    hash.Hash
	want []byte
	err  error
}

func (b *hashingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if !bytes.Equal(b.h.Sum(nil), b.want) {
			b.err = refuse(errBodyMismatch)
			return n, b.err
		}
		b.err = io.EOF
	}
	return n, err
}

func (b *hashingBody) Close() error { return b.rc.Close() }
