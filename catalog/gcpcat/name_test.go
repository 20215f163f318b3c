package gcpcat

import (
	"reflect"
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

func TestName(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want catalog.Action
	}{
		{"compute delete instance", Request{Host: "compute.googleapis.com", Method: "DELETE", Path: "/compute/v1/projects/p1/zones/us-central1-a/instances/vm-1"},
			catalog.Action{Service: "compute", Operation: "instances.delete", IAMAction: "compute.instances.delete", Resource: "projects/p1/zones/us-central1-a/instances/vm-1", Account: "p1", Region: "us-central1-a", Risk: catalog.Destructive}},
		{"compute custom method path", Request{Host: "compute.googleapis.com:443", Method: "POST", Path: "/compute/v1/projects/p1/zones/z/instances/vm-1/start"},
			catalog.Action{Service: "compute", Operation: "instances.start", IAMAction: "compute.instances.start", Resource: "projects/p1/zones/z/instances/vm-1", Account: "p1", Region: "z", Risk: catalog.Write}},
		{"compute domain-scoped project", Request{Host: "compute.googleapis.com", Method: "GET", Path: "/compute/v1/projects/example.com:proj"},
			catalog.Action{Service: "compute", Operation: "projects.get", IAMAction: "compute.projects.get", Resource: "projects/example.com:proj", Account: "example.com:proj", Risk: catalog.Read}},
		{"compute regional", Request{Host: "compute.googleapis.com", Method: "GET", Path: "/compute/v1/projects/p1/regions/europe-west1/subnetworks"},
			catalog.Action{Service: "compute", Operation: "subnetworks.list", IAMAction: "compute.subnetworks.list", Resource: "projects/p1/regions/europe-west1", Account: "p1", Region: "europe-west1", Risk: catalog.Read}},
		{"generateAccessToken verb", Request{Host: "iamcredentials.googleapis.com", Method: "POST", Path: "/v1/projects/-/serviceAccounts/deployer@my-proj.iam.gserviceaccount.com:generateAccessToken"},
			catalog.Action{Service: "iamcredentials", Operation: "projects.serviceAccounts.generateAccessToken", IAMAction: "iamcredentials.projects.serviceAccounts.generateAccessToken", Resource: "projects/-/serviceAccounts/deployer@my-proj.iam.gserviceaccount.com", Account: "my-proj", Risk: catalog.Privilege}},
		{"setIamPolicy on project", Request{Host: "cloudresourcemanager.googleapis.com", Method: "POST", Path: "/v1/projects/p1:setIamPolicy"},
			catalog.Action{Service: "cloudresourcemanager", Operation: "projects.setIamPolicy", IAMAction: "cloudresourcemanager.projects.setIamPolicy", Resource: "projects/p1", Account: "p1", Risk: catalog.Privilege}},
		{"storage object get with slashes", Request{Host: "storage.googleapis.com", Method: "GET", Path: "/storage/v1/b/bkt/o/dir%2Fsub%2Ffile.txt", RawQuery: "alt=media"},
			catalog.Action{Service: "storage", Operation: "objects.get", IAMAction: "storage.objects.get", Resource: "projects/_/buckets/bkt/objects/dir/sub/file.txt", Risk: catalog.Read}},
		{"storage object delete", Request{Host: "storage.googleapis.com", Method: "DELETE", Path: "/storage/v1/b/bkt/o/a%2Fb"},
			catalog.Action{Service: "storage", Operation: "objects.delete", IAMAction: "storage.objects.delete", Resource: "projects/_/buckets/bkt/objects/a/b", Risk: catalog.Destructive}},
		{"storage upload", Request{Host: "storage.googleapis.com", Method: "POST", Path: "/upload/storage/v1/b/bkt/o", RawQuery: "uploadType=multipart&name=x"},
			catalog.Action{Service: "storage", Operation: "objects.insert", IAMAction: "storage.objects.insert", Resource: "projects/_/buckets/bkt", Risk: catalog.Write}},
		{"storage resumable upload", Request{Host: "storage.googleapis.com", Method: "POST", Path: "/resumable/upload/storage/v1/b/bkt/o"},
			catalog.Action{Service: "storage", Operation: "objects.insert", IAMAction: "storage.objects.insert", Resource: "projects/_/buckets/bkt", Risk: catalog.Write}},
		{"storage resumable upload chunk", Request{Host: "storage.googleapis.com", Method: "PUT", Path: "/upload/storage/v1/b/bkt/o", RawQuery: "uploadType=resumable&name=x&upload_id=ADPycdu"},
			catalog.Action{Service: "storage", Operation: "objects.insert", IAMAction: "storage.objects.insert", Resource: "projects/_/buckets/bkt", Risk: catalog.Write}},
		{"storage resumable upload cancel", Request{Host: "storage.googleapis.com", Method: "DELETE", Path: "/resumable/upload/storage/v1/b/bkt/o", RawQuery: "upload_id=ADPycdu"},
			catalog.Action{Service: "storage", Operation: "objects.insert", IAMAction: "storage.objects.insert", Resource: "projects/_/buckets/bkt", Risk: catalog.Write}},
		{"storage media download path", Request{Host: "storage.googleapis.com", Method: "GET", Path: "/download/storage/v1/b/bkt/o/dir%2Fhello.txt", RawQuery: "alt=media&generation=17"},
			catalog.Action{Service: "storage", Operation: "objects.get", IAMAction: "storage.objects.get", Resource: "projects/_/buckets/bkt/objects/dir/hello.txt", Risk: catalog.Read}},
		{"storage bucket list project from query", Request{Host: "storage.googleapis.com", Method: "GET", Path: "/storage/v1/b", RawQuery: "project=my%2Dproj&alt=json"},
			catalog.Action{Service: "storage", Operation: "buckets.list", IAMAction: "storage.buckets.list", Account: "my-proj", Risk: catalog.Read}},
		{"storage copyTo", Request{Host: "storage.googleapis.com", Method: "POST", Path: "/storage/v1/b/src/o/a%2Fb/copyTo/b/dst/o/c"},
			catalog.Action{Service: "storage", Operation: "objects.copy", IAMAction: "storage.objects.copy", Resource: "projects/_/buckets/dst/objects/c",
				Source: "projects/_/buckets/src/objects/a/b", Also: []catalog.Permission{{Action: "storage.objects.get", Resource: "projects/_/buckets/src/objects/a/b"}}, Risk: catalog.Write}},
		{"storage rewriteTo", Request{Host: "storage.googleapis.com", Method: "POST", Path: "/storage/v1/b/src/o/a%2Fb/rewriteTo/b/dst/o/c%2Fd"},
			catalog.Action{Service: "storage", Operation: "objects.rewrite", IAMAction: "storage.objects.rewrite", Resource: "projects/_/buckets/dst/objects/c/d",
				Source: "projects/_/buckets/src/objects/a/b", Also: []catalog.Permission{{Action: "storage.objects.get", Resource: "projects/_/buckets/src/objects/a/b"}}, Risk: catalog.Write}},
		{"one-platform get", Request{Host: "run.googleapis.com", Method: "GET", Path: "/v2/projects/p1/locations/us-east1/services/api"},
			catalog.Action{Service: "run", Operation: "projects.locations.services.get", IAMAction: "run.projects.locations.services.get", Resource: "projects/p1/locations/us-east1/services/api", Account: "p1", Region: "us-east1", Risk: catalog.Read}},
		{"regional endpoint host", Request{Host: "us-central1-aiplatform.googleapis.com", Method: "DELETE", Path: "/v1/projects/p1/locations/us-central1/endpoints/42"},
			catalog.Action{Service: "aiplatform", Operation: "projects.locations.endpoints.delete", IAMAction: "aiplatform.projects.locations.endpoints.delete", Resource: "projects/p1/locations/us-central1/endpoints/42", Account: "p1", Region: "us-central1", Risk: catalog.Destructive}},
		{"secret access", Request{Host: "secretmanager.googleapis.com", Method: "GET", Path: "/v1/projects/p1/secrets/db/versions/latest:access"},
			catalog.Action{Service: "secretmanager", Operation: "projects.secrets.versions.access", IAMAction: "secretmanager.projects.secrets.versions.access", Resource: "projects/p1/secrets/db/versions/latest", Account: "p1", Risk: catalog.Privilege}},
		{"sqladmin ids are sql.*", Request{Host: "sqladmin.googleapis.com", Method: "DELETE", Path: "/v1/projects/p1/instances/db1"},
			catalog.Action{Service: "sqladmin", Operation: "instances.delete", IAMAction: "sql.instances.delete", Resource: "projects/p1/instances/db1", Account: "p1", Risk: catalog.Destructive}},
		{"greedy name with slashes", Request{Host: "firestore.googleapis.com", Method: "PATCH", Path: "/v1/projects/p1/databases/(default)/documents/users/u1/orders/o9"},
			catalog.Action{Service: "firestore", Operation: "projects.databases.documents.patch", IAMAction: "firestore.projects.databases.documents.patch", Resource: "projects/p1/databases/(default)/documents/users/u1/orders/o9", Account: "p1", Risk: catalog.Write}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Cloud, tt.want.Known = catalog.GCP, true
			if got := Name(tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Name(%+v)\n got %+v\nwant %+v", tt.req, got, tt.want)
			}
		})
	}
}

