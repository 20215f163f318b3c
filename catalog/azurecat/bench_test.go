package azurecat

import (
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

var benchRequests = []Request{
	{Method: "DELETE", Path: rg + "/providers/Microsoft.Compute/virtualMachines/vm1", RawQuery: "api-version=2024-07-01"},
	{Method: "POST", Path: rg + "/providers/Microsoft.Storage/storageAccounts/sa1/listKeys", RawQuery: "api-version=2023-05-01"},
	{Method: "PUT", Path: rg + "/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/x"},
	{Method: "GET", Path: sub + "/resourcegroups"},
}

func BenchmarkNameAzure(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Name(benchRequests[i%len(benchRequests)])
	}
}

func FuzzNameAzure(f *testing.F) {
	for _, r := range benchRequests {
		f.Add(r.Method, r.Path)
	}
	f.Add("POST", "/providers/x.y/a/b/providers/c.d/e")
	f.Add("GET", "/subscriptions/%zz/resourceGroups/%2F")
	f.Fuzz(func(t *testing.T, method, path string) {
		a := Name(Request{Method: method, Path: path})
		if a.Cloud != catalog.Azure || a.IAMAction == "" {
			t.Fatalf("Name returned %+v", a)
		}
		if !a.Known {
			return
		}
		if a.IAMAction != a.Service+"/"+a.Operation {
			t.Fatalf("IAMAction %q is not Service/Operation (%q, %q)", a.IAMAction, a.Service, a.Operation)
		}
		if _, ok := Describe(a.IAMAction); !ok && a.Service != "" {
			// Named operations must be describable, except where the path carried odd
			// characters that no RBAC name has (checked by Describe's own table).
			t.Logf("Describe(%q) refused a name Name produced", a.IAMAction)
		}
	})
}
