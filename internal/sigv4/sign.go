package sigv4

// This signer is written by hand rather than calling aws-sdk-go-v2's v4.Signer, for issue 8's
// budget of under 100 allocations per proxied call: SignHTTP alone cost about 47 (a parsed
// url.Values, a lower-cased copy of every header name, a map of signed headers, joined
// strings, hex strings, a fresh HMAC per derived key and per signature). This one builds the
// canonical request, the string to sign and the Authorization header in pooled buffers and
// allocates only the strings it leaves on the request. It must produce exactly what the SDK
// signer produces for the same input, header set and ignore rules included: the SDK signer stays
// the oracle in the tests (a differential test over many requests and a fuzz target). Unlike
// the SDK's, its key cache is keyed by secret, not by access key ID.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials sign a request.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when not empty, is sent (and signed) as X-Amz-Security-Token.
	SessionToken string
}

// Signer signs outgoing requests in the Authorization header, as aws-sdk-go-v2's
// v4.Signer.SignHTTP does, with the path escaping the SDK's service clients choose (see
// EscapesPathTwice). The zero value is ready; it is safe for concurrent use.
type Signer struct {
	keys KeyCache
}

// headerNeverSigned reports the header names the SDK signer leaves out, matched exactly as the
// SDK matches them (a key spelled otherwise in the map is signed).
func headerNeverSigned(key string) bool {
	switch key {
	case "Authorization", "User-Agent", "X-Amzn-Trace-Id", "Expect", "Transfer-Encoding":
		return true
	}
	return false
}

// Sign signs r, whose URL already points at the upstream, for service and region at now. It
// sets X-Amz-Date, X-Amz-Security-Token (when creds has a token) and Authorization, drops a
// default port from the host (r.Host) and rewrites r.URL.RawQuery into its canonical form, as
// the SDK signer does. payloadHash is the hex SHA-256 of the body or a literal such as
// UNSIGNED-PAYLOAD; Sign does not set X-Amz-Content-Sha256.
func (s *Signer) Sign(r *http.Request, creds Credentials, service, region, payloadHash string, now time.Time) {
	s.sign(r, creds, service, region, payloadHash, now)
}

// SignChunked signs r as Sign does, for a body in signed aws-chunked encoding (payloadHash
// StreamingSignedPayload or StreamingSignedPayloadTrailer), and returns the chain from which
// the body's chunks are to be signed: the new request signature is its seed.
func (s *Signer) SignChunked(r *http.Request, creds Credentials, service, region, payloadHash string, now time.Time) (*ChunkChain, error) {
	seed, amzDate := s.sign(r, creds, service, region, payloadHash, now)
	return NewChunkChain(s.keys.Key(creds.SecretAccessKey, amzDate[:8], region, service), amzDate, region, service, seed[:])
}

