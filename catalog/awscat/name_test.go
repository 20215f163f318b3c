package awscat

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

func form(body string) http.Header {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}
}

func target(t string) http.Header {
	return http.Header{"X-Amz-Target": {t}, "Content-Type": {"application/x-amz-json-1.0"}}
}

func TestName(t *testing.T) {
	const base = "airlock.test:8443"
	tests := []struct {
		name     string
		r        Request
		action   string
		resource string
		known    bool
	}{
		{"elb v1 by Version", Request{Method: "POST", Path: "/", Header: form(""), Service: "elasticloadbalancing",
			Body: []byte("Action=DescribeLoadBalancers&Version=2012-06-01")}, "elasticloadbalancing:DescribeLoadBalancers", "", true},
		{"elbv2 only operation", Request{Method: "POST", Path: "/", Header: form(""), Service: "elasticloadbalancing",
			Body: []byte("Action=DeleteTargetGroup&Version=2015-12-01&TargetGroupArn=arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A1%3Atargetgroup%2Ftg%2F1")},
			"elasticloadbalancing:DeleteTargetGroup", "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg/1", true},
		{"query Action in the URL", Request{Method: "GET", Path: "/", RawQuery: "Action=ListUsers&Version=2010-05-08", Service: "iam"},
			"iam:ListUsers", "", true},
		{"cloudwatch signs as monitoring", Request{Method: "POST", Path: "/", Header: form(""), Service: "monitoring",
			Body: []byte("Action=DeleteAlarms&Version=2010-08-01&AlarmNames.member.1=a&AlarmNames.member.2=b")}, "cloudwatch:DeleteAlarms", "a,b", true},
		{"sqs json", Request{Method: "POST", Path: "/", Header: target("AmazonSQS.DeleteQueue"), Service: "sqs",
			Body: []byte(`{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/1/q"}`)}, "sqs:DeleteQueue", "", true},
		{"sqs legacy query", Request{Method: "POST", Path: "/", Header: form(""), Service: "sqs",
			Body: []byte("Action=PurgeQueue&Version=2012-11-05")}, "sqs:PurgeQueue", "", true},
		{"kms json resource", Request{Method: "POST", Path: "/", Header: target("TrentService.ScheduleKeyDeletion"), Service: "kms",
			Body: []byte(`{"KeyId":"1234abcd","PendingWindowInDays":7}`)}, "kms:ScheduleKeyDeletion", "1234abcd", true},
		{"target of another service", Request{Method: "POST", Path: "/", Header: target("TrentService.Decrypt"), Service: "dynamodb"},
			"dynamodb:Unknown", "", false},
		{"unknown target operation", Request{Method: "POST", Path: "/", Header: target("DynamoDB_20120810.DropEverything"), Service: "dynamodb"},
			"dynamodb:Unknown", "", false},
		{"unknown signing name", Request{Method: "GET", Path: "/", Service: "nosuch"}, "nosuch:Unknown", "", false},
		{"no service at all", Request{Method: "GET", Path: "/"}, "unknown:Unknown", "", false},
		// Parameter pollution: which copy the service reads is not guessed.
		{"Action twice", Request{Method: "POST", Path: "/", Header: form(""), Service: "ec2",
			Body: []byte("Action=DescribeInstances&Action=TerminateInstances&Version=2016-11-15")}, "ec2:Unknown", "", false},
		{"Action in query and body", Request{Method: "POST", Path: "/", RawQuery: "Action=DescribeInstances", Header: form(""), Service: "ec2",
			Body: []byte("Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1")}, "ec2:Unknown", "", false},
		{"resource parameter twice", Request{Method: "POST", Path: "/", Header: form(""), Service: "ec2",
			Body: []byte("Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.1=i-2")}, "ec2:Unknown", "", false},
		{"form body not read", Request{Method: "POST", Path: "/", RawQuery: "Action=DescribeInstances&Version=2016-11-15", Header: form(""), Service: "ec2",
			BodyUnread: true}, "ec2:Unknown", "", false},
		{"form body too large to read", Request{Method: "POST", Path: "/", RawQuery: "Action=DescribeInstances&Version=2016-11-15", Header: form(""), Service: "ec2",
			Body: append([]byte("a="), make([]byte, maxBodyParse)...)}, "ec2:Unknown", "", false},
		{"X-Amz-Target twice", Request{Method: "POST", Path: "/", Header: http.Header{"X-Amz-Target": {"DynamoDB_20120810.ListTables", "DynamoDB_20120810.DeleteTable"}}, Service: "dynamodb"},
			"dynamodb:Unknown", "", false},
		{"s3 multi-object delete names the bucket's objects", Request{Method: "POST", Path: "/prod", RawQuery: "delete", Service: "s3", Region: "us-east-1",
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: []byte("<Delete><Object><Key>a</Key></Object></Delete>")},
			"s3:DeleteObject", "arn:aws:s3:::prod/*", true},
		{"json resource", Request{Method: "POST", Path: "/", Header: target("DynamoDB_20120810.DeleteItem"), Service: "dynamodb",
			Body: []byte(`{"TableName":"dev","Key":{"id":{"S":"a:b"}},"ConditionExpression":"x = :v"}`)}, "dynamodb:DeleteItem", "dev", true},
		{"json resource member twice", Request{Method: "POST", Path: "/", Header: target("DynamoDB_20120810.DeleteTable"), Service: "dynamodb",
			Body: []byte(`{"TableName":"dev","TableName":"prod"}`)}, "dynamodb:Unknown", "", false},
		{"json member twice, once escaped", Request{Method: "POST", Path: "/", Header: target("DynamoDB_20120810.DeleteTable"), Service: "dynamodb",
			Body: []byte(`{"TableName":"dev","\u0054ableName":"prod"}`)}, "dynamodb:Unknown", "", false},
		{"json resource in an unread body", Request{Method: "POST", Path: "/", Header: target("DynamoDB_20120810.DeleteTable"), Service: "dynamodb",
			BodyUnread: true}, "dynamodb:Unknown", "", false},
		{"json without a body resource needs no body", Request{Method: "POST", Path: "/", Header: target("DynamoDB_20120810.DescribeLimits"), Service: "dynamodb",
			BodyUnread: true}, "dynamodb:DescribeLimits", "", true},
		{"GET with the body unread names from the query", Request{Method: "GET", Path: "/", RawQuery: "Action=ListUsers&Version=2010-05-08", Service: "iam", BodyUnread: true},
			"iam:ListUsers", "", true},
		{"rest path that matches nothing", Request{Method: "PATCH", Path: "/nothing/here", Service: "lambda"}, "lambda:Unknown", "", false},
		{"streamed body: rest needs no body", Request{Method: "PUT", Path: "/bkt/big.bin", Service: "s3"}, "s3:PutObject", "arn:aws:s3:::bkt/big.bin", true},
		{"s3 tagging discriminator", Request{Method: "GET", Path: "/bkt/k", RawQuery: "tagging", Service: "s3"}, "s3:GetObjectTagging", "arn:aws:s3:::bkt/k", true},
		{"s3 uploads discriminator", Request{Method: "GET", Path: "/bkt", RawQuery: "uploads", Service: "s3"}, "s3:ListBucketMultipartUploads", "arn:aws:s3:::bkt", true},
		{"s3 versioning", Request{Method: "PUT", Path: "/bkt", RawQuery: "versioning", Service: "s3"}, "s3:PutBucketVersioning", "arn:aws:s3:::bkt", true},
		{"s3 delete bucket policy", Request{Method: "DELETE", Path: "/bkt", RawQuery: "policy", Service: "s3"}, "s3:DeleteBucketPolicy", "arn:aws:s3:::bkt", true},
		{"s3 virtual host root", Request{Method: "GET", Host: "bkt." + base, BaseHost: base, Path: "/", RawQuery: "list-type=2", Service: "s3"},
			"s3:ListBucket", "arn:aws:s3:::bkt", true},
		{"s3 escaped key", Request{Method: "DELETE", Path: "/bkt/a%20b/c%2Bd", Service: "s3"}, "s3:DeleteObject", "arn:aws:s3:::bkt/a b/c+d", true},
		{"s3 object version", Request{Method: "DELETE", Path: "/bkt/k", RawQuery: "versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", Service: "s3"},
			"s3:DeleteObjectVersion", "arn:aws:s3:::bkt/k", true},
		{"s3 in china", Request{Method: "DELETE", Path: "/bkt/k", Service: "s3", Region: "cn-north-1"}, "s3:DeleteObject", "arn:aws-cn:s3:::bkt/k", true},
		{"s3 forward mode virtual host", Request{Method: "DELETE", Host: "bkt.s3.eu-west-1.amazonaws.com", Path: "/k"}, "s3:DeleteObject", "arn:aws:s3:::bkt/k", true},
		{"s3control by account host", Request{Method: "GET", Host: "123456789012.s3-control.us-east-1.amazonaws.com", Path: "/v20180820/accesspoint",
			Header: http.Header{"X-Amz-Account-Id": {"123456789012"}}}, "s3:ListAccessPoints", "", true},
		{"lambda trailing slash", Request{Method: "GET", Path: "/2015-03-31/functions", Service: "lambda"}, "lambda:ListFunctions", "", true},
		{"lambda policy literal beats label", Request{Method: "GET", Path: "/2015-03-31/functions/fn/policy", Service: "lambda"}, "lambda:GetPolicy", "fn", true},
		{"forward mode ec2 without signing name", Request{Method: "POST", Host: "ec2.us-west-2.amazonaws.com", Path: "/", Header: form(""),
			Body: []byte("Action=StopInstances&Version=2016-11-15&InstanceId.1=i-1")}, "ec2:StopInstances", "i-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.r.Region == "" && tt.r.Host == "" {
				tt.r.Region = "us-east-1"
			}
			if tt.r.Host == "" {
				tt.r.Host, tt.r.BaseHost = base, base
			}
			if tt.r.Header == nil {
				tt.r.Header = http.Header{}
			}
			got := Name(tt.r)
			if got.IAMAction != tt.action || got.Resource != tt.resource || got.Known != tt.known {
				t.Errorf("got %s %q known %v, want %s %q known %v", got.IAMAction, got.Resource, got.Known, tt.action, tt.resource, tt.known)
			}
			if !got.Known && got.Risk != catalog.Privilege {
				t.Errorf("unknown call has risk %s, want privilege", got.Risk)
			}
		})
	}
}

