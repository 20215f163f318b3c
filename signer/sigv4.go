package signer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/airlockhq/airlock/internal/sigv4"
)

// awsSigner is shared by every call: its cache of derived signing keys is keyed by secret and
// scope, so any credentials may pass through it.
var awsSigner sigv4.Signer

// Payload hashes a client may declare in X-Amz-Content-Sha256.
const (
	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	StreamingSignedPayload          = sigv4.StreamingSignedPayload
	StreamingSignedPayloadTrailer   = sigv4.StreamingSignedPayloadTrailer
)

// ErrSignedStreamingPayload is returned by SignAWS for payloads in signed aws-chunked encoding
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD...): each chunk's signature chains from the client's
// request signature, so re-signing the headers alone would make every chunk invalid. Such a
// request is re-signed with SignAWSChunked; the SigV4a variants (ECDSA) with neither.
var ErrSignedStreamingPayload = errors.New("signed streaming payloads cannot be re-signed")

// emptySHA256 is the payload hash of a request without a body.
var emptySHA256 = func() string { h := sha256.Sum256(nil); return hex.EncodeToString(h[:]) }()

// clientAuthHeaders are the client's signature artifacts, removed before re-signing.
var clientAuthHeaders = []string{"Authorization", "X-Amz-Security-Token", "X-Amz-Date", "X-Amz-Content-Sha256"}

// presignQueryParams are the client's presigned-URL signature artifacts.
var presignQueryParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

// hopByHopHeaders apply to one connection only and are never forwarded (RFC 9110 7.6.1).
var hopByHopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// SignAWS replaces the client's SigV4 signature on r with one made from creds. r must already be
// addressed to the upstream (URL scheme and host set by the caller): r.Host is reset to r.URL.Host
// so that the signed host is the one the request is sent to. payloadHash is what the client
// declared in X-Amz-Content-Sha256 (a hex SHA-256, UNSIGNED-PAYLOAD or
// STREAMING-UNSIGNED-PAYLOAD-TRAILER) or the SHA-256 of the body when it declared none; "" is
// accepted only for a request without a body.
func SignAWS(ctx context.Context, r *http.Request, creds aws.Credentials, service, region, payloadHash string, now time.Time) error {
	if err := checkAWSTarget(r, service, region); err != nil {
		return err
	}
	if payloadHash == "" {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			return errors.New("sign aws request: payload hash required for a request with a body")
		}
		payloadHash = emptySHA256
	}
	if strings.HasPrefix(payloadHash, "STREAMING-") && payloadHash != StreamingUnsignedPayloadTrailer {
		return fmt.Errorf("sign aws request: %w (%s)", ErrSignedStreamingPayload, payloadHash)
	}
	prepareAWS(r, payloadHash)
	awsSigner.Sign(r, sigv4Credentials(creds), service, region, payloadHash, now)
	return nil
}

// SignAWSChunked is SignAWS for a body in signed aws-chunked encoding (payloadHash
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD or its -TRAILER variant). client is the chain the client's
// chunk signatures follow, from the verifier. The headers are re-signed with creds, and r.Body
// is replaced by a reader that checks every chunk against client and signs it anew from the
// new request signature, chunk by chunk as the body streams: a chunk that fails its check ends
// the body with a *sigv4.ChunkError, so the upstream never receives a complete upload that did
// not verify. The body's length does not change; it cannot be replayed (r.GetBody is nil).
func SignAWSChunked(ctx context.Context, r *http.Request, creds aws.Credentials, service, region, payloadHash string, client *sigv4.ChunkChain, now time.Time) error {
	if err := checkAWSTarget(r, service, region); err != nil {
		return err
	}
	if payloadHash != StreamingSignedPayload && payloadHash != StreamingSignedPayloadTrailer {
		return fmt.Errorf("sign aws request: %s is not a chunk-signed payload", payloadHash)
	}
	if client == nil || r.Body == nil || r.Body == http.NoBody {
		return errors.New("sign aws request: a chunk-signed payload needs the client's chain and a body")
	}
	decoded, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || decoded < 0 {
		return errors.New("sign aws request: a chunk-signed payload needs x-amz-decoded-content-length")
	}
	prepareAWS(r, payloadHash)
	upstream, err := awsSigner.SignChunked(r, sigv4Credentials(creds), service, region, payloadHash, now)
	if err != nil {
		return fmt.Errorf("sign aws request: %w", err)
	}
	r.Body = sigv4.NewChunkResigner(r.Body, client, upstream, decoded, payloadHash == StreamingSignedPayloadTrailer)
	r.GetBody = nil
	return nil
}

// checkAWSTarget refuses a request that is not yet addressed to an upstream, or a signing scope
// without its service or region.
func checkAWSTarget(r *http.Request, service, region string) error {
	if r.URL == nil || r.URL.Host == "" {
		return errors.New("sign aws request: no upstream host in the request URL")
	}
	if service == "" || region == "" {
		return errors.New("sign aws request: service and region are required")
	}
	return nil
}

// prepareAWS leaves on r only what is to be signed for the upstream.
func prepareAWS(r *http.Request, payloadHash string) {
	StripClientAuth(r)
	r.Host = r.URL.Host
	// S3 requires the header and every service accepts it; it also tells the upstream how to
	// check the body (hash, unsigned, unsigned-with-trailer or chunk-signed).
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
}

func sigv4Credentials(c aws.Credentials) sigv4.Credentials {
	return sigv4.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

// StripClientAuth removes every client signature artifact (headers and presigned query
// parameters) and every hop-by-hop header from r.
func StripClientAuth(r *http.Request) {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	// Headers named by Connection are hop-by-hop too.
	for _, v := range r.Header.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				r.Header.Del(name)
			}
		}
	}
	for _, h := range hopByHopHeaders {
		r.Header.Del(h)
	}
	for _, h := range clientAuthHeaders {
		r.Header.Del(h)
	}
	// Any other spelling of the same headers (a non-canonical key set directly in the map).
	for k := range r.Header {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		for _, h := range clientAuthHeaders {
			if ck == h {
				delete(r.Header, k)
			}
		}
	}
	if r.URL == nil || !mayHavePresignParams(r.URL.RawQuery) {
		return
	}
	q := r.URL.Query()
	changed := false
	for k := range q {
		for _, p := range presignQueryParams {
			if strings.EqualFold(k, p) {
				delete(q, k)
				changed = true
			}
		}
	}
	if changed {
		r.URL.RawQuery = q.Encode()
	}
}

// mayHavePresignParams reports whether a raw query could name a presigned-URL parameter: every
// one starts with X-Amz- (in any case), which a query can spell otherwise only with a
// percent-escape. Most calls have none, and are spared parsing and re-encoding their query.
func mayHavePresignParams(rawQuery string) bool {
	if strings.IndexByte(rawQuery, '%') >= 0 {
		return true
	}
	const prefix = "x-amz-"
	for i := 0; i+len(prefix) <= len(rawQuery); i++ {
		if strings.EqualFold(rawQuery[i:i+len(prefix)], prefix) {
			return true
		}
	}
	return false
}
