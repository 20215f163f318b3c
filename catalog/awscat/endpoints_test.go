package awscat

import (
	"net/http"
	"testing"
)

func TestUpstream(t *testing.T) {
	tests := []struct {
		service, region, want string
		ok                    bool
	}{
		{"ec2", "us-east-1", "ec2.us-east-1.amazonaws.com", true},
		{"s3", "eu-west-1", "s3.eu-west-1.amazonaws.com", true},
		{"iam", "us-east-1", "iam.amazonaws.com", true},
		{"iam", "eu-west-1", "iam.amazonaws.com", true},
		{"sts", "eu-west-1", "sts.eu-west-1.amazonaws.com", true},
		{"monitoring", "us-west-2", "monitoring.us-west-2.amazonaws.com", true},
		{"ec2", "cn-north-1", "ec2.cn-north-1.amazonaws.com.cn", true},
		{"lambda", "us-gov-west-1", "lambda.us-gov-west-1.amazonaws.com", true},
		{"dynamodb", "ap-southeast-7", "dynamodb.ap-southeast-7.amazonaws.com", true}, // newer than the table
		{"ec2", "evil.com/x", "", false},
		{"ec2", "attacker.example", "", false},
		{"ec2", "", "", false},
		{"no-such-service", "us-east-1", "", false},
	}
	for _, tt := range tests {
		got, ok := Upstream(tt.service, tt.region)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Upstream(%q, %q) = %q, %v; want %q, %v", tt.service, tt.region, got, ok, tt.want, tt.ok)
		}
	}
}

func TestServiceForHost(t *testing.T) {
	tests := []struct {
		host, service, region string
		ok                    bool
	}{
		{"ec2.us-east-1.amazonaws.com", "ec2", "us-east-1", true},
		{"ec2.us-east-1.amazonaws.com:443", "ec2", "us-east-1", true},
		{"iam.amazonaws.com", "iam", "us-east-1", true},
		{"sts.amazonaws.com", "sts", "us-east-1", true},
		{"s3.amazonaws.com", "s3", "us-east-1", true},
		{"my-bucket.s3.amazonaws.com", "s3", "us-east-1", true},
		{"my.dotted.bucket.s3.eu-west-1.amazonaws.com", "s3", "eu-west-1", true},
		{"bkt.s3.dualstack.us-west-2.amazonaws.com", "s3", "us-west-2", true},
		{"bkt.s3-us-west-2.amazonaws.com", "s3", "us-west-2", true},
		{"123456789012.s3-control.us-east-1.amazonaws.com", "s3", "us-east-1", true},
		{"monitoring.eu-west-1.amazonaws.com", "monitoring", "eu-west-1", true},
		{"email.us-east-1.amazonaws.com", "ses", "us-east-1", true},
		{"dynamodb.ap-southeast-7.amazonaws.com", "dynamodb", "ap-southeast-7", true},
		{"ec2.cn-north-1.amazonaws.com.cn", "ec2", "cn-north-1", true},
		{"evil.example.com", "", "", false},
		{"ec2.us-east-1.amazonaws.com.evil.com", "", "", false},
		{"x.ec2.us-east-1.amazonaws.com", "", "", false},
		{"amazonaws.com", "", "", false},
	}
	for _, tt := range tests {
		s, r, ok := ServiceForHost(tt.host)
		if s != tt.service || r != tt.region || ok != tt.ok {
			t.Errorf("ServiceForHost(%q) = %q, %q, %v; want %q, %q, %v", tt.host, s, r, ok, tt.service, tt.region, tt.ok)
		}
	}
}

func TestRoute(t *testing.T) {
	const base = "airlock.test:8443"
	tests := []struct {
		name   string
		r      Request
		action string
		host   string
		ok     bool
	}{
		{"bedrock runtime lives on its own host", Request{Method: "POST", Path: "/model/anthropic.claude/invoke", Service: "bedrock", Region: "us-west-2"},
			"bedrock:InvokeModel", "bedrock-runtime.us-west-2.amazonaws.com", true},
		{"bedrock control plane", Request{Method: "GET", Path: "/foundation-models", Service: "bedrock", Region: "us-west-2"},
			"bedrock:ListFoundationModels", "bedrock.us-west-2.amazonaws.com", true},
		{"iam global", Request{Method: "POST", Path: "/", RawQuery: "Action=ListUsers&Version=2010-05-08", Service: "iam", Region: "us-east-1"},
			"iam:ListUsers", "iam.amazonaws.com", true},
		{"s3 virtual host keeps the bucket", Request{Method: "GET", Host: "bkt." + base, Path: "/k", Service: "s3", Region: "eu-west-1"},
			"s3:GetObject", "bkt.s3.eu-west-1.amazonaws.com", true},
		{"s3 bucket that is no DNS name", Request{Method: "GET", Host: "Bad_Bucket." + base, Path: "/k", Service: "s3", Region: "eu-west-1"},
			"s3:GetObject", "", false},
		{"s3-control account host", Request{Method: "GET", Path: "/v20180820/accesspoint", Service: "s3", Region: "us-east-1",
			Header: http.Header{"X-Amz-Account-Id": {"123456789012"}}}, "s3:ListAccessPoints", "123456789012.s3-control.us-east-1.amazonaws.com", true},
		{"s3-control account that is not one", Request{Method: "GET", Path: "/v20180820/accesspoint", Service: "s3", Region: "us-east-1",
			Header: http.Header{"X-Amz-Account-Id": {"evil.com#"}}}, "s3:ListAccessPoints", "", false},
		{"region that is no region", Request{Method: "POST", Path: "/", RawQuery: "Action=DescribeInstances&Version=2016-11-15", Service: "ec2", Region: "evil.com/"},
			"ec2:DescribeInstances", "", false},
		{"forward mode keeps the real host", Request{Method: "DELETE", Host: "bkt.s3.eu-west-1.amazonaws.com", Path: "/k", Service: "s3", Region: "eu-west-1", BaseHost: "-"},
			"s3:DeleteObject", "bkt.s3.eu-west-1.amazonaws.com", true},
		{"forward mode host of another service", Request{Method: "POST", Host: "ec2.us-east-1.amazonaws.com", Path: "/", RawQuery: "Action=ListUsers&Version=2010-05-08", Service: "iam", Region: "us-east-1", BaseHost: "-"},
			"iam:Unknown", "", false},
		{"forward mode host that is not AWS", Request{Method: "GET", Host: "s3.evil.example", Path: "/bkt/k", Service: "s3", Region: "us-east-1", BaseHost: "-"},
			"s3:Unknown", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r.BaseHost == "-" {
				tt.r.BaseHost = ""
			} else {
				tt.r.BaseHost = base
				if tt.r.Host == "" {
					tt.r.Host = base
				}
			}
			if tt.r.Header == nil {
				tt.r.Header = http.Header{}
			}
			a, _, host, ok := Route(tt.r)
			if a.IAMAction != tt.action || host != tt.host || ok != tt.ok {
				t.Errorf("Route = %s, %q, %v; want %s, %q, %v", a.IAMAction, host, ok, tt.action, tt.host, tt.ok)
			}
		})
	}
}
