// Package sigv4 holds the pieces of AWS Signature Version 4 that Airlock's verifier (authn) and
// its re-signer (signer) share: URI encoding, the canonical query and header values, the string
// to sign and the derived signing key, plus the allocation-light signer for outgoing requests.
// What only one side needs (reading a path as the server received it, picking the headers to
// sign) stays with that side.
package sigv4

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
)

const (
	// Algorithm is the SigV4 algorithm name, in the Authorization header and the string to sign.
	Algorithm = "AWS4-HMAC-SHA256"
	// DateFormat is X-Amz-Date's layout; the credential scope's date is its first 8 bytes.
	DateFormat = "20060102T150405Z"
)

// EscapesPathTwice reports whether a service's canonical URI is the request's escaped path
// escaped once more. Every service but S3 does this; S3 signs the path as sent.
func EscapesPathTwice(service string) bool { return service != "s3" }

// URIEncode percent-encodes every byte outside RFC 3986's unreserved set with upper-case hex;
// '/' is kept unless encodeSlash. It returns s itself when nothing needs encoding.
func URIEncode(s string, encodeSlash bool) string {
	for i := 0; i < len(s); i++ {
		if !isUnreserved(s[i]) && (encodeSlash || s[i] != '/') {
			return string(AppendURIEncoded(make([]byte, 0, len(s)+16), s, encodeSlash))
		}
	}
	return s
}

// AppendURIEncoded appends URIEncode(s, encodeSlash) to b.
func AppendURIEncoded(b []byte, s string, encodeSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		b = appendURIEncodedByte(b, s[i], encodeSlash)
	}
	return b
}

func appendURIEncodedByte(b []byte, c byte, encodeSlash bool) []byte {
	const hexUpper = "0123456789ABCDEF"
	if isUnreserved(c) || (!encodeSlash && c == '/') {
		return append(b, c)
	}
	return append(b, '%', hexUpper[c>>4], hexUpper[c&15])
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// QueryReading says how a raw query is split into decoded name/value pairs before they are
// canonicalised. The verifier and the signer read a malformed query differently, each for a
// reason: the verifier must rebuild what a client signed, the signer must agree with the SDK.
type QueryReading int

const (
	// QueryAsSent keeps every non-empty pair; a name or value whose escapes do not decode is
	// kept literally. The verifier's reading: the signature decides.
	QueryAsSent QueryReading = iota
	// QueryAsNetURL reads the query as net/url.ParseQuery does, and with it aws-sdk-go-v2's
	// signer: a pair with a malformed escape or a ';' is dropped, and a query of more than
	// 10,000 pairs (ParseQuery's default limit) reads as empty.
	QueryAsNetURL
)

// maxQueryPairs is net/url's default limit on query parameters (GODEBUG urlmaxqueryparams).
const maxQueryPairs = 10000

// AppendCanonicalQuery appends the canonical query of rawQuery to b: each decoded name and
// value URI-encoded (a space as %20), then sorted by name and value, compared after encoding as
// SigV4 requires, and joined with '&'. A pair named omit (decoded), if not "", is left out: a
// presigned URL's own X-Amz-Signature. It allocates only when b must grow.
func AppendCanonicalQuery(b []byte, rawQuery string, reading QueryReading, omit string) []byte {
	if rawQuery == "" || reading == QueryAsNetURL && strings.Count(rawQuery, "&") >= maxQueryPairs {
		return b
	}
	// The encoded pairs are staged after b's end, sorted by their spans, written after the
	// stage in order, then moved down to where they belong.
	start := len(b)
	var spanBuf [32]querySpan
	spans := spanBuf[:0]
	for rest := rawQuery; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" || reading == QueryAsNetURL && strings.IndexByte(part, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		kOK, vOK := validEscapes(k), validEscapes(v)
		if reading == QueryAsNetURL && (!kOK || !vOK) {
			continue
		}
		s := querySpan{key: len(b)}
		b = appendQueryComponent(b, k, kOK)
		s.value = len(b)
		b = appendQueryComponent(b, v, vOK)
		s.end = len(b)
		if omit != "" && string(b[s.key:s.value]) == omit {
			// Encoding is injective and omit's names are unreserved: equal encoded, equal decoded.
			b = b[:s.key]
			continue
		}
		spans = append(spans, s)
	}
	if len(spans) == 0 {
		return b[:start]
	}
	stage := b
	slices.SortFunc(spans, func(x, y querySpan) int {
		if c := bytes.Compare(stage[x.key:x.value], stage[y.key:y.value]); c != 0 {
			return c
		}
		return bytes.Compare(stage[x.value:x.end], stage[y.value:y.end])
	})
	out := len(b)
	for i, s := range spans {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, b[s.key:s.value]...)
		b = append(b, '=')
		b = append(b, b[s.value:s.end]...)
	}
	n := copy(b[start:], b[out:])
	return b[:start+n]
}

type querySpan struct{ key, value, end int }

// validEscapes reports whether every '%' in s starts a two-digit hex escape, so that
// url.QueryUnescape would accept s.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// appendQueryComponent appends the encoding of s decoded as a query component ('+' is a
// space), or of s itself when its escapes are not valid.
func appendQueryComponent(b []byte, s string, decode bool) []byte {
	if !decode {
		return AppendURIEncoded(b, s, true)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		b = appendURIEncodedByte(b, c, true)
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// AppendHeaderValue appends a header value as SigV4 canonicalises it: trimmed of white space
// and with every run of spaces collapsed into one.
func AppendHeaderValue(b []byte, v string) []byte {
	return appendCollapsedSpaces(b, strings.TrimSpace(v))
}

// appendCollapsedSpaces appends v without leading or trailing spaces and with each run of
// spaces inside it collapsed into one; other white space is kept.
func appendCollapsedSpaces(b []byte, v string) []byte {
	v = strings.Trim(v, " ")
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if !space {
				b = append(b, ' ')
			}
			space = true
			continue
		}
		space = false
		b = append(b, v[i])
	}
	return b
}

// AppendStringToSign appends the string to sign for a canonical request whose SHA-256 is
// canonicalHash: algorithm, X-Amz-Date, credential scope and the hash in hex, one a line.
// scopeDate is the credential scope's day, amzDate's first 8 bytes.
func AppendStringToSign(b []byte, amzDate, scopeDate, region, service string, canonicalHash [32]byte) []byte {
	b = append(b, Algorithm...)
	b = append(b, '\n')
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = AppendScope(b, scopeDate, region, service)
	b = append(b, '\n')
	return hex.AppendEncode(b, canonicalHash[:])
}

// AppendScope appends the credential scope, date/region/service/aws4_request.
func AppendScope(b []byte, date, region, service string) []byte {
	b = append(b, date...)
	b = append(b, '/')
	b = append(b, region...)
	b = append(b, '/')
	b = append(b, service...)
	return append(b, "/aws4_request"...)
}
