package azurecat

import (
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// riskOf gives an operation its default tier. catalog.DefaultRisk does not exist yet; until
// it does, this fallback applies the tier rules of ARCHITECTURE.md to RBAC operation names.
func riskOf(namespace, operation string) catalog.Risk {
	return fallbackRisk(namespace, operation)
}

// privilegeActions are actions that hand out secrets or credentials.
var privilegeActions = []string{
	"listkeys", "regeneratekey", "regeneratekeys", "listaccountsas", "listservicesas", "listsecrets",
	"listcredentials", "listclusteradmincredential", "listclusterusercredential", "getaccesstoken",
	"listconnectionstrings", "generatekey", "getsecret", "listadmincredentials", "resetpassword",
	"listpublishingcredentials", "getkeys", "listaccesskeys", "elevateaccess",
	"list", // POST .../list returns secrets: App Service config/appsettings/list, publishing credentials
}

func fallbackRisk(namespace, operation string) catalog.Risk {
	op := strings.ToLower(operation)
	ns := strings.ToLower(namespace)
	verb := op[strings.LastIndexByte(op, '/')+1:]
	action := ""
	if verb == "action" {
		rest := op[:len(op)-len("/action")]
		action = rest[strings.LastIndexByte(rest, '/')+1:]
	}
	switch {
	case ns == "microsoft.authorization" && verb != "read",
		ns == "microsoft.managedidentity" && verb != "read",
		ns == "microsoft.keyvault" && (strings.Contains(op, "accesspolicies") || strings.Contains(op, "secrets/") && verb != "read" || strings.Contains(op, "keys/") && verb != "read"),
		strings.Contains(op, "federatedidentitycredentials") && verb != "read":
		return catalog.Privilege
	}
	if action != "" {
		for _, a := range privilegeActions {
			if action == a {
				return catalog.Privilege
			}
		}
		switch {
		case strings.HasPrefix(action, "delete"), strings.HasPrefix(action, "remove"), strings.HasPrefix(action, "purge"),
			action == "deallocate", action == "poweroff", action == "reimage", action == "redeploy":
			return catalog.Destructive
		case strings.HasPrefix(action, "list"), strings.HasPrefix(action, "get"), strings.HasPrefix(action, "check"):
			return catalog.Read
		}
		return catalog.Write
	}
	switch verb {
	case "read":
		return catalog.Read
	case "delete":
		return catalog.Destructive
	}
	return catalog.Write
}
