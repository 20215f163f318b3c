package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/config"
)

// TestEndpointModeUpstreamIsTheOperationsAllowlistedHost checks where endpoint-mode calls go
// when the target has no endpoint override: always an allowlisted AWS host chosen by the
// catalog, whatever Host the client sent. Nothing is dialled.
func TestEndpointModeUpstreamIsTheOperationsAllowlistedHost(t *testing.T) {
	p := newPipeline(t, "1s").px
	target := &config.Target{Name: "real", Cloud: "aws", RoleARN: "arn:aws:iam::111122223333:role/x"}
	tests := []struct {
		name, method, host, path, service, region string
		header                                    http.Header
		wantHost, wantPath                        string
	}{
		{"s3 path-style", "GET", "airlock.example:8080", "/logs/a%2Fb.txt", "s3", "eu-west-1", nil, "s3.eu-west-1.amazonaws.com", "/logs/a%2Fb.txt"},
		{"s3 virtual-hosted", "GET", "logs.127.0.0.1:8080", "/a.txt", "s3", "eu-west-1", nil, "logs.s3.eu-west-1.amazonaws.com", "/a.txt"},
		{"s3 dotted bucket stays path-style", "GET", "airlock.example:8080", "/my.logs/a.txt", "s3", "us-east-1", nil, "s3.us-east-1.amazonaws.com", "/my.logs/a.txt"},
		{"ec2", "POST", "evil.example", "/", "ec2", "eu-west-1", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "ec2.eu-west-1.amazonaws.com", "/"},
		{"bedrock runtime shares the signing name", "POST", "airlock.example", "/model/anthropic.claude/invoke", "bedrock", "us-east-1", nil, "bedrock-runtime.us-east-1.amazonaws.com", "/model/anthropic.claude/invoke"},
		{"iam is global", "POST", "airlock.example", "/", "iam", "us-east-1", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "iam.amazonaws.com", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(tt.method, "http://"+tt.host+tt.path, strings.NewReader(""))
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header[k] = v
			}
			if tt.service == "ec2" || tt.service == "iam" {
				r.URL.RawQuery = "Action=DescribeInstances&Version=2016-11-15"
				if tt.service == "iam" {
					r.URL.RawQuery = "Action=ListRoles&Version=2010-05-08"
				}
			}
			c := &call{r: r, target: target, sig: &authn.SigV4Result{Service: tt.service, Region: tt.region}}
			p.cfg.Settings.PublicURL = "http://127.0.0.1:8080"
			if tt.name == "s3 path-style" || tt.name == "s3 dotted bucket stays path-style" {
				p.cfg.Settings.PublicURL = "http://airlock.example:8080"
			}
			p.name(c)
			up, err := p.upstreamFor(c)
			if err != nil {
				t.Fatalf("upstreamFor: %v (action %s)", err, c.action.IAMAction)
			}
			got := up.path
			if up.rawPath != "" {
				got = up.rawPath
			}
			if up.scheme != "https" || up.host != tt.wantHost || got != tt.wantPath {
				t.Errorf("upstream = %s://%s%s, want https://%s%s (action %s)", up.scheme, up.host, got, tt.wantHost, tt.wantPath, c.action.IAMAction)
			}
		})
	}
}
