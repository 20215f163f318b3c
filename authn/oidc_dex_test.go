package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// dexPasswordToken logs user in with Dex's password grant for client and returns the ID token.
func dexPasswordToken(t *testing.T, d *testenv.Dex, clientID, secret, user string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {"password"},
		"scope": {"openid email profile groups"}}
	req, _ := http.NewRequest("POST", d.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IDToken == "" {
		t.Fatalf("password grant for %s at %s: %d %v %s", user, clientID, resp.StatusCode, err, out.Error)
	}
	return out.IDToken
}

func dexOIDC(t *testing.T, d *testenv.Dex, now func() time.Time) *OIDC {
	t.Helper()
	o, err := NewOIDC(context.Background(), OIDCConfig{Issuer: d.Issuer, ClientID: d.ClientID,
		ClientSecret: d.ClientSecret, ExtraAudiences: []string{testenv.DexCLIClientID}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Against a real Dex: a good token is accepted with its groups; an expired, forged,
// wrong-audience and wrong-issuer token are each refused with a clear message.
func TestDexVerifyIDToken(t *testing.T) {
	d := testenv.StartDex(t)
	o := dexOIDC(t, d, nil)
	ctx := context.Background()

	alice := dexPasswordToken(t, d, d.ClientID, d.ClientSecret, "alice@example.com")
	id, err := o.VerifyIDToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "alice@example.com" || !slices.Equal(id.Groups, []string{"engineers", "oncall"}) || id.Subject == "" {
		t.Fatalf("alice = %+v", id)
	}
	bob := dexPasswordToken(t, d, d.ClientID, d.ClientSecret, "bob@example.com")
	if id, err := o.VerifyIDToken(ctx, bob); err != nil || !slices.Equal(id.Groups, []string{"sre-leads"}) {
		t.Fatalf("bob = %+v, %v", id, err)
	}

	// The forgery keeps the real token's header (Dex's kid) and claims, signed by another key.
	other := testenv.StartDex(t)
	refusals := []struct {
		name    string
		o       *OIDC
		raw     string
		want    error
		message string
	}{
		{"expired", dexOIDC(t, d, func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }), alice,
			ErrTokenExpired, "ID token expired: expired at"},
		{"forged with Dex's kid", o, resign(t, alice, testRSAKey(t, 1)), ErrBadSignature, "token signed by an unknown key"},
		{"wrong audience", o, dexPasswordToken(t, d, testenv.DexOtherClientID, testenv.DexOtherClientSecret, "alice@example.com"),
			ErrWrongAudience, `ID token issued for another client: audience ["other-app"]`},
		{"wrong issuer", o, dexPasswordToken(t, other, other.ClientID, other.ClientSecret, "alice@example.com"),
			ErrWrongIssuer, "ID token issued by another provider: issuer \"" + other.Issuer + "\", expected \"" + d.Issuer + "\""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.o.VerifyIDToken(ctx, tc.raw)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.message)
			}
			if strings.Contains(err.Error(), tc.raw[len(tc.raw)-16:]) {
				t.Fatalf("message echoes the token: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}
