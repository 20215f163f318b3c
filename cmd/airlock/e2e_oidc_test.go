package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// e2eOIDCConfig: reads allowed for engineers only; everybody else falls to default deny.
const e2eOIDCConfig = `
listen: {{LISTEN}}
oidc:
  issuer: {{ISSUER}}
  client_id: airlock
  client_secret_env: AIRLOCK_E2E_OIDC_SECRET
targets:
{{LOCAL_TARGET}}
policies:
  - name: engineers-read
    groups: [engineers]
    risk: [read]
    decision: allow
  - name: default-deny
    decision: deny
audit:
  file: {{AUDIT}}
`

// TestE2EOIDCGroupsDecide logs users in at a real Dex, gets Airlock credentials with their ID
// tokens, and runs the real aws CLI through Airlock: the policy's group decides.
func TestE2EOIDCGroupsDecide(t *testing.T) {
	testenv.Integration(t)
	minio := testenv.StartMinIO(t)
	dex := testenv.StartDex(t)
	t.Setenv("AIRLOCK_E2E_OIDC_SECRET", dex.ClientSecret)
	e := startAirlock(t, minio, "", strings.ReplaceAll(e2eOIDCConfig, "{{ISSUER}}", dex.Issuer))
	cli := testenv.Binary(t, "/usr/bin/aws")

	// alice is in engineers: the read goes through to MinIO.
	e.token = dex.IDToken(t, "alice@example.com")
	if out, err := e.awsCLI(cli, "s3", "ls"); err != nil {
		t.Fatalf("alice (engineers) s3 ls: %v\n%s", err, out)
	}
	// dave is not: same call, denied by the default rule.
	e.token = dex.IDToken(t, "dave@example.com")
	out, err := e.awsCLI(cli, "s3", "ls")
	if err == nil || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, "default-deny") {
		t.Errorf("dave (contractors) s3 ls: want AccessDenied by default-deny, got err=%v\n%s", err, out)
	}

	events := e.auditEvents()
	var aliceAllowed, daveDenied, logins int
	for _, ev := range events {
		switch {
		case ev.Kind == "decision" && ev.Identity.Email == "alice@example.com" && ev.Decision == "allow" && ev.Policy == "engineers-read":
			aliceAllowed++
		case ev.Kind == "decision" && ev.Identity.Email == "dave@example.com" && ev.Decision == "deny":
			daveDenied++
		case ev.Kind == "login":
			logins++
		}
		for _, g := range []string{e.token} {
			if strings.Contains(ev.Reason+ev.Comment+ev.UserAgent, g) {
				t.Error("a token leaked into the audit trail")
			}
		}
	}
	if aliceAllowed == 0 || daveDenied == 0 || logins < 2 {
		t.Errorf("audit: alice allowed %d, dave denied %d, logins %d", aliceAllowed, daveDenied, logins)
	}

	// The API refuses what is not a valid ID token of this provider, with a clear message.
	for name, tok := range map[string]string{"garbage": "not-a-token", "empty": ""} {
		_, err := requestCredentials(context.Background(), e.url, tok, "aws", "local", "")
		if name == "empty" {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/credentials/aws", strings.NewReader(`{"target":"local"}`))
			resp, rerr := http.DefaultClient.Do(req)
			if rerr != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("no token: %v %v", resp, rerr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s token: want 401, got %v", name, err)
		}
	}
}