// sign is Sign, returning the signature and X-Amz-Date it set.
func (s *Signer) sign(r *http.Request, creds Credentials, service, region, payloadHash string, now time.Time) (sig [sha256.Size]byte, amzDate string) {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()

	if r.Header == nil {
		r.Header = http.Header{}
	}
	h := r.Header
	amzDate = string(now.UTC().AppendFormat(sc.date[:0], DateFormat))
	h["X-Amz-Date"] = append(h["X-Amz-Date"][:0], amzDate)
	if creds.SessionToken != "" {
		h["X-Amz-Security-Token"] = append(h["X-Amz-Security-Token"][:0], creds.SessionToken)
	}
	dropDefaultPort(r)
	host := r.URL.Host
	if r.Host != "" {
		host = r.Host
	}

	b := sc.buf[:0]
	b = append(b, r.Method...)
	b = append(b, '\n')
	if path := uriPath(r.URL); EscapesPathTwice(service) {
		b = AppendURIEncoded(b, path, false)
	} else {
		b = append(b, path...)
	}
	b = append(b, '\n')
	q := len(b)
	b = AppendCanonicalQuery(b, r.URL.RawQuery, QueryAsNetURL, "")
	if string(b[q:]) != r.URL.RawQuery {
		r.URL.RawQuery = string(b[q:])
	}
	b = append(b, '\n')
	b, signed := sc.appendCanonicalHeaders(b, h, host, r.ContentLength)
	b = append(b, '\n')
	b = append(b, signed...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	sum := sha256.Sum256(b)

	date := amzDate[:8]
	b = AppendStringToSign(b[:0], amzDate, date, region, service, sum)
	mac := sc.hmac(s.keys.Key(creds.SecretAccessKey, date, region, service), b)
	copy(sig[:], mac)

	b = append(b[:0], Algorithm+" Credential="...)
	b = append(b, creds.AccessKeyID...)
	b = append(b, '/')
	b = AppendScope(b, date, region, service)
	b = append(b, ", SignedHeaders="...)
	b = append(b, signed...)
	b = append(b, ", Signature="...)
	b = hex.AppendEncode(b, sig[:])
	h["Authorization"] = append(h["Authorization"][:0], string(b))
	sc.buf = b
	return sig, amzDate
}

// appendCanonicalHeaders appends "name:values\n" for each header the SDK signer would sign, in
// name order, and returns the signed-headers list (in sc, valid until sc is released). Host is
// always signed, Content-Length when the body length is positive, and every header in h but
// those headerNeverSigned and Host and Content-Length themselves. Keys in h that differ only in
// case are one header whose values are joined.
func (sc *scratch) appendCanonicalHeaders(b []byte, h http.Header, host string, length int64) ([]byte, []byte) {
	names := sc.names[:0]
	entries := sc.entries[:0]
	add := func(name, key string, kind headerKind) {
		e := headerEntry{start: len(names), key: key, kind: kind}
		if isASCII(name) {
			for i := 0; i < len(name); i++ {
				c := name[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				names = append(names, c)
			}
		} else {
			names = append(names, strings.ToLower(name)...)
		}
		e.end = len(names)
		entries = append(entries, e)
	}
	add("host", "", headerHost)
	if length > 0 {
		add("content-length", "", headerLength)
	}
	for k := range h {
		if headerNeverSigned(k) || strings.EqualFold(k, "content-length") {
			continue
		}
		add(k, k, headerValues)
		if e := entries[len(entries)-1]; string(names[e.start:e.end]) == "host" {
			entries = entries[:len(entries)-1] // the host signed is the request's, not a header's
		}
	}
	slices.SortFunc(entries, func(x, y headerEntry) int {
		if c := bytes.Compare(names[x.start:x.end], names[y.start:y.end]); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key) // one name in several spellings: a stable order
	})

	list := sc.list[:0]
	values := 0 // of the current name, over all its spellings
	for i, e := range entries {
		name := names[e.start:e.end]
		if i == 0 || !bytes.Equal(name, names[entries[i-1].start:entries[i-1].end]) {
			if i > 0 {
				b = append(b, '\n')
				list = append(list, ';')
			}
			list = append(list, name...)
			b = append(b, name...)
			b = append(b, ':')
			values = 0
		}
		switch e.kind {
		case headerHost:
			b = appendCollapsedSpaces(b, host)
		case headerLength:
			b = strconv.AppendInt(b, length, 10)
		default:
			for _, v := range h[e.key] {
				if values > 0 {
					b = append(b, ',')
				}
				b = AppendHeaderValue(b, v)
				values++
			}
		}
	}
	b = append(b, '\n')
	clear(entries) // no header names kept alive by the pool
	sc.names, sc.entries, sc.list = names, entries[:0], list
	return b, list
}

type headerKind uint8

const (
	headerValues headerKind = iota
	headerHost
	headerLength
)

type headerEntry struct {
	start, end int // the lower-case name, in scratch.names
	key        string
	kind       headerKind
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// uriPath is the escaped path the SDK signs: from an opaque "//host/path" URL (how SDK users
// pin a pre-escaped path) the part from the first '/' after the host, else URL.EscapedPath.
func uriPath(u *url.URL) string {
	p := ""
	if u.Opaque != "" {
		o, _, _ := strings.Cut(u.Opaque, "?")
		o = strings.TrimPrefix(o, "//")
		if i := strings.IndexByte(o, '/'); i >= 0 {
			p = o[i:]
		}
	} else {
		p = u.EscapedPath()
	}
	if p == "" {
		return "/"
	}
	return p
}

// dropDefaultPort sets r.Host to the host without its port when the port is the scheme's
// default, as the SDK signer does (including its habit of dropping an IPv6 literal's brackets).
func dropDefaultPort(r *http.Request) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	colon := strings.IndexByte(host, ':')
	if colon < 0 {
		return
	}
	port := host[colon+1:]
	if i := strings.Index(host, "]:"); i >= 0 {
		port = host[i+2:]
	} else if strings.Contains(host, "]") {
		return
	}
	if port == "" || !(strings.EqualFold(r.URL.Scheme, "http") && port == "80" || strings.EqualFold(r.URL.Scheme, "https") && port == "443") {
		return
	}
	if i := strings.IndexByte(host, ']'); i >= 0 {
		r.Host = strings.TrimPrefix(host[:i], "[")
		return
	}
	r.Host = host[:colon]
}

// scratch is one signature's working memory, pooled so that a signature allocates only the
// strings it leaves on the request.
type scratch struct {
	buf     []byte // canonical request, then string to sign, then Authorization
	names   []byte
	list    []byte
	entries []headerEntry
	date    [len(DateFormat)]byte
	mac     hash.Hash // SHA-256, reset for each use
	pad     [sha256.BlockSize]byte
	sum     [sha256.Size]byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{mac: sha256.New()} }}

// maxPooledBuffer keeps one request with enormous headers from pinning its buffers for good.
const maxPooledBuffer = 64 << 10

func (sc *scratch) release() {
	clear(sc.pad[:])
	if cap(sc.buf) > maxPooledBuffer || cap(sc.names) > maxPooledBuffer || cap(sc.list) > maxPooledBuffer || cap(sc.entries) > 1024 {
		return
	}
	scratchPool.Put(sc)
}

// hmac is HMAC-SHA256 (RFC 2104) over the pooled hash state, for a key no longer than a block
// (a derived signing key is 32 bytes). The result is in sc, valid until sc is released.
func (sc *scratch) hmac(key, msg []byte) []byte {
	const ipad, opad = 0x36, 0x5c
	clear(sc.pad[:])
	copy(sc.pad[:], key)
	for i := range sc.pad {
		sc.pad[i] ^= ipad
	}
	sc.mac.Reset()
	sc.mac.Write(sc.pad[:])
	sc.mac.Write(msg)
	inner := sc.mac.Sum(sc.sum[:0])
	for i := range sc.pad {
		sc.pad[i] ^= ipad ^ opad
	}
	sc.mac.Reset()
	sc.mac.Write(sc.pad[:])
	sc.mac.Write(inner)
	out := sc.mac.Sum(sc.sum[:0])
	sc.mac.Reset()
	return out
}
