package awscat

import (
	"net/http"
	"testing"
)

// benchRequests are one typical call per protocol.
var benchRequests = []struct {
	protocol string
	r        Request
}{
	{"ec2", Request{Method: "POST", Host: "airlock.test", BaseHost: "airlock.test", Path: "/", Service: "ec2", Region: "us-east-1",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		Body:   []byte("Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0abc&InstanceId.2=i-0def")}},
	{"query", Request{Method: "POST", Host: "airlock.test", BaseHost: "airlock.test", Path: "/", Service: "iam", Region: "us-east-1",
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		Body:   []byte("Action=AttachRolePolicy&Version=2010-05-08&RoleName=deployer&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAdmin")}},
	{"json", Request{Method: "POST", Host: "airlock.test", BaseHost: "airlock.test", Path: "/", Service: "dynamodb", Region: "us-east-1",
		Header: http.Header{"X-Amz-Target": {"DynamoDB_20120810.DeleteTable"}, "Content-Type": {"application/x-amz-json-1.0"}},
		Body:   []byte(`{"TableName":"orders"}`)}},
	{"rest-json", Request{Method: "POST", Host: "airlock.test", BaseHost: "airlock.test", Path: "/2015-03-31/functions/my-fn/invocations",
		Service: "lambda", Region: "us-east-1", Header: http.Header{}}},
	{"rest-xml", Request{Method: "DELETE", Host: "bkt.airlock.test", BaseHost: "airlock.test", Path: "/photos/2026/cat.jpg",
		RawQuery: "x-id=DeleteObject", Service: "s3", Region: "us-east-1", Header: http.Header{}}},
	{"rest-xml-query", Request{Method: "PUT", Host: "airlock.test", BaseHost: "airlock.test", Path: "/bkt", RawQuery: "tagging",
		Service: "s3", Region: "us-east-1", Header: http.Header{}}},
}

func BenchmarkName(b *testing.B) {
	loadIndex()
	for _, bc := range benchRequests {
		b.Run(bc.protocol, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if a := Name(bc.r); !a.Known {
					b.Fatalf("%s not named", bc.protocol)
				}
			}
		})
	}
}

func BenchmarkLoadIndex(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		loadIndex = onceIndex()
		loadIndex()
	}
}

// FuzzName feeds arbitrary requests to the namer: it must never panic, and whatever it cannot
// name must come back unknown with the highest risk.
func FuzzName(f *testing.F) {
	for _, bc := range benchRequests {
		f.Add(bc.r.Method, bc.r.Host, bc.r.Path, bc.r.RawQuery, bc.r.Header.Get("X-Amz-Target"), bc.r.Service, string(bc.r.Body))
	}
	f.Add("GET", "a.b.s3.amazonaws.com", "//%zz/", "a=%&b", ".", "s3", "")
	f.Fuzz(func(t *testing.T, method, host, path, query, target, service, body string) {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if target != "" {
			h.Set("X-Amz-Target", target)
		}
		r := Request{Method: method, Host: host, Path: path, RawQuery: query, Header: h, Body: []byte(body), Service: service, Region: "us-east-1"}
		a := Name(r)
		if !a.Known && a.Risk.String() != "privilege" {
			t.Fatalf("unknown call with risk %s", a.Risk)
		}
		if a.Known && a.IAMAction == "" {
			t.Fatal("known call without an IAM action")
		}
	})
}
