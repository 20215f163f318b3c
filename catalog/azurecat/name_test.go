package azurecat

import (
	"reflect"
	"testing"

	"github.com/airlockhq/airlock/catalog"
)

const (
	sub = "/subscriptions/00000000-0000-0000-0000-000000000001"
	rg  = sub + "/resourceGroups/rg1"
)

func TestName(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		action   string
		resource string
		region   string
		risk     catalog.Risk
	}{
		// Virtual machines.
		{"vm get", "GET", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "Microsoft.Compute/virtualMachines/read", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Read},
		{"vm create", "PUT", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "Microsoft.Compute/virtualMachines/write", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Write},
		{"vm update", "PATCH", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "Microsoft.Compute/virtualMachines/write", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Write},
		{"vm delete", "DELETE", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "Microsoft.Compute/virtualMachines/delete", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Destructive},
		{"vm start", "POST", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/start", "Microsoft.Compute/virtualMachines/start/action", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Write},
		{"vm deallocate", "POST", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/deallocate", "Microsoft.Compute/virtualMachines/deallocate/action", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Destructive},
		{"vm list in group", "GET", rg + "/providers/Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachines/read", rg, "", catalog.Read},
		{"vm list in subscription", "GET", sub + "/providers/Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachines/read", sub, "", catalog.Read},
		{"vm instance view", "GET", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/instanceView", "Microsoft.Compute/virtualMachines/instanceView/read", rg + "/providers/Microsoft.Compute/virtualMachines/vm1", "", catalog.Read},
		{"vm extension", "PUT", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/extensions/ext1", "Microsoft.Compute/virtualMachines/extensions/write", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/extensions/ext1", "", catalog.Privilege},
		{"vmss vm restart", "POST", rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0/restart", "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/restart/action", rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0", "", catalog.Write},
		// Disks.
		{"disk delete", "DELETE", rg + "/providers/Microsoft.Compute/disks/d1", "Microsoft.Compute/disks/delete", rg + "/providers/Microsoft.Compute/disks/d1", "", catalog.Destructive},
		{"disk grant access", "POST", rg + "/providers/Microsoft.Compute/disks/d1/beginGetAccess", "Microsoft.Compute/disks/beginGetAccess/action", rg + "/providers/Microsoft.Compute/disks/d1", "", catalog.Write},
		{"snapshot create", "PUT", rg + "/providers/Microsoft.Compute/snapshots/s1", "Microsoft.Compute/snapshots/write", rg + "/providers/Microsoft.Compute/snapshots/s1", "", catalog.Write},
		// Networks.
		{"vnet create", "PUT", rg + "/providers/Microsoft.Network/virtualNetworks/v1", "Microsoft.Network/virtualNetworks/write", rg + "/providers/Microsoft.Network/virtualNetworks/v1", "", catalog.Write},
		{"subnet write", "PUT", rg + "/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1", "Microsoft.Network/virtualNetworks/subnets/write", rg + "/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1", "", catalog.Write},
		{"subnet delete", "DELETE", rg + "/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1", "Microsoft.Network/virtualNetworks/subnets/delete", rg + "/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1", "", catalog.Destructive},
		{"subnet list", "GET", rg + "/providers/Microsoft.Network/virtualNetworks/v1/subnets", "Microsoft.Network/virtualNetworks/subnets/read", rg + "/providers/Microsoft.Network/virtualNetworks/v1", "", catalog.Read},
		{"nsg rule", "PUT", rg + "/providers/Microsoft.Network/networkSecurityGroups/nsg/securityRules/allow-ssh", "Microsoft.Network/networkSecurityGroups/securityRules/write", rg + "/providers/Microsoft.Network/networkSecurityGroups/nsg/securityRules/allow-ssh", "", catalog.Write},
		{"public ip list", "GET", sub + "/providers/Microsoft.Network/publicIPAddresses", "Microsoft.Network/publicIPAddresses/read", sub, "", catalog.Read},
		// Storage.
		{"storage account create", "PUT", rg + "/providers/Microsoft.Storage/storageAccounts/sa1", "Microsoft.Storage/storageAccounts/write", rg + "/providers/Microsoft.Storage/storageAccounts/sa1", "", catalog.Write},
		{"storage listKeys", "POST", rg + "/providers/Microsoft.Storage/storageAccounts/sa1/listKeys", "Microsoft.Storage/storageAccounts/listKeys/action", rg + "/providers/Microsoft.Storage/storageAccounts/sa1", "", catalog.Privilege},
		{"storage regenerateKey", "POST", rg + "/providers/Microsoft.Storage/storageAccounts/sa1/regenerateKey", "Microsoft.Storage/storageAccounts/regenerateKey/action", rg + "/providers/Microsoft.Storage/storageAccounts/sa1", "", catalog.Privilege},
		{"blob container", "PUT", rg + "/providers/Microsoft.Storage/storageAccounts/sa1/blobServices/default/containers/c1", "Microsoft.Storage/storageAccounts/blobServices/containers/write", rg + "/providers/Microsoft.Storage/storageAccounts/sa1/blobServices/default/containers/c1", "", catalog.Write},
		{"storage name check", "POST", sub + "/providers/Microsoft.Storage/checkNameAvailability", "Microsoft.Storage/checkNameAvailability/action", sub, "", catalog.Write},
		// Role assignments at several scopes: the last provider decides.
		{"role assignment on subscription", "PUT", sub + "/providers/Microsoft.Authorization/roleAssignments/ra1", "Microsoft.Authorization/roleAssignments/write", sub + "/providers/Microsoft.Authorization/roleAssignments/ra1", "", catalog.Privilege},
		{"role assignment on group", "DELETE", rg + "/providers/Microsoft.Authorization/roleAssignments/ra1", "Microsoft.Authorization/roleAssignments/delete", rg + "/providers/Microsoft.Authorization/roleAssignments/ra1", "", catalog.Privilege},
		{"role assignment on storage account", "PUT", rg + "/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/x", "Microsoft.Authorization/roleAssignments/write", rg + "/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/x", "", catalog.Privilege},
		{"role assignment on management group", "PUT", "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/x", "Microsoft.Authorization/roleAssignments/write", "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/x", "", catalog.Privilege},
		{"role assignment at root", "GET", "/providers/Microsoft.Authorization/roleAssignments", "Microsoft.Authorization/roleAssignments/read", "", "", catalog.Read},
		{"role definitions list", "GET", sub + "/providers/Microsoft.Authorization/roleDefinitions", "Microsoft.Authorization/roleDefinitions/read", sub, "", catalog.Read},
		{"lowercase structural segments", "DELETE", "/SUBSCRIPTIONS/s1/resourcegroups/rg1/PROVIDERS/Microsoft.Compute/virtualMachines/vm1", "Microsoft.Compute/virtualMachines/delete", "/SUBSCRIPTIONS/s1/resourcegroups/rg1/PROVIDERS/Microsoft.Compute/virtualMachines/vm1", "", catalog.Destructive},
		// Resource groups and subscriptions.
		{"resource group create", "PUT", rg, "Microsoft.Resources/subscriptions/resourceGroups/write", rg, "", catalog.Write},
		{"resource group delete lowercase", "DELETE", sub + "/resourcegroups/rg1", "Microsoft.Resources/subscriptions/resourceGroups/delete", sub + "/resourcegroups/rg1", "", catalog.Destructive},
		{"resource group exists", "HEAD", rg, "Microsoft.Resources/subscriptions/resourceGroups/read", rg, "", catalog.Read},
		{"resource group list", "GET", sub + "/resourcegroups", "Microsoft.Resources/subscriptions/resourceGroups/read", sub, "", catalog.Read},
		{"resources in group", "GET", rg + "/resources", "Microsoft.Resources/subscriptions/resourceGroups/resources/read", rg, "", catalog.Read},
		{"export template", "POST", rg + "/exportTemplate", "Microsoft.Resources/subscriptions/resourceGroups/exportTemplate/action", rg, "", catalog.Write},
		{"subscription get", "GET", sub, "Microsoft.Resources/subscriptions/read", sub, "", catalog.Read},
		{"subscriptions list", "GET", "/subscriptions", "Microsoft.Resources/subscriptions/read", "", "", catalog.Read},
		{"subscription locations", "GET", sub + "/locations", "Microsoft.Resources/subscriptions/locations/read", sub, "", catalog.Read},
		{"tag names", "PUT", sub + "/tagNames/env", "Microsoft.Resources/subscriptions/tagNames/write", sub + "/tagNames/env", "", catalog.Write},
		{"tenants list", "GET", "/tenants", "Microsoft.Resources/tenants/read", "", "", catalog.Read},
		// Deployments.
		{"deployment create", "PUT", rg + "/providers/Microsoft.Resources/deployments/d1", "Microsoft.Resources/deployments/write", rg + "/providers/Microsoft.Resources/deployments/d1", "", catalog.Privilege}, // a deployment creates whatever its template declares
		{"deployment validate", "POST", rg + "/providers/Microsoft.Resources/deployments/d1/validate", "Microsoft.Resources/deployments/validate/action", rg + "/providers/Microsoft.Resources/deployments/d1", "", catalog.Write},
		{"deployment operations", "GET", rg + "/providers/Microsoft.Resources/deployments/d1/operations", "Microsoft.Resources/deployments/operations/read", rg + "/providers/Microsoft.Resources/deployments/d1", "", catalog.Read},
		{"subscription deployment", "PUT", sub + "/providers/Microsoft.Resources/deployments/d2", "Microsoft.Resources/deployments/write", sub + "/providers/Microsoft.Resources/deployments/d2", "", catalog.Privilege},
		// Locations and provider-level operations.
		{"compute usages", "GET", sub + "/providers/Microsoft.Compute/locations/westeurope/usages", "Microsoft.Compute/locations/usages/read", sub + "/providers/Microsoft.Compute/locations/westeurope", "westeurope", catalog.Read},
		{"async operation poll", "GET", sub + "/providers/Microsoft.Compute/locations/eastus/operations/abc-123", "Microsoft.Compute/locations/operations/read", sub + "/providers/Microsoft.Compute/locations/eastus/operations/abc-123", "eastus", catalog.Read},
		{"provider register", "POST", sub + "/providers/Microsoft.Compute/register", "Microsoft.Compute/register/action", sub, "", catalog.Write},
		{"provider get", "GET", sub + "/providers/Microsoft.Compute", "Microsoft.Resources/subscriptions/providers/read", sub + "/providers/Microsoft.Compute", "", catalog.Read},
		{"providers list", "GET", sub + "/providers", "Microsoft.Resources/subscriptions/providers/read", sub, "", catalog.Read},
		{"provider operations list", "GET", "/providers/Microsoft.Compute/operations", "Microsoft.Compute/operations/read", "", "", catalog.Read},
		{"provider operations metadata", "GET", "/providers/Microsoft.Authorization/providerOperations/Microsoft.Compute", "Microsoft.Authorization/providerOperations/read", "/providers/Microsoft.Authorization/providerOperations/Microsoft.Compute", "", catalog.Read},
		// Key Vault and managed identities.
		{"key vault create", "PUT", rg + "/providers/Microsoft.KeyVault/vaults/kv1", "Microsoft.KeyVault/vaults/write", rg + "/providers/Microsoft.KeyVault/vaults/kv1", "", catalog.Write},
		{"key vault access policy", "PUT", rg + "/providers/Microsoft.KeyVault/vaults/kv1/accessPolicies/add", "Microsoft.KeyVault/vaults/accessPolicies/write", rg + "/providers/Microsoft.KeyVault/vaults/kv1/accessPolicies/add", "", catalog.Privilege},
		{"key vault purge", "POST", sub + "/providers/Microsoft.KeyVault/locations/westus/deletedVaults/kv1/purge", "Microsoft.KeyVault/locations/deletedVaults/purge/action", sub + "/providers/Microsoft.KeyVault/locations/westus/deletedVaults/kv1", "westus", catalog.Destructive},
		{"managed identity create", "PUT", rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1", "Microsoft.ManagedIdentity/userAssignedIdentities/write", rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1", "", catalog.Privilege},
		{"federated credential", "PUT", rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write", rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/gh", "", catalog.Privilege},
		{"identity on vm scope", "GET", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.ManagedIdentity/identities/default", "Microsoft.ManagedIdentity/identities/read", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.ManagedIdentity/identities/default", "", catalog.Read},
		// Other providers.
		{"web app config", "PUT", rg + "/providers/Microsoft.Web/sites/app1/config/web", "Microsoft.Web/sites/config/write", rg + "/providers/Microsoft.Web/sites/app1/config/web", "", catalog.Write},
		{"web publishing credentials", "POST", rg + "/providers/Microsoft.Web/sites/app1/config/publishingcredentials/list", "Microsoft.Web/sites/config/list/action", rg + "/providers/Microsoft.Web/sites/app1/config/publishingcredentials", "", catalog.Privilege},
		{"aks admin credentials", "POST", rg + "/providers/Microsoft.ContainerService/managedClusters/aks1/listClusterAdminCredential", "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action", rg + "/providers/Microsoft.ContainerService/managedClusters/aks1", "", catalog.Privilege},
		{"diagnostic setting on vm", "PUT", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Insights/diagnosticSettings/ds", "Microsoft.Insights/diagnosticSettings/write", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Insights/diagnosticSettings/ds", "", catalog.Write},
		{"resource lock", "PUT", rg + "/providers/Microsoft.Authorization/locks/lock1", "Microsoft.Authorization/locks/write", rg + "/providers/Microsoft.Authorization/locks/lock1", "", catalog.Privilege},
		{"escaped name", "GET", rg + "/providers/Microsoft.Web/sites/my%20app", "Microsoft.Web/sites/read", rg + "/providers/Microsoft.Web/sites/my app", "", catalog.Read},
		{"trailing slash", "GET", rg + "/providers/Microsoft.Compute/disks/d1/", "Microsoft.Compute/disks/read", rg + "/providers/Microsoft.Compute/disks/d1", "", catalog.Read},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(Request{Method: tt.method, Path: tt.path, RawQuery: "api-version=2024-07-01"})
			ns, op, _ := cut(tt.action)
			want := catalog.Action{
				Cloud: catalog.Azure, Service: ns, Operation: op, IAMAction: tt.action,
				Resource: tt.resource, Region: tt.region, Account: account(tt.path), Risk: tt.risk, Known: true,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s\n got %+v\nwant %+v", tt.method, tt.path, got, want)
			}
			info, ok := Describe(tt.action)
			if !ok || info.IAMAction != tt.action || info.Risk != tt.risk {
				t.Errorf("Describe(%s) = %+v, %v", tt.action, info, ok)
			}
		})
	}
	t.Logf("Azure: %d ARM paths named", len(tests))
}

