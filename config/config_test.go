package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseErrorsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", "listen: 127.0.0.1:8080\nlisten_addr: x\n", []string{"line 2", "listen_addr"}},
		{"unknown nested key", "targets:\n  - name: a\n    cloud: aws\n    role: x\n", []string{"line 4", "role"}},
		{"missing role", "targets:\n  - name: a\n    cloud: aws\n", []string{"targets[0].role_arn: required"}},
		{"bad cloud", "targets:\n  - name: a\n    cloud: oracle\n", []string{"targets[0].cloud", "oracle"}},
		{"bad decision", "policies:\n  - name: p\n    decision: maybe\n", []string{"policies[0].decision", "maybe"}},
		{"hold without approvers", "policies:\n  - name: p\n    decision: hold\n", []string{"policies[0].approvers.groups: required"}},
		{"unknown target in policy", "policies:\n  - name: p\n    targets: [nope]\n    decision: allow\n", []string{"policies[0].targets", "nope"}},
		{"bad tier", "risk:\n  - actions: [\"s3:*\"]\n    tier: scary\n", []string{"risk[0].tier", "scary"}},
		{"bad duration", "hold: {wait: soon}\n", []string{"line 1", "soon"}},
		{"session too long", "oidc: {session_ttl: 7d}\n", []string{"oidc.session_ttl", "between 5m and 24h"}},
		{"session too short", "oidc: {session_ttl: 1m}\n", []string{"oidc.session_ttl", "between 5m and 24h"}},
		{"groups refresh too short", "oidc: {groups_refresh: 30s}\n", []string{"oidc.groups_refresh", "between 1m and 1h", "30s"}},
		{"groups refresh too long", "oidc: {groups_refresh: 2h, session_ttl: 12h}\n", []string{"oidc.groups_refresh", "between 1m and 1h"}},
		{"groups refresh beyond the session", "oidc: {groups_refresh: 15m, session_ttl: 10m}\n",
			[]string{"oidc.groups_refresh: must not exceed oidc.session_ttl (10m0s), got 15m0s"}},
		{"every problem at once", "targets:\n  - cloud: aws\npolicies:\n  - decision: allow\n",
			[]string{"targets[0].name: required", "targets[0].role_arn: required", "policies[0].name: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("AIRLOCK_REDIS_URL", "")
	t.Setenv("AIRLOCK_LISTEN", "")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.Redis.URL != "" {
		t.Errorf("dev defaults: %+v", c)
	}
	if c.Hold.Wait.D().Seconds() != 25 || c.Hold.RequestTTL.D().Hours() != 24 {
		t.Errorf("hold defaults: %+v", c.Hold)
	}
	if c.Log.Format != "text" {
		t.Errorf("dev log format = %q, want text", c.Log.Format)
	}
	if c.OIDC.SessionTTL.D() != 12*time.Hour {
		t.Errorf("oidc.session_ttl default = %s, want 12h", c.OIDC.SessionTTL.D())
	}
	if c.OIDC.GroupsRefresh.D() != 5*time.Minute {
		t.Errorf("oidc.groups_refresh default = %s, want 5m", c.OIDC.GroupsRefresh.D())
	}
	short, err := Parse([]byte("oidc: {issuer: https://idp.example.com, client_id: airlock, session_ttl: 1h}\n"))
	if err != nil || short.OIDC.SessionTTL.D() != time.Hour {
		t.Errorf("oidc.session_ttl 1h: %v, %v", short, err)
	}
	// The shortest session takes the default groups_refresh (equal is allowed), and 1m is allowed.
	if c, err := Parse([]byte("oidc: {session_ttl: 5m}\n")); err != nil || c.OIDC.GroupsRefresh.D() != 5*time.Minute {
		t.Errorf("oidc.session_ttl 5m with the default groups_refresh: %v", err)
	}
	tight, err := Parse([]byte("oidc: {issuer: https://idp.example.com, client_id: airlock, session_ttl: 5m, groups_refresh: 1m}\n"))
	if err != nil || tight.OIDC.GroupsRefresh.D() != time.Minute {
		t.Errorf("oidc.groups_refresh 1m: %v, %v", tight, err)
	}
}

func TestEnvOverridesAndExample(t *testing.T) {
	t.Setenv("AIRLOCK_REDIS_URL", "redis://127.0.0.1:6379/1")
	c, err := Load(filepath.Join("..", "configs", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://127.0.0.1:6379/1" {
		t.Errorf("AIRLOCK_REDIS_URL not applied: %q", c.Redis.URL)
	}
	if c.Log.Format != "json" {
		t.Errorf("production log format = %q, want json", c.Log.Format)
	}
	if p := c.Policies[1]; p.Grant.Uses != 1 || p.Approvers.Count != 1 || p.Grant.Scope != "resource" {
		t.Errorf("hold defaults: %+v", p)
	}
	if _, err := Load(filepath.Join("..", "configs", "dev.yaml")); err != nil {
		t.Errorf("dev.yaml: %v", err)
	}
}

func TestSecretIndirection(t *testing.T) {
	t.Setenv("X_KEY", "c2hvcnQ=")
	if _, err := Key32("X_KEY"); err == nil || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("short key: err=%v (must fail and not echo the value)", err)
	}
	os.Unsetenv("NOPE_UNSET")
	if _, err := Secret("NOPE_UNSET"); err == nil {
		t.Error("unset secret must be an error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("listen: 1.2.3.4:5\n"))
	f.Add([]byte("targets: [{name: a, cloud: aws, role_arn: 'arn:x'}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(data)
	})
}
