package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestIssuerConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     IssuerConfig
		wantErr bool
		wantTTL time.Duration
	}{
		{"defaults", IssuerConfig{Key: testKey(1)}, false, time.Hour},
		{"explicit ttl", IssuerConfig{Key: testKey(1), TTL: 15 * time.Minute}, false, 15 * time.Minute},
		{"no key", IssuerConfig{}, true, 0},
		{"short key", IssuerConfig{Key: []byte("sixteen bytes!!!")}, true, 0},
		{"negative ttl", IssuerConfig{Key: testKey(1), TTL: -time.Second}, true, 0},
		{"ttl too short", IssuerConfig{Key: testKey(1), TTL: time.Second}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, err := NewIssuer(c.cfg)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err == nil && i.TTL() != c.wantTTL {
				t.Errorf("ttl = %s, want %s", i.TTL(), c.wantTTL)
			}
		})
	}
}

var accessKeyIDPattern = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)

func TestIssueAWSAndVerify(t *testing.T) {
	clock := newTestClock()
	i := newTestIssuer(t, testKey(1), clock.Now)
	creds, err := i.IssueAWS(testIdentity, "prod-aws", "terminate the canary, see INC-2041")
	if err != nil {
		t.Fatal(err)
	}
	if !accessKeyIDPattern.MatchString(creds.AccessKeyID) {
		t.Errorf("access key ID %q does not look like an AWS temporary key ID", creds.AccessKeyID)
	}
	if len(creds.SecretAccessKey) != 40 {
		t.Errorf("secret has %d characters, want 40 like AWS's", len(creds.SecretAccessKey))
	}
	if want := clock.Now().Add(time.Hour); !creds.Expiration.Equal(want) {
		t.Errorf("expiration = %s, want %s", creds.Expiration, want)
	}

	id, secret, err := i.VerifySessionToken(creds.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	if secret != creds.SecretAccessKey {
		t.Error("re-derived secret differs from the issued one")
	}
	want := Identity{Subject: "u-alice", Email: "alice@example.com", Groups: []string{"engineers", "oncall"},
		Target: "prod-aws", Reason: "terminate the canary, see INC-2041", Ticket: "INC-2041", ExpiresAt: creds.Expiration}
	if fmt.Sprint(id) != fmt.Sprint(want) || id.Target != want.Target || id.Reason != want.Reason ||
		id.Ticket != want.Ticket || !id.ExpiresAt.Equal(want.ExpiresAt) || strings.Join(id.Groups, ",") != "engineers,oncall" {
		t.Errorf("identity = %#v, want %#v", id, want)
	}

	// Two credentials for the same request are distinct (nonce), so are their key IDs.
	again, err := i.IssueAWS(testIdentity, "prod-aws", "terminate the canary, see INC-2041")
	if err != nil {
		t.Fatal(err)
	}
	if again.SessionToken == creds.SessionToken || again.AccessKeyID == creds.AccessKeyID || again.SecretAccessKey == creds.SecretAccessKey {
		t.Error("two issued credentials share a token, key ID or secret")
	}
}

func TestVerifySessionTokenRefuses(t *testing.T) {
	clock := newTestClock()
	i := newTestIssuer(t, testKey(1), clock.Now)
	other := newTestIssuer(t, testKey(2), clock.Now)
	creds, err := i.IssueAWS(testIdentity, "prod-aws", "")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.IssueAWS(testIdentity, "prod-aws", "")
	if err != nil {
		t.Fatal(err)
	}
	bearer, _, err := i.IssueBearer(testIdentity, "gcp", "prod-gcp", "")
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(creds.SessionToken)
	flipped[10] ^= 1
	cases := map[string]string{
		"empty":               "",
		"garbage":             "hello",
		"not base64":          "!!!!",
		"truncated":           creds.SessionToken[:len(creds.SessionToken)-4],
		"bit flipped":         string(flipped),
		"other issuer's key":  forged.SessionToken,
		"bearer token":        bearer,
		"bearer without pref": strings.TrimPrefix(bearer, BearerPrefix),
		"huge":                strings.Repeat("A", maxTokenLen+1),
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			_, secret, err := i.VerifySessionToken(token)
			if !errors.Is(err, ErrCredentialInvalid) || secret != "" {
				t.Fatalf("err = %v, secret returned: %v", err, secret != "")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		clock.Advance(time.Hour)
		if _, _, err := i.VerifySessionToken(creds.SessionToken); !errors.Is(err, ErrCredentialExpired) {
			t.Fatalf("err = %v, want ErrCredentialExpired", err)
		}
	})
}

func TestIssueRefusesIncompleteRequests(t *testing.T) {
	i := newTestIssuer(t, testKey(1), nil)
	if _, err := i.IssueAWS(Identity{}, "prod-aws", ""); err == nil {
		t.Error("identity without subject accepted")
	}
	if _, err := i.IssueAWS(testIdentity, "", ""); err == nil {
		t.Error("empty target accepted")
	}
	if _, err := i.IssueAWS(testIdentity, "prod-aws", strings.Repeat("x", maxReasonLen+1)); err == nil {
		t.Error("oversized reason accepted")
	}
	if _, _, err := i.IssueBearer(testIdentity, "", "prod-gcp", ""); err == nil {
		t.Error("bearer without cloud accepted")
	}
}

func TestBearerToken(t *testing.T) {
	clock := newTestClock()
	i := newTestIssuer(t, testKey(1), clock.Now)
	token, exp, err := i.IssueBearer(testIdentity, "azure", "prod-azure", "deploy #512")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, BearerPrefix) || !exp.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("token prefix or expiry wrong: exp %s", exp)
	}
	id, cloud, err := i.VerifyBearer(token)
	if err != nil {
		t.Fatal(err)
	}
	if cloud != "azure" || id.Subject != "u-alice" || id.Target != "prod-azure" || id.Ticket != "#512" || !id.ExpiresAt.Equal(exp) {
		t.Errorf("identity %#v cloud %s", id, cloud)
	}

	aws, err := i.IssueAWS(testIdentity, "prod-aws", "")
	if err != nil {
		t.Fatal(err)
	}
	other := newTestIssuer(t, testKey(2), clock.Now)
	forged, _, _ := other.IssueBearer(testIdentity, "gcp", "prod-gcp", "")
	for name, tok := range map[string]string{
		"aws session token":      aws.SessionToken,
		"aws token with prefix":  BearerPrefix + aws.SessionToken,
		"other issuer":           forged,
		"no prefix":              strings.TrimPrefix(token, BearerPrefix),
		"prefix only":            BearerPrefix,
		"tampered":               token[:len(token)-2] + "AA",
		"oidc-looking JWT":       "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"bearer of another kind": "ya29.a0AfH6SM",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := i.VerifyBearer(tok); !errors.Is(err, ErrCredentialInvalid) {
				t.Fatalf("err = %v, want ErrCredentialInvalid", err)
			}
		})
	}
	clock.Advance(time.Hour)
	if _, _, err := i.VerifyBearer(token); !errors.Is(err, ErrCredentialExpired) {
		t.Fatalf("expired bearer: err = %v", err)
	}
}

