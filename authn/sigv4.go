package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/internal/sigv4"
)

// The verifier computes the canonical request itself instead of reusing aws-sdk-go-v2's
// v4.Signer. The signer decides for itself which headers to sign (it skips User-Agent,
// hoists X-Amz-* into the query when presigning, adds Content-Length from the request) and
// mutates the request it signs; a verifier must instead rebuild exactly what the client
// claims to have signed, from the client's own SignedHeaders list and the request as it was
// received. The signer also caches derived signing keys by key ID, date, region and service
// but not by secret, which would make a wrong secret verify silently. The SDK's signer is
// used in the tests, as an independent client, together with AWS's published test vectors.

const (
	sigv4Algorithm    = sigv4.Algorithm
	sigv4aAlgorithm   = "AWS4-ECDSA-P256-SHA256"
	amzDateFormat     = sigv4.DateFormat
	maxPresignExpires = 7 * 24 * time.Hour

	payloadUnsigned          = "UNSIGNED-PAYLOAD"
	payloadStreamingUnsigned = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// Chunk-signed bodies: verified chunk by chunk as they stream (see SigV4Result.Chunks).
	payloadStreamingSigned        = sigv4.StreamingSignedPayload
	payloadStreamingSignedTrailer = sigv4.StreamingSignedPayloadTrailer
	payloadStreamingECDSAPref     = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	emptySHA256                   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// SigV4Config configures a SigV4Verifier.
type SigV4Config struct {
	// Issuer opens the session tokens Airlock issued and re-derives their secrets.
	Issuer *Issuer
	// MaxSkew is how far X-Amz-Date may be from now, either way. Default 5m.
	MaxSkew time.Duration
	// MaxBufferedBody is the largest body checked against its declared hash before Verify
	// returns. Default 8 MiB.
	MaxBufferedBody int64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// CheckAndSetDefaults fills defaults and refuses what is missing.
func (c *SigV4Config) CheckAndSetDefaults() error {
	if c.Issuer == nil {
		return errors.New("sigv4 verifier: issuer is required")
	}
	if c.MaxSkew < 0 || c.MaxBufferedBody < 0 {
		return errors.New("sigv4 verifier: max_skew and max_buffered_body must not be negative")
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = 5 * time.Minute
	}
	if c.MaxBufferedBody == 0 {
		c.MaxBufferedBody = 8 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// SigV4Verifier checks AWS Signature Version 4 requests signed with Airlock-issued
// credentials, in the Authorization header or as a presigned URL.
type SigV4Verifier struct {
	cfg SigV4Config
	// lookup resolves the key ID and session token a request presents to the identity behind
	// them and the secret they sign with. It is the issuer's unless a test substitutes a fixed
	// key pair to run AWS's published test vectors.
	lookup func(accessKeyID, sessionToken string) (Identity, string, *Error)

	// tokens remembers session tokens already opened (AES-GCM, JSON) and their derived key ID
	// and secret; keys remembers derived signing keys (four HMACs) by secret and scope. Both are
	// pure functions of their keys, bounded, and cleared when full; expiry is still checked on
	// every call.
	tokens boundedCache
	keys   sigv4.KeyCache
}

// boundedCache is a concurrent map that forgets everything when it reaches its limit: enough
// for the few thousand credentials in use at once, never a leak.
type boundedCache struct {
	m sync.Map
	n atomic.Int64
}

const verifierCacheEntries = 4096

func (c *boundedCache) load(k string) (any, bool) { return c.m.Load(k) }

func (c *boundedCache) store(k string, v any) {
	if c.n.Add(1) > verifierCacheEntries {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(k, v)
}

// openedToken is a session token the issuer has opened.
type openedToken struct {
	id          Identity
	secret      string
	accessKeyID string
}

// NewSigV4Verifier checks the config and returns a verifier.
func NewSigV4Verifier(cfg SigV4Config) (*SigV4Verifier, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	v := &SigV4Verifier{cfg: cfg}
	v.lookup = v.issuerLookup
	return v, nil
}

// SigV4Result is what a verified request was signed as.
type SigV4Result struct {
	Identity    Identity
	AccessKeyID string
	Service     string
	Region      string
	// Date is the signing time (X-Amz-Date).
	Date time.Time
	// PayloadHash is the payload hash the signature covers: a hex SHA-256, UNSIGNED-PAYLOAD,
	// STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]. The
	// proxy re-signs the upstream request with the same value, so the upstream checks the body
	// against it too.
	PayloadHash   string
	Presigned     bool
	SignedHeaders []string
	// Chunks is set for a chunk-signed body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]): the
	// chain the client's chunk signatures must follow, seeded by the request's signature. The
	// body itself is not read by Verify; the signer checks every chunk against this chain while
	// it re-signs the body for the upstream. It holds the derived signing key and never prints.
	Chunks *sigv4.ChunkChain
}

// sigv4Input is the signature's parameters, from the Authorization header or the query.
type sigv4Input struct {
	presigned     bool
	accessKeyID   string
	scopeDate     string
	region        string
	service       string
	signedHeaders []string
	signedList    string // as sent; it is part of the canonical request
	signature     []byte // sigBuf[:], once decoded
	sigBuf        [sha256.Size]byte
	amzDate       string
	date          time.Time
	expires       time.Duration // presigned only; 0 when absent
	token         string
}

// Verify checks r's SigV4 signature and returns who signed it. Call it before anything
// rewrites the request: the canonical request is built from the request as received.
//
// A body whose declared hash is a hex SHA-256 is checked against it: up to MaxBufferedBody
// it is read and checked before Verify returns, and r.Body is replaced by the buffered bytes.
// A larger body is wrapped in a reader that hashes while it streams and fails at EOF on a
// mismatch; by then part of it may have reached the upstream, which is safe because the proxy
// re-signs the upstream request with the same declared hash and the upstream refuses the body
// as well. Any refusal is an *Error.
func (v *SigV4Verifier) Verify(r *http.Request) (*SigV4Result, error) {
	if r == nil || r.URL == nil {
		return nil, refuse(errNoAuthentication)
	}
	query := parseRawQuery(r.URL.RawQuery)
	in, e := parseSigV4(r, query)
	if e != nil {
		return nil, e
	}
	now := v.cfg.Now()
	if e := v.checkTime(in, now); e != nil {
		return nil, e
	}
	if e := checkSignedHeaders(r, in); e != nil {
		return nil, e
	}
	id, secret, e := v.lookup(in.accessKeyID, in.token)
	if e != nil {
		return nil, e
	}
	if !id.ExpiresAt.IsZero() && !now.Before(id.ExpiresAt) {
		return nil, refuse(errExpiredToken)
	}

	payload, hashed, e := v.payloadHash(r, in)
	if e != nil {
		return nil, e
	}
	if e := v.verifySignature(r, in, payload, secret); e != nil {
		return nil, e
	}
	// Only now, with the signature known good, is the body worth reading.
	var chunks *sigv4.ChunkChain
	switch {
	case strings.HasPrefix(payload, payloadStreamingECDSAPref):
		return nil, refuse(errChunkSigned)
	case payload == payloadStreamingSigned || payload == payloadStreamingSignedTrailer:
		if chunks, e = v.chunkChain(r, in, secret); e != nil {
			return nil, e
		}
	case !hashed:
		if e := v.checkBody(r, payload); e != nil {
			return nil, e
		}
	}
	return &SigV4Result{
		Identity:      id,
		AccessKeyID:   in.accessKeyID,
		Service:       in.service,
		Region:        in.region,
		Date:          in.date,
		PayloadHash:   payload,
		Presigned:     in.presigned,
		SignedHeaders: in.signedHeaders,
		Chunks:        chunks,
	}, nil
}

// issuerLookup is the production lookup: the session token must be one this Airlock issued,
// unexpired, and the access key ID in the signature must be the one derived from it.
func (v *SigV4Verifier) issuerLookup(accessKeyID, token string) (Identity, string, *Error) {
	if token == "" {
		return Identity{}, "", refuse(errNoSessionToken)
	}
	if t, ok := v.tokens.load(token); ok {
		t := t.(*openedToken)
		// What VerifySessionToken would check again: expiry (by the issuer's clock) and the key ID.
		if !v.cfg.Issuer.now().Before(t.id.ExpiresAt) {
			return Identity{}, "", refuse(errExpiredToken)
		}
		if !hmac.Equal([]byte(t.accessKeyID), []byte(accessKeyID)) {
			return Identity{}, "", refuse(errInvalidToken)
		}
		return t.id, t.secret, nil
	}
	id, secret, err := v.cfg.Issuer.VerifySessionToken(token)
	switch {
	case errors.Is(err, ErrCredentialExpired):
		return Identity{}, "", refuse(errExpiredToken)
	case err != nil:
		return Identity{}, "", refuse(errInvalidToken)
	}
	keyID := v.cfg.Issuer.accessKeyID(token)
	if !hmac.Equal([]byte(keyID), []byte(accessKeyID)) {
		return Identity{}, "", refuse(errInvalidToken)
	}
	v.tokens.store(token, &openedToken{id: id, secret: secret, accessKeyID: keyID})
	return id, secret, nil
}

// parseSigV4 finds the signature's parameters in the Authorization header or the query.
func parseSigV4(r *http.Request, query []queryParam) (*sigv4Input, *Error) {
	auths := r.Header.Values("Authorization")
	presigned := hasQueryAuth(query)
	switch {
	case len(auths) == 0 && !presigned && hasQuerySigV2(query):
		return nil, refuse(errSigV2)
	case len(auths) == 0 && !presigned:
		return nil, refuse(errNoAuthentication)
	case len(auths) > 0 && presigned:
		return nil, errIncomplete("Only one authentication mechanism is allowed: use the Authorization header or a presigned URL, not both")
	case len(auths) > 1:
		return nil, errIncomplete("Only one Authorization header is allowed")
	}
	in := &sigv4Input{presigned: presigned}
	var credential, signature string
	var e *Error
	if presigned {
		credential, signature, e = parsePresignQuery(in, query)
	} else {
		credential, signature, e = parseAuthorization(in, r)
	}
	if e != nil {
		return nil, e
	}
	if e := parseCredential(in, credential); e != nil {
		return nil, e
	}
	if e := parseSignedHeaders(in); e != nil {
		return nil, e
	}
	if len(signature) != 2*sha256.Size {
		return nil, errIncomplete("The signature must be 64 hexadecimal characters")
	}
	if _, err := hex.Decode(in.sigBuf[:], []byte(signature)); err != nil {
		return nil, errIncomplete("The signature must be 64 hexadecimal characters")
	}
	in.signature = in.sigBuf[:]
	date, err := time.Parse(amzDateFormat, in.amzDate)
	if err != nil || len(in.amzDate) != len(amzDateFormat) {
		return nil, errIncomplete("X-Amz-Date must be in ISO 8601 basic format, e.g. 20150830T123600Z")
	}
	in.date = date
	if in.scopeDate != in.amzDate[:8] {
		return nil, errSignatureMismatch("The credential is scoped to %s, but X-Amz-Date is on %s: they must be the same day", in.scopeDate, in.amzDate[:8])
	}
	// The session token may travel in the header even for a presigned URL; never two of them.
	headerToken := r.Header.Values("X-Amz-Security-Token")
	if len(headerToken) > 1 || (len(headerToken) == 1 && in.token != "" && headerToken[0] != in.token) {
		return nil, errIncomplete("Only one X-Amz-Security-Token is allowed")
	}
	if len(headerToken) == 1 {
		in.token = headerToken[0]
	}
	return in, nil
}

func hasQueryAuth(query []queryParam) bool {
	for _, p := range query {
		switch p.key {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature":
			return true
		}
	}
	return false
}

// hasQuerySigV2 recognises a Signature Version 2 presigned URL, to say why it is refused.
func hasQuerySigV2(query []queryParam) bool {
	var keyID, sig bool
	for _, p := range query {
		keyID = keyID || p.key == "AWSAccessKeyId"
		sig = sig || p.key == "Signature"
	}
	return keyID && sig
}

func parseAuthorization(in *sigv4Input, r *http.Request) (credential, signature string, _ *Error) {
	algorithm, rest, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	switch algorithm {
	case sigv4Algorithm:
	case sigv4aAlgorithm:
		return "", "", refuse(errSigV4a)
	case "AWS":
		return "", "", refuse(errSigV2)
	default:
		return "", "", errIncomplete("The Authorization header must use AWS Signature Version 4 (AWS4-HMAC-SHA256)")
	}
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		var i int
		switch k {
		case "Credential":
			credential, i = val, 0
		case "SignedHeaders":
			in.signedList, i = val, 1
		case "Signature":
			signature, i = val, 2
		default:
			continue
		}
		if seen[i] {
			return "", "", errIncomplete("The Authorization header names %s more than once", k)
		}
		seen[i] = true
	}
	for i, name := range [...]string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return "", "", errIncomplete("The Authorization header requires a '%s' parameter", name)
		}
	}
	dates := r.Header.Values("X-Amz-Date")
	if len(dates) != 1 {
		return "", "", errIncomplete("The request requires exactly one X-Amz-Date header")
	}
	in.amzDate = dates[0]
	return credential, signature, nil
}

func parsePresignQuery(in *sigv4Input, query []queryParam) (credential, signature string, _ *Error) {
	var algorithm, expires string
	fields := []struct {
		name     string
		dst      *string
		required bool
	}{
		{"X-Amz-Algorithm", &algorithm, true},
		{"X-Amz-Credential", &credential, true},
		{"X-Amz-Date", &in.amzDate, true},
		{"X-Amz-SignedHeaders", &in.signedList, true},
		{"X-Amz-Signature", &signature, true},
		{"X-Amz-Expires", &expires, false},
		{"X-Amz-Security-Token", &in.token, false},
	}
	for _, f := range fields {
		n := 0
		for _, p := range query {
			if p.key == f.name {
				*f.dst = p.value
				n++
			}
		}
		if n > 1 {
			return "", "", errIncomplete("The query names %s more than once", f.name)
		}
		if n == 0 && f.required {
			return "", "", errIncomplete("A presigned URL requires the %s query parameter", f.name)
		}
	}
	switch algorithm {
	case sigv4Algorithm:
	case sigv4aAlgorithm:
		return "", "", refuse(errSigV4a)
	default:
		return "", "", errIncomplete("X-Amz-Algorithm must be AWS4-HMAC-SHA256")
	}
	if expires != "" {
		secs, err := strconv.ParseInt(expires, 10, 64)
		if err != nil || secs <= 0 || secs > int64(maxPresignExpires/time.Second) {
			return "", "", errIncomplete("X-Amz-Expires must be a number of seconds from 1 to 604800 (7 days)")
		}
		in.expires = time.Duration(secs) * time.Second
	}
	return credential, signature, nil
}

// parseCredential splits KEYID/YYYYMMDD/region/service/aws4_request.
func parseCredential(in *sigv4Input, credential string) *Error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || parts[2] == "" || parts[3] == "" || len(parts[1]) != 8 {
		return errIncomplete("The credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request")
	}
	in.accessKeyID, in.scopeDate, in.region, in.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// parseSignedHeaders checks the SignedHeaders list: lower-case names, no repeats, host
// among them. Order is kept as sent; a client that did not sort simply fails to match.
func parseSignedHeaders(in *sigv4Input) *Error {
	names := strings.Split(in.signedList, ";")
	hasHost := false
	for i, n := range names {
		if n == "" || !isLowerToken(n) {
			return errIncomplete("SignedHeaders must be lower-case header names separated by ';'")
		}
		if slices.Contains(names[:i], n) {
			return errIncomplete("SignedHeaders names %s more than once", n)
		}
		hasHost = hasHost || n == "host"
	}
	if !hasHost {
		return refuse(sigv4Err(CodeAccessDenied, http.StatusForbidden, "The host header must be signed"))
	}
	in.signedHeaders = names
	return nil
}

func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkTime applies the skew window and, for a presigned URL, its expiry.
func (v *SigV4Verifier) checkTime(in *sigv4Input, now time.Time) *Error {
	skewed := func() *Error { // formatted only when refused
		return refuse(sigv4Err(CodeRequestTimeTooSkewed, http.StatusForbidden,
			"The difference between the request time (%s) and the current time (%s) is too large: check the clock of the machine that signed it",
			in.date.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if in.date.After(now.Add(v.cfg.MaxSkew)) {
		return skewed()
	}
	if !in.presigned || in.expires == 0 {
		// Without X-Amz-Expires a presigned URL is held to the same window as a header.
		if in.date.Before(now.Add(-v.cfg.MaxSkew)) {
			if in.presigned {
				return refuse(errPresignExpired)
			}
			return skewed()
		}
		return nil
	}
	if !now.Before(in.date.Add(in.expires)) {
		return refuse(errPresignExpired)
	}
	return nil
}

// checkSignedHeaders refuses x-amz-* headers that the signature does not cover: they change
// what the call does (ACLs, encryption, copy sources) and must not be added in transit.
func checkSignedHeaders(r *http.Request, in *sigv4Input) *Error {
	var unsigned []string
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") {
			continue
		}
		if !slices.ContainsFunc(in.signedHeaders, func(s string) bool { return strings.EqualFold(s, k) }) {
			unsigned = append(unsigned, strings.ToLower(k))
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return refuse(sigv4Err(CodeAccessDenied, http.StatusForbidden,
			"There were headers present in the request which were not signed: %s", strings.Join(unsigned, ", ")))
	}
	return nil
}

// verifySignature rebuilds the canonical request and compares signatures in constant time.
// Services other than S3 normalise the path (remove . and .. segments, repeated slashes),
// and clients disagree on whether to: botocore normalises, aws-sdk-go-v2 does not. Both forms
// are tried when they differ; each is a function of the request as received, so accepting
// either lets no one sign anything they could not sign already.
func (v *SigV4Verifier) verifySignature(r *http.Request, in *sigv4Input, payload, secret string) *Error {
	raw := rawRequestPath(r)
	var uris []string
	if !sigv4.EscapesPathTwice(in.service) {
		uris = []string{encodeS3Path(raw)}
	} else {
		normalized := sigv4.URIEncode(normalizePath(raw), false)
		uris = []string{normalized}
		if as := sigv4.URIEncode(raw, false); as != normalized {
			uris = append(uris, as)
		}
	}

	// One buffer holds the canonical request (method, URI, then a tail that is the same for
	// every candidate URI), followed by room for the string to sign and the HMAC.
	const aws4Request = "/aws4_request"
	stsLen := len(sigv4Algorithm) + len(in.amzDate) + len(in.scopeDate) + len(in.region) +
		len(in.service) + len(aws4Request) + 5 + 2*sha256.Size
	buf := make([]byte, 0, 1024+len(r.Method)+len(uris[0])+len(payload)+stsLen+sha256.Size)
	buf = append(buf, r.Method...)
	buf = append(buf, '\n')
	buf = append(buf, uris[0]...)
	buf = append(buf, '\n')
	tailStart := len(buf)
	omit := "" // a presigned URL's own signature is left out
	if in.presigned {
		omit = "X-Amz-Signature"
	}
	buf = sigv4.AppendCanonicalQuery(buf, r.URL.RawQuery, sigv4.QueryAsSent, omit)
	buf = append(buf, '\n')
	buf = appendCanonicalHeaders(buf, r, in.signedHeaders)
	buf = append(buf, '\n')
	buf = append(buf, in.signedList...)
	buf = append(buf, '\n')
	buf = append(buf, payload...)

	key := v.keys.Key(secret, in.scopeDate, in.region, in.service)
	for i, uri := range uris {
		canonical := buf
		if i > 0 {
			tail := buf[tailStart:]
			canonical = make([]byte, 0, len(r.Method)+len(uri)+2+len(tail)+stsLen+sha256.Size)
			canonical = append(append(append(append(canonical, r.Method...), '\n'), uri...), '\n')
			canonical = append(canonical, tail...)
		}
		sum := sha256.Sum256(canonical)
		// The string to sign and the HMAC go after the canonical request, in the same array.
		canonical = slices.Grow(canonical, stsLen+sha256.Size)
		end := len(canonical)
		stringToSign := sigv4.AppendStringToSign(canonical[end:end], in.amzDate, in.scopeDate, in.region, in.service, sum)
		mac := hmac.New(sha256.New, key)
		mac.Write(stringToSign)
		if hmac.Equal(mac.Sum(stringToSign[len(stringToSign):]), in.signature) {
			return nil
		}
	}
	return refuse(errBadSignature)
}
