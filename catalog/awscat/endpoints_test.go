package awscat

import "testing"

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