func TestTicketFromReason(t *testing.T) {
	for reason, want := range map[string]string{
		"":                                 "",
		"routine cleanup":                  "",
		"OPS-123":                          "OPS-123",
		"fix for INC-2041 and OPS-1":       "INC-2041",
		"see #4521":                        "#4521",
		"closes github #77, then deploy":   "#77",
		"lowercase ops-123 is not a key":   "",
		"ISO-8601 looks like a ticket key": "ISO-8601",
		"version v1-2":                     "",
		"issue#12":                         "#12",
	} {
		if got := TicketFromReason(reason); got != want {
			t.Errorf("TicketFromReason(%q) = %q, want %q", reason, got, want)
		}
	}
}

// Secrets and tokens never reach logs or fmt output; sealed tokens do not reveal groups.
func TestCredentialsStayOutOfLogs(t *testing.T) {
	i := newTestIssuer(t, testKey(1), nil)
	creds, err := i.IssueAWS(Identity{Subject: "u-bob", Groups: []string{"secret-project-x"}}, "prod-aws", "INC-9 quiet fix")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("issued", "creds", creds)
	for _, out := range []string{buf.String(), fmt.Sprint(creds), fmt.Sprintf("%+v", creds), fmt.Sprintf("%#v", creds)} {
		if strings.Contains(out, creds.SecretAccessKey) || strings.Contains(out, creds.SessionToken) {
			t.Errorf("secret or token printed: %s", out)
		}
		if !strings.Contains(out, creds.AccessKeyID) {
			t.Errorf("key ID missing: %s", out)
		}
	}
	for _, s := range []string{creds.SessionToken, creds.AccessKeyID} {
		if strings.Contains(s, "secret-project-x") || strings.Contains(s, "INC-9") {
			t.Error("token reveals claims")
		}
	}
}

func TestCredentialProcessJSON(t *testing.T) {
	i := newTestIssuer(t, testKey(1), newTestClock().Now)
	creds, err := i.IssueAWS(testIdentity, "prod-aws", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := creds.CredentialProcessJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Version": float64(1), "AccessKeyId": creds.AccessKeyID, "SecretAccessKey": creds.SecretAccessKey,
		"SessionToken": creds.SessionToken, "Expiration": "2026-03-04T11:00:00Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("credential_process JSON = %s", b)
	}
}

func FuzzVerifySessionToken(f *testing.F) {
	i := newTestIssuer(f, testKey(1), nil)
	creds, err := i.IssueAWS(testIdentity, "prod-aws", "OPS-1")
	if err != nil {
		f.Fatal(err)
	}
	bearer, _, _ := i.IssueBearer(testIdentity, "gcp", "prod-gcp", "")
	f.Add(creds.SessionToken)
	f.Add(bearer)
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		if _, _, err := i.VerifySessionToken(token); err == nil && token != creds.SessionToken {
			t.Fatalf("accepted a token it did not issue")
		}
		if _, _, err := i.VerifyBearer(token); err == nil && token != bearer {
			t.Fatalf("accepted a bearer token it did not issue")
		}
	})
}
