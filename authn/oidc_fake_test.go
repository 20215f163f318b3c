package authn

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProvider is a minimal OIDC provider for the -short suite: discovery, JWKS, an
// authorization endpoint that logs the configured user in at once, and a token endpoint that
// checks PKCE and signs ID tokens with a test RSA key. Like Dex, it issues a refresh token with
// each code and rotates it on every refresh, refusing one that was used before.
type fakeProvider struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	key       *rsa.PrivateKey
	kid       string
	published []*rsa.PrivateKey // keys in the JWKS, by kid
	kids      []string
	user      map[string]any // claims of the user who logs in
	codes     map[string]fakeCode
	badNonce  bool
	jwksHits  int

	// Refresh tokens: live ones, what was issued last, and how the next refreshes go.
	refreshTokens  map[string]bool
	lastRefresh    string
	refreshes      int           // refresh grants received
	noRefresh      bool          // issue no refresh token at login (no offline_access)
	refreshRefused bool          // answer refreshes with 400 invalid_grant
	refreshStatus  int           // answer refreshes with this status (a provider in trouble)
	refreshDrop    bool          // close the connection without an answer (unreachable)
	refreshSubject string        // sign refreshed ID tokens for this subject instead
	refreshArrived chan struct{} // when set, each refresh sends on it first...
	refreshGate    chan struct{} // ...and, when set, waits for it to close before answering
}

type fakeCode struct {
	clientID, nonce, challenge string
}

var (
	testRSAKeyOnce sync.Once
	testRSAKeys    []*rsa.PrivateKey
)

// testRSAKey returns one of a few RSA keys generated once per test binary (generation is slow).
func testRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	testRSAKeyOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testRSAKeys = append(testRSAKeys, k)
		}
	})
	return testRSAKeys[i]
}

func newFakeProvider(t testing.TB) *fakeProvider {
	t.Helper()
	p := &fakeProvider{t: t, key: testRSAKey(t, 0), kid: "key-1", codes: map[string]fakeCode{}, refreshTokens: map[string]bool{},
		user: map[string]any{"sub": "alice-sub", "email": "alice@example.com", "email_verified": true,
			"groups": []string{"engineers", "oncall"}}}
	p.published = []*rsa.PrivateKey{p.key}
	p.kids = []string{p.kid}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                p.srv.URL,
			"authorization_endpoint":                p.srv.URL + "/auth",
			"token_endpoint":                        p.srv.URL + "/token",
			"jwks_uri":                              p.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"end_session_endpoint":                  p.srv.URL + "/logout",
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.jwksHits++
		var keys []map[string]string
		for i, k := range p.published {
			keys = append(keys, map[string]string{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": p.kids[i],
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		}
		writeJSON(w, map[string]any{"keys": keys})
	})
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "PKCE S256 required", http.StatusBadRequest)
			return
		}
		code := randomString()
		p.mu.Lock()
		p.codes[code] = fakeCode{clientID: q.Get("client_id"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge")}
		p.mu.Unlock()
		u, _ := url.Parse(q.Get("redirect_uri"))
		v := u.Query()
		v.Set("code", code)
		v.Set("state", q.Get("state"))
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		clientID, _, ok := r.BasicAuth()
		if !ok {
			clientID = r.PostFormValue("client_id")
		}
		if r.PostFormValue("grant_type") == "refresh_token" {
			p.refresh(w, r, clientID)
			return
		}
		p.mu.Lock()
		c, found := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !found || c.clientID != clientID || b64(sum[:]) != c.challenge {
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]string{"error": "invalid_grant"})
			return
		}
		claims := p.claims(clientID, time.Hour)
		claims["nonce"] = c.nonce
		if p.badNonce {
			claims["nonce"] = "not-the-nonce"
		}
		answer := map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"id_token": p.sign(claims)}
		if rt := p.issueRefresh(); rt != "" {
			answer["refresh_token"] = rt
		}
		writeJSON(w, answer)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// issueRefresh returns a new live refresh token, or "" when the provider gives none.
func (p *fakeProvider) issueRefresh() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.noRefresh {
		return ""
	}
	rt := "rt-" + randomString()
	p.refreshTokens[rt] = true
	p.lastRefresh = rt
	return rt
}

// refresh answers the refresh_token grant: a new ID token with the user's current claims and a
// rotated refresh token; a token used before is refused.
func (p *fakeProvider) refresh(w http.ResponseWriter, r *http.Request, clientID string) {
	p.mu.Lock()
	p.refreshes++
	arrived, gate := p.refreshArrived, p.refreshGate
	drop, status, refused, subject := p.refreshDrop, p.refreshStatus, p.refreshRefused, p.refreshSubject
	rt := r.PostFormValue("refresh_token")
	live := p.refreshTokens[rt]
	p.mu.Unlock()
	if arrived != nil {
		select { // never blocks: a test that counts too many refreshes must fail, not hang
		case arrived <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	switch {
	case drop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		writeJSON(w, map[string]string{"error": "temporarily_unavailable"})
		return
	case refused || !live:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "invalid_grant", "error_description": "refresh token is invalid"})
		return
	}
	p.mu.Lock()
	delete(p.refreshTokens, rt)
	p.mu.Unlock()
	claims := p.claims(clientID, time.Hour)
	if subject != "" {
		claims["sub"] = subject
	}
	writeJSON(w, map[string]any{"access_token": "at2", "token_type": "Bearer", "expires_in": 3600,
		"id_token": p.sign(claims), "refresh_token": p.issueRefresh()})
}

// claims returns the user's claims for a token to aud lasting ttl.
func (p *fakeProvider) claims(aud string, ttl time.Duration) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	c := map[string]any{"iss": p.srv.URL, "aud": aud, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range p.user {
		c[k] = v
	}
	return c
}

// sign signs claims with the provider's current key.
func (p *fakeProvider) sign(claims map[string]any) string {
	p.mu.Lock()
	key, kid := p.key, p.kid
	p.mu.Unlock()
	return signJWT(p.t, key, kid, claims)
}

// rotate publishes a new signing key (and keeps the old one published, as providers do).
func (p *fakeProvider) rotate(key *rsa.PrivateKey, kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.key, p.kid = key, kid
	p.published = append(p.published, key)
	p.kids = append(p.kids, kid)
}

func signJWT(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

// resign replaces a JWT's signature with one by key, keeping its header (and kid) and claims.
func resign(t testing.TB, raw string, key *rsa.PrivateKey) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + parts[1] + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
