package gcpcat

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

func TestNameStorageXML(t *testing.T) {
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			hd.Add(kv[i], kv[i+1])
		}
		return hd
	}
	const bkt, obj = "projects/_/buckets/bkt", "projects/_/buckets/bkt/objects/dir/a b.txt"
	tests := []struct {
		name    string
		req     Request
		id, res string
		account string
	}{
		{"list buckets", Request{Method: "GET", Path: "/"}, "storage.buckets.list", "", ""},
		{"list buckets of a project", Request{Method: "GET", Path: "/", Header: h("x-goog-project-id", "p1")}, "storage.buckets.list", "", "p1"},
		{"create bucket", Request{Method: "PUT", Path: "/bkt", Header: h("x-goog-project-id", "p1")}, "storage.buckets.insert", bkt, "p1"},
		{"delete bucket", Request{Method: "DELETE", Path: "/bkt"}, "storage.buckets.delete", bkt, ""},
		{"bucket metadata", Request{Method: "HEAD", Path: "/bkt"}, "storage.buckets.get", bkt, ""},
		{"bucket location", Request{Method: "GET", Path: "/bkt", RawQuery: "location"}, "storage.buckets.get", bkt, ""},
		{"list objects", Request{Method: "GET", Path: "/bkt", RawQuery: "list-type=2&prefix=dir%2F&delimiter=%2F"}, "storage.objects.list", bkt, ""},
		{"list uploads", Request{Method: "GET", Path: "/bkt", RawQuery: "uploads"}, "storage.objects.list", bkt, ""},
		{"read object (go client)", Request{Method: "GET", Path: "/bkt/dir%2Fa%20b.txt"}, "storage.objects.get", obj, ""},
		{"read object, slash as is", Request{Method: "GET", Path: "/bkt/dir/a%20b.txt", RawQuery: "generation=7"}, "storage.objects.get", obj, ""},
		{"object metadata", Request{Method: "HEAD", Path: "/bkt/dir/a%20b.txt"}, "storage.objects.get", obj, ""},
		{"write object", Request{Method: "PUT", Path: "/bkt/dir/a%20b.txt"}, "storage.objects.insert", bkt, ""},
		{"start resumable", Request{Method: "POST", Path: "/bkt/dir/a%20b.txt", Header: h("x-goog-resumable", "start")}, "storage.objects.insert", bkt, ""},
		{"resumable chunk", Request{Method: "PUT", Path: "/bkt/dir/a%20b.txt", RawQuery: "upload_id=AEnB2"}, "storage.objects.insert", bkt, ""},
		{"start multipart", Request{Method: "POST", Path: "/bkt/o", RawQuery: "uploads"}, "storage.objects.insert", bkt, ""},
		{"upload part", Request{Method: "PUT", Path: "/bkt/o", RawQuery: "partNumber=2&uploadId=X"}, "storage.objects.insert", bkt, ""},
		{"list parts", Request{Method: "GET", Path: "/bkt/o", RawQuery: "uploadId=X"}, "storage.objects.insert", bkt, ""},
		{"complete multipart", Request{Method: "POST", Path: "/bkt/o", RawQuery: "uploadId=X"}, "storage.objects.insert", bkt, ""},
		{"abort multipart", Request{Method: "DELETE", Path: "/bkt/o", RawQuery: "uploadId=X"}, "storage.objects.insert", bkt, ""},
		{"delete object", Request{Method: "DELETE", Path: "/bkt/dir/a%20b.txt"}, "storage.objects.delete", obj, ""},
		{"delete a version", Request{Method: "DELETE", Path: "/bkt/dir/a%20b.txt", RawQuery: "generation=3"}, "storage.objects.delete", obj, ""},
		{"copy names its source", Request{Method: "PUT", Path: "/bkt/dst", Header: h("x-goog-copy-source", "/secret-bkt/pay%20roll.csv")}, "storage.objects.copy", "projects/_/buckets/bkt/objects/dst", "projects/_/buckets/secret-bkt/objects/pay roll.csv"},
		{"interop copy", Request{Method: "PUT", Path: "/bkt/dst", Header: h("x-amz-copy-source", "src-bkt/k?versionId=3")}, "storage.objects.copy", "projects/_/buckets/bkt/objects/dst", "projects/_/buckets/src-bkt/objects/k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Host = "storage.googleapis.com"
			got := Name(tt.req)
			op, _ := Lookup(tt.id)
			want := catalog.Action{Cloud: catalog.GCP, Service: "storage", Operation: op.Operation, IAMAction: tt.id,
				Resource: tt.res, Account: tt.account, Risk: op.Risk, Known: true}
			if tt.id == "storage.objects.copy" {
				want.Account, want.Source = "", tt.account
				want.Also = []catalog.Permission{{Action: "storage.objects.get", Resource: tt.account}}
			}
			if op.Operation == "" || !reflect.DeepEqual(got, want) {
				t.Errorf("Name(%+v)\n got %+v\nwant %+v", tt.req, got, want)
			}
		})
	}
}

