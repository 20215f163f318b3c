package azurecat

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Writes that give a resource user-assigned managed identities: ARM checks
// Microsoft.ManagedIdentity/userAssignedIdentities/assign/action on each one besides the write,
// and a rule that lets writes flow must not start a VM as a more powerful identity. The
// identities are the keys of identity.userAssignedIdentities in the body.
var identityWrites = map[string]bool{
	"Microsoft.Compute/virtualMachines/write":            true,
	"Microsoft.Compute/virtualMachineScaleSets/write":    true,
	"Microsoft.Web/sites/write":                          true,
	"Microsoft.ContainerInstance/containerGroups/write":  true,
	"Microsoft.ContainerService/managedClusters/write":   true,
	"Microsoft.Logic/workflows/write":                    true,
	"Microsoft.Automation/automationAccounts/write":      true,
	"Microsoft.DataFactory/factories/write":              true,
	"Microsoft.App/containerApps/write":                  true,
	"Microsoft.MachineLearningServices/workspaces/write": true,
}

// AssignIdentityAction is the permission ARM checks to give a resource a user-assigned identity.
const AssignIdentityAction = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"

// NeedsBody reports whether naming a's other permissions needs the request body.
func NeedsBody(a catalog.Action) bool {
	return identityWrites[a.IAMAction]
}

// BodyPermissions returns the identity assignments the body of a NeedsBody write makes. ok is
// false when the body is not a JSON object with a well-formed identity: which identities it
// assigns cannot be said then. Member names match case-insensitively, as ARM reads them.
func BodyPermissions(a catalog.Action, body []byte) (also []catalog.Permission, ok bool) {
	if !identityWrites[a.IAMAction] {
		return nil, true
	}
	var b struct {
		Identity *struct {
			UserAssignedIdentities map[string]json.RawMessage `json:"userAssignedIdentities"`
		} `json:"identity"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, false
	}
	if b.Identity == nil {
		return nil, true
	}
	for id := range b.Identity.UserAssignedIdentities {
		if !strings.HasPrefix(id, "/") {
			return nil, false
		}
		also = append(also, catalog.Permission{Action: AssignIdentityAction, Resource: id})
	}
	// Map order is random; the audit trail wants one order.
	slices.SortFunc(also, func(x, y catalog.Permission) int { return strings.Compare(x.Resource, y.Resource) })
	return also, true
}
