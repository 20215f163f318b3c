package authn

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/internal/sigv4"
)

// The SigV4 canonical request, built from a request as the server received it. The parts a
// signer shares (URI encoding, the canonical query, header values, the string to sign) are in
// internal/sigv4; what is the verifier's alone (the path as received, the client's choice of
// headers) is here.

// rawRequestPath is the path as the client sent it: the request line when this is a
// server-side request (so raw UTF-8 or spaces stay as sent), else the URL's escaped path.
func rawRequestPath(r *http.Request) string {
	p := ""
	switch {
	case r.RequestURI != "" && r.RequestURI != "*":
		p, _, _ = strings.Cut(r.RequestURI, "?")
		if !strings.HasPrefix(p, "/") {
			// Absolute form, from a client that treats Airlock as its HTTP proxy.
			if _, rest, ok := strings.Cut(p, "://"); ok {
				if i := strings.IndexByte(rest, '/'); i >= 0 {
					p = rest[i:]
				} else {
					p = ""
				}
			}
		}
	case r.URL.Opaque != "":
		// Opaque "//host/path" is how SDK users pin an already-escaped path.
		p = r.URL.Opaque
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				p = rest[i:]
			} else {
				p = ""
			}
		}
	default:
		p = r.URL.EscapedPath()
	}
	if p == "" {
		return "/"
	}
	return p
}

// normalizePath removes empty, "." and ".." segments the way botocore does: a trailing
// slash survives unless nothing else does.
func normalizePath(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	s := "/" + strings.Join(out, "/")
	if len(out) > 0 && strings.HasSuffix(p, "/") {
		s += "/"
	}
	return s
}

// encodeS3Path is S3's canonical URI: the path as sent, already encoded once by the client.
// Bytes no client may send unencoded (controls, space, non-ASCII) are encoded, as the client
// will have done when it signed.
func encodeS3Path(p string) string {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f {
			var b strings.Builder
			for j := 0; j < len(p); j++ {
				if c := p[j]; c <= ' ' || c >= 0x7f {
					fmt.Fprintf(&b, "%%%02X", c)
				} else {
					b.WriteByte(c)
				}
			}
			return b.String()
		}
	}
	return p
}

type queryParam struct{ key, value string }

// parseRawQuery splits a query into decoded pairs, keeping repeats and empty values. A
// malformed escape is kept literally rather than refused: the signature decides.
func parseRawQuery(raw string) []queryParam {
	if raw == "" {
		return nil
	}
	params := make([]queryParam, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		params = append(params, queryParam{unescapeQuery(k), unescapeQuery(v)})
	}
	return params
}

func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// appendCanonicalHeaders appends "name:value\n" for each signed header. Go's server moves Host,
// Content-Length and Transfer-Encoding out of r.Header, so those come from the request.
func appendCanonicalHeaders(b []byte, r *http.Request, names []string) []byte {
	for _, name := range names {
		b = append(b, name...)
		b = append(b, ':')
		var values []string
		switch name {
		case "host":
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			values = []string{host}
		case "content-length":
			if values = r.Header.Values("Content-Length"); len(values) == 0 {
				values = []string{strconv.FormatInt(max(r.ContentLength, 0), 10)}
			}
		case "transfer-encoding":
			if values = r.Header.Values("Transfer-Encoding"); len(values) == 0 {
				values = r.TransferEncoding
			}
		default:
			values = r.Header[canonicalHeaderKey(name)]
		}
		for i, v := range values {
			if i > 0 {
				b = append(b, ',')
			}
			b = sigv4.AppendHeaderValue(b, v)
		}
		b = append(b, '\n')
	}
	return b
}

// commonSignedHeaders are the canonical forms of the header names SDKs sign, so that the usual
// lookups do not allocate a canonicalised name per header per call.
var commonSignedHeaders = map[string]string{
	"x-amz-date": "X-Amz-Date", "x-amz-content-sha256": "X-Amz-Content-Sha256",
	"x-amz-security-token": "X-Amz-Security-Token", "x-amz-target": "X-Amz-Target",
	"x-amz-user-agent": "X-Amz-User-Agent", "content-type": "Content-Type", "content-md5": "Content-Md5",
	"amz-sdk-invocation-id": "Amz-Sdk-Invocation-Id", "amz-sdk-request": "Amz-Sdk-Request",
	"x-amz-checksum-crc32": "X-Amz-Checksum-Crc32", "x-amz-sdk-checksum-algorithm": "X-Amz-Sdk-Checksum-Algorithm",
	"x-amz-api-version": "X-Amz-Api-Version", "accept": "Accept", "user-agent": "User-Agent",
}

func canonicalHeaderKey(lower string) string {
	if k, ok := commonSignedHeaders[lower]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}
