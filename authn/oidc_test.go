package authn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestOIDC(t testing.TB, p *fakeProvider, mod func(*OIDCConfig)) *OIDC {
	t.Helper()
	cfg := OIDCConfig{Issuer: p.srv.URL, ClientID: "airlock", ClientSecret: "airlock-secret",
		ExtraAudiences: []string{"airlock-cli"}, RedirectURL: "http://127.0.0.1:1/auth/callback"}
	if mod != nil {
		mod(&cfg)
	}
	o, err := NewOIDC(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestVerifyIDToken(t *testing.T) {
	p := newFakeProvider(t)
	other := newFakeProvider(t) // another issuer, another key set
	o := newTestOIDC(t, p, nil)
	future := newTestOIDC(t, p, func(c *OIDCConfig) { c.Now = func() time.Time { return time.Now().Add(48 * time.Hour) } })
	domains := newTestOIDC(t, p, func(c *OIDCConfig) { c.AllowedDomains = []string{"Corp.example"} })
	keycloak := newTestOIDC(t, p, func(c *OIDCConfig) {
		c.GroupsFallback = []string{"cognito:groups", "realm_access.roles"}
	})

	with := func(mod func(map[string]any)) string {
		c := p.claims("airlock", time.Hour)
		mod(c)
		return p.sign(c)
	}
	good := p.sign(p.claims("airlock", time.Hour))

	tests := []struct {
		name    string
		o       *OIDC
		raw     string
		want    error  // nil: accepted
		message string // part of the error message
		check   func(t *testing.T, id Identity)
	}{
		{name: "valid", o: o, raw: good, check: func(t *testing.T, id Identity) {
			if id.Subject != "alice-sub" || id.Email != "alice@example.com" || !slices.Equal(id.Groups, []string{"engineers", "oncall"}) {
				t.Errorf("identity = %+v", id)
			}
			if time.Until(id.ExpiresAt) < 50*time.Minute {
				t.Errorf("ExpiresAt = %v", id.ExpiresAt)
			}
		}},
		{name: "extra audience (CLI client)", o: o, raw: p.sign(p.claims("airlock-cli", time.Hour))},
		{name: "audience list", o: o, raw: with(func(c map[string]any) { c["aud"] = []string{"x", "airlock"} })},
		{name: "expired", o: future, raw: good, want: ErrTokenExpired, message: "expired at"},
		{name: "expired by exp claim", o: o, raw: with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), want: ErrTokenExpired},
		{name: "not yet valid", o: o, raw: with(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), want: ErrTokenNotYetValid},
		{name: "wrong audience", o: o, raw: p.sign(p.claims("other-app", time.Hour)), want: ErrWrongAudience, message: `"other-app"`},
		{name: "wrong issuer", o: o, raw: other.sign(other.claims("airlock", time.Hour)), want: ErrWrongIssuer, message: other.srv.URL},
		{name: "forged with same kid", o: o, raw: resign(t, good, testRSAKey(t, 1)), want: ErrBadSignature, message: "token signed by an unknown key"},
		{name: "unknown kid", o: o, raw: signJWT(t, testRSAKey(t, 2), "nope", p.claims("airlock", time.Hour)), want: ErrBadSignature},
		{name: "alg none", o: o, raw: b64([]byte(`{"alg":"none"}`)) + "." + strings.Split(good, ".")[1] + ".", want: ErrBadSignature},
		{name: "malformed", o: o, raw: "not-a-token", want: ErrTokenMalformed},
		{name: "payload not JSON", o: o, raw: "a.b.c", want: ErrTokenMalformed},
		{name: "email not verified", o: o, raw: with(func(c map[string]any) { c["email_verified"] = false }), want: ErrEmailNotVerified},
		{name: "email_verified as string", o: o, raw: with(func(c map[string]any) { c["email_verified"] = "true" })},
		{name: "email_verified absent", o: o, raw: with(func(c map[string]any) { delete(c, "email_verified") })},
		{name: "domain refused", o: domains, raw: good, want: ErrDomainNotAllowed, message: "alice@example.com"},
		{name: "domain allowed", o: domains, raw: with(func(c map[string]any) { c["email"] = "alice@corp.example" })},
		{name: "no sub", o: o, raw: with(func(c map[string]any) { delete(c, "sub") }), want: ErrTokenMissingClaim},
		{name: "groups from cognito:groups", o: keycloak, raw: with(func(c map[string]any) {
			delete(c, "groups")
			c["cognito:groups"] = []string{"admins"}
		}), check: func(t *testing.T, id Identity) {
			if !slices.Equal(id.Groups, []string{"admins"}) {
				t.Errorf("groups = %v", id.Groups)
			}
		}},
		{name: "groups from realm_access.roles", o: keycloak, raw: with(func(c map[string]any) {
			delete(c, "groups")
			c["realm_access"] = map[string]any{"roles": []string{"sre-leads", "engineers"}}
		}), check: func(t *testing.T, id Identity) {
			if !slices.Equal(id.Groups, []string{"sre-leads", "engineers"}) {
				t.Errorf("groups = %v", id.Groups)
			}
		}},
		{name: "single group string", o: o, raw: with(func(c map[string]any) { c["groups"] = "solo" }), check: func(t *testing.T, id Identity) {
			if !slices.Equal(id.Groups, []string{"solo"}) {
				t.Errorf("groups = %v", id.Groups)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.o.VerifyIDToken(context.Background(), tc.raw)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tc.check != nil {
					tc.check(t, id)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Errorf("err %T is not a *TokenError", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("message %q lacks %q", err, tc.message)
			}
			if sig := tc.raw[strings.LastIndexByte(tc.raw, '.')+1:]; len(sig) > 8 && strings.Contains(err.Error(), sig) {
				t.Errorf("message echoes the token: %q", err)
			}
		})
	}
}

// A provider may rotate its signing key at any time: tokens under the new kid verify without a
// restart, because an unknown kid makes go-oidc refetch the key set.
func TestVerifyIDTokenKeyRotation(t *testing.T) {
	p := newFakeProvider(t)
	o := newTestOIDC(t, p, nil)
	if _, err := o.VerifyIDToken(context.Background(), p.sign(p.claims("airlock", time.Hour))); err != nil {
		t.Fatal(err)
	}
	p.rotate(testRSAKey(t, 1), "key-2")
	if _, err := o.VerifyIDToken(context.Background(), p.sign(p.claims("airlock", time.Hour))); err != nil {
		t.Fatalf("token under the rotated key refused: %v", err)
	}
	p.mu.Lock()
	hits := p.jwksHits
	p.mu.Unlock()
	if hits < 2 {
		t.Errorf("JWKS fetched %d times, want a refetch after rotation", hits)
	}
}

func TestNewOIDCUnreachable(t *testing.T) {
	_, err := NewOIDC(context.Background(), OIDCConfig{Issuer: "http://127.0.0.1:1/dex", ClientID: "airlock"})
	if err == nil || !strings.Contains(err.Error(), "oidc discovery at http://127.0.0.1:1/dex") {
		t.Fatalf("err = %v", err)
	}
	_, err = NewOIDC(context.Background(), OIDCConfig{})
	if err == nil || !strings.Contains(err.Error(), "issuer is required") || !strings.Contains(err.Error(), "client_id is required") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzUnverifiedClaims: the only parsing of untrusted tokens before the signature check must
// never panic, and must return either a claim set or a *TokenError.
func FuzzUnverifiedClaims(f *testing.F) {
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := unverifiedClaims(raw); err != nil {
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}

func BenchmarkVerifyIDToken(b *testing.B) {
	p := newFakeProvider(b)
	o := newTestOIDC(b, p, nil)
	raw := p.sign(p.claims("airlock", time.Hour))
	ctx := context.Background()
	if _, err := o.VerifyIDToken(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.VerifyIDToken(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
