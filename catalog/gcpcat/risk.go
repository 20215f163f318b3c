package gcpcat

import (
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// riskOf gives a method its default tier. catalog.DefaultRisk does not exist yet; until it
// does, this fallback applies the tier rules of ARCHITECTURE.md to the method's verb.
func riskOf(service, operation string) catalog.Risk {
	return fallbackRisk(service, operation)
}

func fallbackRisk(service, operation string) catalog.Risk {
	verb := operation
	if i := strings.LastIndexByte(verb, '.'); i >= 0 {
		verb = verb[i+1:]
	}
	v := strings.ToLower(verb)
	res := strings.ToLower(operation)
	switch service {
	case "iam", "iamcredentials", "cloudkms", "sts", "accesscontextmanager", "orgpolicy", "secretmanager":
		if !readVerb(v) || service == "iamcredentials" || service == "sts" {
			return catalog.Privilege
		}
	}
	switch {
	case strings.Contains(v, "iampolicy") && !strings.HasPrefix(v, "get"),
		strings.Contains(v, "accesstoken"), strings.Contains(v, "idtoken"),
		strings.HasPrefix(v, "sign"), strings.Contains(v, "decrypt"),
		strings.Contains(res, "keys.create") || strings.Contains(res, "hmackeys.create"),
		v == "setiampolicy", v == "setorgpolicy", strings.HasPrefix(v, "setiam"),
		v == "actas", strings.Contains(v, "accesssecret"), v == "access":
		return catalog.Privilege
	case strings.HasPrefix(v, "delete"), strings.HasPrefix(v, "remove"), strings.HasPrefix(v, "purge"),
		strings.HasPrefix(v, "destroy"), strings.HasPrefix(v, "erase"), strings.HasPrefix(v, "batchdelete"),
		strings.HasPrefix(v, "bulkdelete"), v == "stop", v == "reset", v == "terminate",
		strings.HasPrefix(v, "truncate"), v == "abandon", v == "abandoninstances", v == "deleteinstances":
		return catalog.Destructive
	case readVerb(v):
		return catalog.Read
	}
	return catalog.Write
}

func readVerb(v string) bool {
	for _, p := range []string{"get", "list", "search", "aggregatedlist", "describe", "lookup", "fetch", "watch", "testiampermissions", "check", "retrieve", "batchget", "find", "read", "view"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}