func TestNameUnknown(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		service string
	}{
		{"unknown host", Request{Host: "evil.example.com", Method: "GET", Path: "/compute/v1/projects/p"}, "evil"},
		{"unknown path", Request{Host: "compute.googleapis.com", Method: "GET", Path: "/compute/v1/nothing/here"}, "compute"},
		{"wrong method", Request{Host: "compute.googleapis.com", Method: "TRACE", Path: "/compute/v1/projects/p/zones/z/instances/i"}, "compute"},
		{"batch", Request{Host: "compute.googleapis.com", Method: "POST", Path: "/batch/compute/v1"}, "compute"},
		{"chunk without a session", Request{Host: "storage.googleapis.com", Method: "PUT", Path: "/upload/storage/v1/b/bkt/o", RawQuery: "uploadType=resumable"}, "storage"},
		{"upload_id outside an upload path", Request{Host: "storage.googleapis.com", Method: "PUT", Path: "/storage/v1/b/bkt/o", RawQuery: "upload_id=x"}, "storage"},
		{"download prefix on a write", Request{Host: "storage.googleapis.com", Method: "DELETE", Path: "/download/storage/v1/b/bkt/o/x"}, "storage"},
		{"empty segment", Request{Host: "compute.googleapis.com", Method: "GET", Path: "/compute/v1/projects//zones"}, "compute"},
		{"empty path", Request{Host: "compute.googleapis.com", Method: "GET", Path: ""}, "compute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(tt.req)
			if got.Known || got.Operation != catalog.UnknownOperation || got.Service != tt.service || got.Risk != catalog.Privilege {
				t.Errorf("Name(%+v) = %+v, want unknown of %s", tt.req, got, tt.service)
			}
		})
	}
}

