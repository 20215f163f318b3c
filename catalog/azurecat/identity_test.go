package azurecat

import (
	"reflect"
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

func TestBodyPermissions(t *testing.T) {
	vm := catalog.Action{IAMAction: "Microsoft.Compute/virtualMachines/write"}
	id1, id2 := rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/b", rg+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a"
	for _, tc := range []struct {
		name string
		body string
		want []catalog.Permission
		ok   bool
	}{
		{"two identities, in order", `{"identity":{"type":"UserAssigned","userAssignedIdentities":{"` + id1 + `":{},"` + id2 + `":{}}}}`,
			[]catalog.Permission{{Action: AssignIdentityAction, Resource: id2}, {Action: AssignIdentityAction, Resource: id1}}, true},
		{"member names in any case", `{"IDENTITY":{"UserAssignedIdentities":{"` + id1 + `":{}}}}`, []catalog.Permission{{Action: AssignIdentityAction, Resource: id1}}, true},
		{"system-assigned only", `{"identity":{"type":"SystemAssigned"}}`, nil, true},
		{"no identity", `{"location":"westeurope"}`, nil, true},
		{"not a resource ID", `{"identity":{"userAssignedIdentities":{"deployer":{}}}}`, nil, false},
		{"not json", `{`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := BodyPermissions(vm, []byte(tc.body))
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("BodyPermissions = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if NeedsBody(catalog.Action{IAMAction: "Microsoft.Compute/virtualMachines/delete"}) || !NeedsBody(vm) {
		t.Error("NeedsBody")
	}
}
