package authn

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary Authorization headers, dates, tokens, paths, queries and bodies
// to the verifier: it must never panic, and every refusal must be an *Error with a status.
// Seeds are real signed requests (header form and presigned) so mutations start near valid.
func FuzzVerify(f *testing.F) {
	rt := newRoundTrip(f, 1<<10)
	for _, sr := range []sdkRequest{dynamoJSON(), s3PutVirtualHost(), s3Presigned(), ec2Query()} {
		r := sr.sign(f, "http://airlock.test", awsCreds(rt.creds), rt.clock.Now())
		body, _ := io.ReadAll(r.Body)
		f.Add(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"),
			r.Header.Get("X-Amz-Security-Token"), r.Header.Get("X-Amz-Content-Sha256"), string(body))
	}
	f.Add("GET", "//../a/%zz", "a=%&&=b&X-Amz-Signature", "AWS4-HMAC-SHA256 ,,,=,Credential=/////", "0", "", "STREAMING-", "")
	f.Fuzz(func(t *testing.T, method, path, query, auth, date, token, contentSHA, body string) {
		r, err := http.NewRequest("POST", "http://airlock.test/", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.Method = method
		r.URL.Path, r.URL.RawPath = path, ""
		if p, err := url.PathUnescape(path); err == nil {
			r.URL.Path, r.URL.RawPath = p, path
		}
		r.URL.RawQuery = query
		r.RequestURI = path
		if query != "" {
			r.RequestURI += "?" + query
		}
		for k, v := range map[string]string{"Authorization": auth, "X-Amz-Date": date, "X-Amz-Security-Token": token, "X-Amz-Content-Sha256": contentSHA} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		res, err := rt.v.Verify(r)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.Code == "" || e.Status < 400 {
				t.Fatalf("refusal is not a complete *Error: %#v", err)
			}
			if token != "" && len(token) > 8 && strings.Contains(e.Message, token) {
				t.Fatalf("message echoes the token")
			}
			return
		}
		if res.Identity.Subject != testIdentity.Subject {
			t.Fatalf("verified as %q", res.Identity.Subject)
		}
		// Whatever verified must still hand on the body, intact or failing at EOF.
		got, err := io.ReadAll(r.Body)
		if err == nil && res.PayloadHash != payloadUnsigned && res.PayloadHash != payloadStreamingUnsigned && !bytes.Equal(got, []byte(body)) {
			t.Fatalf("body changed by Verify")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	rt := newRoundTrip(b, 0)
	signed := dynamoJSON().sign(b, "http://airlock.test", awsCreds(rt.creds), rt.clock.Now())
	body := []byte(dynamoJSON().body)
	b.ReportAllocs()
	for b.Loop() {
		r := signed.Clone(signed.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		if _, err := rt.v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