func TestLookupAndSearch(t *testing.T) {
	for _, name := range []string{"s3:PutBucketPolicy", "S3:putbucketpolicy", "s3:ListObjectsV2", "s3:ListBucket", "cloudwatch:PutMetricData", "lambda:InvokeFunction", "s3:DeleteObjectVersion"} {
		if _, ok := Lookup(name); !ok {
			t.Errorf("Lookup(%q) found nothing", name)
		}
	}
	if o, _ := Lookup("s3:ListObjectsV2"); o.IAMAction != "s3:ListBucket" || o.Operation != "ListObjectsV2" || o.Risk != catalog.Read {
		t.Errorf("Lookup(s3:ListObjectsV2) = %+v", o)
	}
	if o, _ := Lookup("iam:PassRole"); o.IAMAction != "" {
		t.Errorf("iam:PassRole is a permission, not an API operation: %+v", o)
	}
	got := Search("s3:Put*Policy", 0)
	if len(got) == 0 {
		t.Fatal("Search(s3:Put*Policy) found nothing")
	}
	for _, o := range got {
		if o.Service != "s3" {
			t.Errorf("Search(s3:Put*Policy) returned %s", o.IAMAction)
		}
	}
	if got := Search("terminateinstances", 3); len(got) == 0 || got[0].IAMAction != "ec2:TerminateInstances" {
		t.Errorf("Search(terminateinstances) = %+v", got)
	}
	if got := Search("delete", 5); len(got) != 5 {
		t.Errorf("Search limit: %d results", len(got))
	}
	if n := len(Operations()); n < 14000 { // 15,554 model operations, some shared by two models (events, eventbridge)
		t.Errorf("Operations() = %d, want every operation of the models", n)
	}
}

