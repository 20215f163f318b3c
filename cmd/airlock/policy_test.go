package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const policyTestConfig = `
targets:
  - name: prod-aws
    cloud: aws
    role_arn: arn:aws:iam::123456789012:role/airlock-prod
risk:
  - actions: ["ec2:RunInstances"]
    tier: privilege
policies:
  - name: reads-flow
    risk: [read]
    decision: allow
  - name: prod-destructive-needs-sre
    targets: [prod-aws]
    actions: ["ec2:Terminate*", "s3:Delete*"]
    groups: [engineers]
    when: '"oncall" in identity.groups && request.ticket != ""'
    decision: hold
    message: page the SRE lead
    approvers: {groups: [sre-leads], count: 2}
    grant: {ttl: 30m, uses: 2}
  - name: default-deny
    decision: deny
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "airlock.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyTest(t *testing.T) {
	cfg := writeConfig(t, policyTestConfig)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"read is allowed", []string{"--as", "alice@example.com", "--action", "ec2:DescribeInstances", "--target", "prod-aws"},
			exitAllow, []string{"decision:  allow", `rule:      policies[0] "reads-flow"`, "risk read"}},
		{"terminate by oncall engineer with ticket is held",
			[]string{"--as", "alice@example.com", "--groups", "engineers,oncall", "--action", "ec2:TerminateInstances", "--target", "prod-aws", "--ticket", "OPS-1"},
			exitHold, []string{"decision:  hold", "approvers: 2 distinct from [sre-leads]; the requester may not approve",
				"grant:     2 use(s) within 30m0s, scope resource", "message:   page the SRE lead",
				`policies[0] "reads-flow"`, "no match: risk destructive not in [read]",
				"MATCH, decides hold", "match, not reached"}},
		{"without a ticket the condition is false",
			[]string{"--as", "alice", "--groups", "engineers,oncall", "--action", "ec2:TerminateInstances", "--target", "prod-aws"},
			exitDeny, []string{"decision:  deny", `policies[2] "default-deny"`, `is false`}},
		{"risk override is shown", []string{"--as", "alice", "--action", "ec2:RunInstances", "--target", "prod-aws"},
			exitDeny, []string{"risk privilege (config override of write)"}},
		{"explicit risk", []string{"--as", "alice", "--action", "ec2:Frobnicate", "--risk", "read"},
			exitAllow, []string{"decision:  allow"}},
		{"gcp action guessed from its form", []string{"--as", "alice", "--action", "compute.instances.list"},
			exitAllow, []string{"call:      gcp compute.instances.list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, err := policyTest(append([]string{"--config", cfg, "--time", "2025-07-16T10:00:00Z"}, tc.args...), &out, &errOut)
			if err != nil {
				t.Fatalf("err = %v; stderr %s", err, errOut.String())
			}
			if code != tc.code {
				t.Errorf("code = %d, want %d\n%s", code, tc.code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestPolicyTestUsageAndErrors(t *testing.T) {
	cfg := writeConfig(t, policyTestConfig)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"policy", "test", "--config", cfg}, &out, &errOut); code != 2 {
		t.Errorf("missing --as/--action: exit %d", code)
	}
	errOut.Reset()
	run(context.Background(), []string{"policy", "test", "--help"}, &out, &errOut)
	if !strings.Contains(errOut.String(), "Exit status: 0 allow, 3 hold, 4 deny") {
		t.Errorf("--help does not document exit codes:\n%s", errOut.String())
	}
	if _, err := policyTest([]string{"--config", cfg, "--as", "a", "--action", "ec2:X", "--time", "yesterday"}, &out, &errOut); err == nil {
		t.Error("bad --time accepted")
	}
	if _, err := policyTest([]string{"--config", cfg, "--as", "a", "--action", "TerminateInstances", "--cloud", "aws"}, &out, &errOut); err == nil {
		t.Error("action without a service accepted")
	}
}

func TestPolicyCheck(t *testing.T) {
	var out, errOut bytes.Buffer
	good := writeConfig(t, policyTestConfig)
	if code := run(context.Background(), []string{"policy", "check", "--config", good}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ok (3 policies, 1 risk overrides)") {
		t.Errorf("output %q", out.String())
	}
	bad := writeConfig(t, strings.Replace(policyTestConfig, `request.ticket != ""`, `request.ticket +`, 1))
	errOut.Reset()
	if code := run(context.Background(), []string{"policy", "check", "--config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("bad CEL: exit %d", code)
	}
	if !strings.Contains(errOut.String(), `policies[1] "prod-destructive-needs-sre": when:`) {
		t.Errorf("error does not name the rule: %s", errOut.String())
	}
}
