package gcpcat

import (
	"encoding/json"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Calls that give a resource a service account to run as: Google checks
// iam.serviceAccounts.actAs on each account besides the call's own permission, and a rule that
// lets writes flow must not start a VM as a more powerful account. The accounts are in the
// request body, at these paths.
var actAsPaths = map[string][]string{
	"compute.instances.insert":         {"serviceAccounts"},
	"compute.instanceTemplates.insert": {"properties", "serviceAccounts"},
}

// NeedsBody reports whether naming a's other permissions needs the request body.
func NeedsBody(a catalog.Action) bool {
	_, ok := actAsPaths[a.IAMAction]
	return ok
}

// BodyPermissions returns iam.serviceAccounts.actAs on each service account the body of a
// NeedsBody call names. ok is false when the body is not the JSON object the method takes:
// which accounts it names cannot be said then.
func BodyPermissions(a catalog.Action, body []byte) (also []catalog.Permission, ok bool) {
	path, needed := actAsPaths[a.IAMAction]
	if !needed {
		return nil, true
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, false
	}
	for _, key := range path {
		obj, isObj := v.(map[string]any)
		if !isObj {
			return nil, false
		}
		// Google reads a member by its JSON name or its proto name (service_accounts).
		camel, snake := obj[key], obj[snakeCase(key)]
		switch {
		case camel != nil && snake != nil && snakeCase(key) != key:
			return nil, false // both spellings: which one counts is not something to guess
		case camel != nil:
			v = camel
		case snake != nil:
			v = snake
		default:
			return nil, true // no service account: the resource runs as none
		}
	}
	list, isList := v.([]any)
	if !isList {
		return nil, false
	}
	for _, item := range list {
		sa, isObj := item.(map[string]any)
		email, isString := sa["email"].(string)
		if !isObj || !isString || email == "" {
			return nil, false
		}
		also = append(also, catalog.Permission{Action: "iam.serviceAccounts.actAs", Resource: "projects/-/serviceAccounts/" + email})
	}
	return also, true
}

// snakeCase turns a JSON member name into its proto field name: serviceAccounts → service_accounts.
func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