func TestNameS3CopySource(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		src         []string
		wantOp      string
		source      string
		srcAction   string
	}{
		{"copy", "", []string{"/secret/pay%20roll.csv"}, "CopyObject", "arn:aws:s3:::secret/pay roll.csv", "s3:GetObject"},
		{"copy without the slash", "", []string{"secret/a/b"}, "CopyObject", "arn:aws:s3:::secret/a/b", "s3:GetObject"},
		{"copy of a version", "", []string{"secret/a?versionId=3"}, "CopyObject", "arn:aws:s3:::secret/a", "s3:GetObjectVersion"},
		{"part copy", "partNumber=1&uploadId=u", []string{"/secret/a"}, "UploadPartCopy", "arn:aws:s3:::secret/a", "s3:GetObject"},
		{"access point source", "", []string{"arn:aws:s3:us-east-1:1:accesspoint/ap/object/a"}, "CopyObject", "arn:aws:s3:us-east-1:1:accesspoint/ap/object/a", "s3:GetObject"},
		{"two sources", "", []string{"/a/b", "/c/d"}, "Unknown", "", ""},
		{"no key", "", []string{"/bucket-only"}, "Unknown", "", ""},
		{"other query on the source", "", []string{"/a/b?acl"}, "Unknown", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{Method: "PUT", Path: "/dst/k", RawQuery: tc.query, Header: http.Header{"X-Amz-Copy-Source": tc.src}, Service: "s3", Region: "us-east-1"}
			a := Name(r)
			var srcAction string
			if len(a.Also) == 1 && a.Also[0].Resource == a.Source {
				srcAction = a.Also[0].Action
			}
			if a.Operation != tc.wantOp || a.Source != tc.source || srcAction != tc.srcAction || (tc.source == "" && len(a.Also) != 0) {
				t.Errorf("Name = %s %q source %q also %v, want %s source %q (%s)", a.Operation, a.Resource, a.Source, a.Also, tc.wantOp, tc.source, tc.srcAction)
			}
			if a.Known && a.Resource != "arn:aws:s3:::dst/k" {
				t.Errorf("resource = %q, want the destination", a.Resource)
			}
		})
	}
}

