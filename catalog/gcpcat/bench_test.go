package gcpcat

import (
	"testing"
)

var benchRequests = []Request{
	{Host: "compute.googleapis.com", Method: "DELETE", Path: "/compute/v1/projects/p1/zones/us-central1-a/instances/vm-1"},
	{Host: "storage.googleapis.com", Method: "GET", Path: "/storage/v1/b/bkt/o/dir%2Ffile.txt", RawQuery: "alt=media"},
	{Host: "iamcredentials.googleapis.com", Method: "POST", Path: "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"},
	{Host: "aiplatform.googleapis.com", Method: "GET", Path: "/v1/projects/p1/locations/us-central1/endpoints/42"},
	{Host: "firestore.googleapis.com", Method: "GET", Path: "/v1/projects/p1/databases/(default)/documents/users/u1/orders/o9"},
}

func BenchmarkNameGCP(b *testing.B) {
	mustIndex()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		Name(benchRequests[i%len(benchRequests)])
	}
}

func BenchmarkLoadIndexGCP(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		t, err := decodeTable(discoveryTable)
		if err != nil {
			b.Fatal(err)
		}
		buildIndex(t)
	}
}

func FuzzNameGCP(f *testing.F) {
	for _, r := range benchRequests {
		f.Add(r.Host, r.Method, r.Path, r.RawQuery)
	}
	f.Add("compute.googleapis.com", "GET", "/compute/v1/projects/a:b:c", "project=%zz")
	f.Add("www.googleapis.com", "POST", "//::/", "")
	f.Fuzz(func(t *testing.T, host, method, path, query string) {
		a := Name(Request{Host: host, Method: method, Path: path, RawQuery: query})
		if a.Cloud != "gcp" || a.IAMAction == "" {
			t.Fatalf("Name returned %+v", a)
		}
		if a.Known {
			if _, ok := Lookup(a.IAMAction); !ok {
				t.Fatalf("named %s, which Lookup does not know", a.IAMAction)
			}
		}
	})
}