func TestServiceForHost(t *testing.T) {
	tests := []struct {
		host, api string
		ok        bool
	}{
		{"compute.googleapis.com", "compute", true},
		{"COMPUTE.googleapis.com:443", "compute", true},
		{"compute.mtls.googleapis.com", "compute", true},
		{"storage.googleapis.com", "storage", true},
		{"sqladmin.googleapis.com", "sqladmin", true},
		{"europe-west4-aiplatform.googleapis.com", "aiplatform", true},
		{"www.googleapis.com", "", true},
		{"googleapis.com.evil.example", "", false},
		{"metadata.google.internal", "", false},
	}
	for _, tt := range tests {
		api, ok := ServiceForHost(tt.host)
		if api != tt.api || ok != tt.ok {
			t.Errorf("ServiceForHost(%q) = %q, %v; want %q, %v", tt.host, api, ok, tt.api, tt.ok)
		}
	}
}

func TestLookupAndSearch(t *testing.T) {
	op, ok := Lookup("compute.instances.delete")
	if !ok || op.Method != "DELETE" || op.Path != "/compute/v1/projects/{project}/zones/{zone}/instances/{instance}" || op.Risk != catalog.Destructive {
		t.Fatalf("Lookup(compute.instances.delete) = %+v, %v", op, ok)
	}
	if _, ok := Lookup("compute.instances.nothing"); ok {
		t.Fatal("Lookup found a method that does not exist")
	}
	hits := Search("compute.instances.delete", 5)
	if len(hits) == 0 || hits[0].IAMAction != "compute.instances.delete" {
		t.Fatalf("Search exact: %+v", hits)
	}
	if hits := Search("setIamPolicy storage buckets", 0); len(hits) == 0 {
		t.Fatal("Search found no storage setIamPolicy")
	} else {
		for _, h := range hits {
			if h.Risk != catalog.Privilege {
				t.Errorf("%s: risk %s, want privilege", h.IAMAction, h.Risk)
			}
		}
	}
	if n := len(Methods()); n < 15000 {
		t.Fatalf("Methods() = %d methods, want the whole discovery set", n)
	}
}