func TestNameStorageXMLUnknown(t *testing.T) {
	for name, req := range map[string]Request{
		"bucket acl":             {Method: "GET", Path: "/bkt", RawQuery: "acl"},
		"set object acl":         {Method: "PUT", Path: "/bkt/o", RawQuery: "acl"},
		"set lifecycle":          {Method: "PUT", Path: "/bkt", RawQuery: "lifecycle"},
		"compose":                {Method: "PUT", Path: "/bkt/o", RawQuery: "compose"},
		"signed url":             {Method: "GET", Path: "/bkt/o", RawQuery: "X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=ab"},
		"form post":              {Method: "POST", Path: "/bkt"},
		"post without a session": {Method: "POST", Path: "/bkt/o"},
		"part copy":              {Method: "PUT", Path: "/bkt/o", RawQuery: "partNumber=1&uploadId=X", Header: http.Header{"X-Goog-Copy-Source": {"/a-b/c"}}},
		"two copy sources":       {Method: "PUT", Path: "/bkt/o", Header: http.Header{"X-Goog-Copy-Source": {"/aaa/c"}, "X-Amz-Copy-Source": {"/bbb/c"}}},
		"bad copy source":        {Method: "PUT", Path: "/bkt/o", Header: http.Header{"X-Goog-Copy-Source": {"/B!/c"}}},
		"bad bucket name":        {Method: "GET", Path: "/Bad_Bucket!/o"},
		"json root not a bucket": {Method: "GET", Path: "/storage/v9/b/bkt"},
		"bad escape":             {Method: "GET", Path: "/bkt/%zz"},
		"list buckets write":     {Method: "POST", Path: "/"},
	} {
		req.Host = "storage.googleapis.com"
		if got := Name(req); got.Known || got.Operation != catalog.UnknownOperation || got.Service != "storage" {
			t.Errorf("%s: Name(%+v) = %+v, want storage.Unknown", name, req, got)
		}
	}
	// Other Google hosts have no XML API.
	if got := Name(Request{Host: "compute.googleapis.com", Method: "GET", Path: "/bkt/o"}); got.Known {
		t.Errorf("an XML-style path on compute = %+v, want Unknown", got)
	}
}

func TestNameStorageACLChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		also []catalog.Permission
	}{
		{"json upload with predefinedAcl", Request{Method: "POST", Path: "/upload/storage/v1/b/bkt/o", RawQuery: "uploadType=media&name=x&predefinedAcl=publicRead"},
			[]catalog.Permission{{Action: "storage.objects.setIamPolicy", Resource: "projects/_/buckets/bkt"}}},
		{"json copy with destinationPredefinedAcl", Request{Method: "POST", Path: "/storage/v1/b/a/o/x/copyTo/b/bkt/o/y", RawQuery: "destinationPredefinedAcl=publicRead"},
			[]catalog.Permission{{Action: "storage.objects.get", Resource: "projects/_/buckets/a/objects/x"}, {Action: "storage.objects.setIamPolicy", Resource: "projects/_/buckets/bkt/objects/y"}}},
		{"json bucket with a default object ACL", Request{Method: "POST", Path: "/storage/v1/b", RawQuery: "project=p&predefinedDefaultObjectAcl=publicRead"},
			[]catalog.Permission{{Action: "storage.buckets.setIamPolicy"}}},
		{"xml upload with x-goog-acl", Request{Method: "PUT", Path: "/bkt/o", Header: http.Header{"X-Goog-Acl": {"public-read"}}},
			[]catalog.Permission{{Action: "storage.objects.setIamPolicy", Resource: "projects/_/buckets/bkt"}}},
		{"xml bucket with x-goog-acl", Request{Method: "PUT", Path: "/bkt", Header: http.Header{"X-Goog-Acl": {"public-read"}}},
			[]catalog.Permission{{Action: "storage.buckets.setIamPolicy", Resource: "projects/_/buckets/bkt"}}},
		{"plain upload", Request{Method: "POST", Path: "/upload/storage/v1/b/bkt/o", RawQuery: "uploadType=media&name=x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Host = "storage.googleapis.com"
			if got := Name(tc.req); !got.Known || !reflect.DeepEqual(got.Also, tc.also) {
				t.Errorf("Name(%+v) = %s also %v, want also %v", tc.req, got.IAMAction, got.Also, tc.also)
			}
		})
	}
}