func TestNameS3HeaderPermissions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		r      Request
		wantOp string
		also   []catalog.Permission
	}{
		{"put with a canned ACL", Request{Method: "PUT", Path: "/b/k", Header: http.Header{"X-Amz-Acl": {"public-read"}}},
			"PutObject", []catalog.Permission{{Action: "s3:PutObjectAcl", Resource: "arn:aws:s3:::b/k"}}},
		{"put with a grant and tags", Request{Method: "PUT", Path: "/b/k", Header: http.Header{"X-Amz-Grant-Read": {"uri=http://acs.amazonaws.com/groups/global/AllUsers"}, "X-Amz-Tagging": {"a=b"}}},
			"PutObject", []catalog.Permission{{Action: "s3:PutObjectAcl", Resource: "arn:aws:s3:::b/k"}, {Action: "s3:PutObjectTagging", Resource: "arn:aws:s3:::b/k"}}},
		{"multipart with object lock", Request{Method: "POST", Path: "/b/k", RawQuery: "uploads", Header: http.Header{"X-Amz-Object-Lock-Mode": {"GOVERNANCE"}, "X-Amz-Object-Lock-Legal-Hold": {"ON"}}},
			"CreateMultipartUpload", []catalog.Permission{{Action: "s3:PutObjectRetention", Resource: "arn:aws:s3:::b/k"}, {Action: "s3:PutObjectLegalHold", Resource: "arn:aws:s3:::b/k"}}},
		{"bucket with an ACL", Request{Method: "PUT", Path: "/b", Header: http.Header{"X-Amz-Acl": {"public-read-write"}}},
			"CreateBucket", []catalog.Permission{{Action: "s3:PutBucketAcl", Resource: "arn:aws:s3:::b"}}},
		{"plain put", Request{Method: "PUT", Path: "/b/k", Header: http.Header{"Content-Type": {"text/plain"}}}, "PutObject", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Service, tc.r.Region = "s3", "us-east-1"
			a := Name(tc.r)
			if a.Operation != tc.wantOp || !reflect.DeepEqual(a.Also, tc.also) {
				t.Errorf("Name = %s also %v, want %s also %v", a.Operation, a.Also, tc.wantOp, tc.also)
			}
		})
	}
}

func TestNamePassRole(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Request
		also []catalog.Permission
	}{
		{"instance with a profile", Request{Method: "POST", Path: "/", Header: form(""), Service: "ec2",
			Body: []byte("Action=RunInstances&Version=2016-11-15&ImageId=ami-1&IamInstanceProfile.Arn=arn%3Aaws%3Aiam%3A%3A1%3Ainstance-profile%2Fadmin")},
			[]catalog.Permission{{Action: "iam:PassRole", Resource: "arn:aws:iam::1:instance-profile/admin"}}},
		{"instance without a profile", Request{Method: "POST", Path: "/", Header: form(""), Service: "ec2",
			Body: []byte("Action=RunInstances&Version=2016-11-15&ImageId=ami-1")}, nil},
		{"function with a role", Request{Method: "POST", Path: "/2015-03-31/functions", Service: "lambda",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"FunctionName":"f","Role":"arn:aws:iam::1:role/admin","Runtime":"go"}`)},
			[]catalog.Permission{{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/admin"}}},
		{"task definition with two roles", Request{Method: "POST", Path: "/", Header: target("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition"), Service: "ecs",
			Body: []byte(`{"family":"f","taskRoleArn":"arn:aws:iam::1:role/task","executionRoleArn":"arn:aws:iam::1:role/exec"}`)},
			[]catalog.Permission{{Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/task"}, {Action: "iam:PassRole", Resource: "arn:aws:iam::1:role/exec"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.Header == nil {
				tc.r.Header = http.Header{}
			}
			tc.r.Region = "us-east-1"
			a := Name(tc.r)
			if !a.Known || !reflect.DeepEqual(a.Also, tc.also) {
				t.Errorf("Name = %s known %v also %v, want also %v", a.IAMAction, a.Known, a.Also, tc.also)
			}
		})
	}
	// The role is in a body the namer could not read: which role is handed over is unknown.
	r := Request{Method: "POST", Path: "/2015-03-31/functions", Service: "lambda", Region: "us-east-1", BodyUnread: true,
		Header: http.Header{"Content-Type": {"application/json"}}}
	if a := Name(r); a.Known {
		t.Errorf("CreateFunction with an unread body = %+v, want Unknown", a)
	}
}
