package azurecat

import (
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// OpInfo describes one RBAC operation for `airlock catalog show`.
type OpInfo struct {
	IAMAction string       // Microsoft.Compute/virtualMachines/delete
	Service   string       // Microsoft.Compute
	Operation string       // virtualMachines/delete
	Method    string       // HTTP method that performs it
	Path      string       // ARM path template of a call that performs it
	Risk      catalog.Risk // default tier
}

// Describe parses an RBAC operation name (Microsoft.Compute/virtualMachines/delete,
// Microsoft.Storage/storageAccounts/listKeys/action) and returns how a call performs it.
// ARM operations are structural, so any well-formed name is described; there is no list.
func Describe(operation string) (OpInfo, bool) {
	ns, op, ok := strings.Cut(operation, "/")
	if !ok || !strings.Contains(ns, ".") || strings.HasPrefix(ns, ".") {
		return OpInfo{}, false
	}
	parts := strings.Split(op, "/")
	for _, p := range parts {
		if p == "" || p == "*" {
			return OpInfo{}, false
		}
	}
	verb := strings.ToLower(parts[len(parts)-1])
	types := parts[:len(parts)-1]
	action := ""
	method := ""
	switch verb {
	case "read":
		method = "GET"
	case "write":
		method = "PUT"
	case "delete":
		method = "DELETE"
	case "action":
		if len(types) < 2 && !strings.EqualFold(ns, resourcesNamespace) {
			// Provider-level actions (Microsoft.Compute/register/action) have no resource type.
			if len(types) == 1 {
				action, types = types[0], nil
			} else {
				return OpInfo{}, false
			}
		} else {
			action, types = types[len(types)-1], types[:len(types)-1]
		}
		method = "POST"
	default:
		return OpInfo{}, false
	}
	if len(types) == 0 && action == "" {
		return OpInfo{}, false
	}
	var b strings.Builder
	if strings.EqualFold(ns, resourcesNamespace) && len(types) > 0 && strings.EqualFold(types[0], "subscriptions") {
		for _, t := range types {
			b.WriteString("/" + t + "/{" + placeholder(t) + "}")
		}
	} else {
		b.WriteString("/subscriptions/{subscriptionId}")
		if len(types) > 0 && !strings.EqualFold(types[0], "locations") {
			b.WriteString("/resourceGroups/{resourceGroupName}")
		}
		b.WriteString("/providers/" + ns)
		for _, t := range types {
			b.WriteString("/" + t + "/{" + placeholder(t) + "}")
		}
	}
	if action != "" {
		b.WriteString("/" + action)
	}
	return OpInfo{
		IAMAction: operation, Service: ns, Operation: op, Method: method, Path: b.String(),
		Risk: riskOf(ns, op),
	}, true
}

// placeholder names a path variable after its type: virtualMachines → virtualMachineName.
func placeholder(t string) string {
	switch strings.ToLower(t) {
	case "subscriptions":
		return "subscriptionId"
	case "resourcegroups":
		return "resourceGroupName"
	}
	return strings.TrimSuffix(t, "s") + "Name"
}