func cut(action string) (ns, op string, ok bool) {
	for i := range len(action) {
		if action[i] == '/' {
			return action[:i], action[i+1:], true
		}
	}
	return action, "", false
}

// account is the subscription ID of a test path, if it has one.
func account(path string) string {
	const p = "/subscriptions/"
	if len(path) > len(p) && (path[:len(p)] == p || path[:len(p)] == "/SUBSCRIPTIONS/") {
		rest := path[len(p):]
		for i := range len(rest) {
			if rest[i] == '/' {
				return rest[:i]
			}
		}
		return rest
	}
	return ""
}

func TestNameUnknown(t *testing.T) {
	for _, tt := range []struct{ method, path string }{
		{"GET", ""},
		{"GET", "/"},
		{"GET", "/foo/bar"},
		{"GET", sub + "//resourceGroups"},
		{"OPTIONS", rg},
		{"GET", "/metadata/identity/oauth2/token"},
		// Escaped namespaces and types: ARM decodes them, so the raw text is not the operation.
		{"DELETE", rg + "/providers/%4Dicrosoft.Compute/virtualMachines/vm1"},
		{"DELETE", rg + "/providers/Microsoft.Compute/virtual%4Dachines/vm1"},
		{"DELETE", sub + "/resourceGroups/rg/%70roviders/Microsoft.Compute/virtualMachines/vm1"},
		{"POST", rg + "/providers/Microsoft.Compute/virtualMachines/vm1/%72estart"},
		{"POST", rg + "/providers/Microsoft.Nope/x%2Fy"},
	} {
		got := Name(Request{Method: tt.method, Path: tt.path})
		if got.Known || got.Operation != catalog.UnknownOperation || got.Risk != catalog.Privilege || got.Cloud != catalog.Azure {
			t.Errorf("Name(%s %s) = %+v, want unknown", tt.method, tt.path, got)
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		op, method, path string
		risk             catalog.Risk
	}{
		{"Microsoft.Compute/virtualMachines/delete", "DELETE", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines/{virtualMachineName}", catalog.Destructive},
		{"Microsoft.Compute/virtualMachines/start/action", "POST", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines/{virtualMachineName}/start", catalog.Write},
		{"Microsoft.Network/virtualNetworks/subnets/write", "PUT", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", catalog.Write},
		{"Microsoft.Resources/subscriptions/resourceGroups/delete", "DELETE", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}", catalog.Destructive},
		{"Microsoft.Compute/register/action", "POST", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/register", catalog.Write},
		{"Microsoft.Authorization/roleAssignments/write", "PUT", "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}", catalog.Privilege},
	}
	for _, tt := range tests {
		got, ok := Describe(tt.op)
		if !ok || got.Method != tt.method || got.Path != tt.path || got.Risk != tt.risk {
			t.Errorf("Describe(%s) = %+v, %v", tt.op, got, ok)
		}
	}
	for _, bad := range []string{"", "virtualMachines/delete", "Microsoft.Compute", "Microsoft.Compute/virtualMachines/destroy", "Microsoft.Compute//read", "Microsoft.Compute/*/read"} {
		if got, ok := Describe(bad); ok {
			t.Errorf("Describe(%q) = %+v, want not ok", bad, got)
		}
	}
}
