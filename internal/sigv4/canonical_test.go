package sigv4

import (
	"crypto/hmac"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// referenceCanonicalQuery is the plain reading of the canonical query, the way the verifier
// built it before it moved here: decode into pairs, encode each, sort, join. The staged,
// allocation-free AppendCanonicalQuery must agree with it.
func referenceCanonicalQuery(raw string, reading QueryReading, omit string) string {
	type pair struct{ k, v string }
	var pairs []pair
	switch reading {
	case QueryAsNetURL:
		vals, _ := url.ParseQuery(raw)
		for k, vs := range vals {
			for _, v := range vs {
				pairs = append(pairs, pair{k, v})
			}
		}
	case QueryAsSent:
		unescape := func(s string) string {
			if u, err := url.QueryUnescape(s); err == nil {
				return u
			}
			return s
		}
		for part := range strings.SplitSeq(raw, "&") {
			if part != "" {
				k, v, _ := strings.Cut(part, "=")
				pairs = append(pairs, pair{unescape(k), unescape(v)})
			}
		}
	}
	var enc []pair
	for _, p := range pairs {
		if omit == "" || p.k != omit {
			enc = append(enc, pair{URIEncode(p.k, true), URIEncode(p.v, true)})
		}
	}
	slices.SortFunc(enc, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var out []string
	for _, p := range enc {
		out = append(out, p.k+"="+p.v)
	}
	return strings.Join(out, "&")
}

var queryCases = []string{
	"", "a=1", "b=2&a=1", "a", "a=&a", "&&a=1&&", "a=a-b&a=a%2Fb", "x=a+b&y=%2B&z=~*", "%E2%9C%93=caf%C3%A9",
	"bad=%zz&ok=1", "trail=%4", "k;v=1&x=2", "X-Amz-Signature=abc&X-Amz-Date=1", "X-Amz-Signatur%65=enc", "=v&k=",
	strings.Repeat("p=1&", 40) + "q=%20",
}

func FuzzCanonicalQuery(f *testing.F) {
	for _, q := range queryCases {
		f.Add(q, "prefix")
	}
	f.Fuzz(func(t *testing.T, raw, prefix string) {
		for _, reading := range []QueryReading{QueryAsSent, QueryAsNetURL} {
			for _, omit := range []string{"", "X-Amz-Signature"} {
				want := referenceCanonicalQuery(raw, reading, omit)
				got := AppendCanonicalQuery([]byte(prefix), raw, reading, omit)
				if string(got) != prefix+want {
					t.Fatalf("reading %d omit %q of %q:\n got %q\nwant %q", reading, omit, raw, got, prefix+want)
				}
			}
		}
	})
}

func TestCanonicalQueryLimit(t *testing.T) {
	raw := strings.Repeat("a=1&", maxQueryPairs) + "a=1"
	if got := AppendCanonicalQuery(nil, raw, QueryAsNetURL, ""); len(got) != 0 {
		t.Errorf("a query over net/url's limit reads as %d bytes, want none (as ParseQuery)", len(got))
	}
	if got := AppendCanonicalQuery(nil, raw, QueryAsSent, ""); len(got) != 4*maxQueryPairs+3 {
		t.Errorf("the verifier's reading kept %d bytes of the query", len(got))
	}
}

func TestAppendHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "  a  ": "a", "a   b  c": "a b c", "\t a \t": "a", "a \t  b": "a \t b", "\u00a0x\u00a0": "x",
	} {
		if got := string(AppendHeaderValue(nil, in)); got != want {
			t.Errorf("AppendHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyCacheKeysBySecretAndScope(t *testing.T) {
	var c KeyCache
	a := c.Key("secret-a", "20261124", "us-east-1", "s3")
	if !hmac.Equal(a, SigningKey("secret-a", "20261124", "us-east-1", "s3")) {
		t.Fatal("cached key differs from the derived one")
	}
	for _, other := range [][4]string{
		{"secret-b", "20261124", "us-east-1", "s3"},
		{"secret-a", "20261125", "us-east-1", "s3"},
		{"secret-a", "20261124", "eu-west-1", "s3"},
		{"secret-a", "20261124", "us-east-1", "sts"},
	} {
		if hmac.Equal(c.Key(other[0], other[1], other[2], other[3]), a) {
			t.Errorf("scope %q found the key of another scope", other)
		}
	}
	for i := range keyCacheEntries + 10 {
		c.Key("s", "20261124", "r", string(rune('a'+i%26))+strings.Repeat("x", i/26))
	}
	if n := len(c.m); n > keyCacheEntries {
		t.Errorf("cache holds %d keys, bound %d", n, keyCacheEntries)
	}
	if !hmac.Equal(c.Key("secret-a", "20261124", "us-east-1", "s3"), a) {
		t.Error("a key derived again after the cache was cleared differs")
	}
}
