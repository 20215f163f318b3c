package catalog

import (
	"strings"
	"unicode"
)

// DefaultRisk returns the default tier of an operation, before any `risk:` override from the
// config. service is the IAM service prefix (ec2, compute, Microsoft.Compute) and operation the
// cloud's own operation name (TerminateInstances, instances.delete, virtualMachines/delete); a
// GCP operation may also carry its service prefix (compute.instances.delete).
//
// The rules are deliberately simple and name-based; the cases where the name misleads (a "read"
// that returns a secret, a "write" that changes who can do what) are listed with their reason in
// risk_exceptions.go, which is checked first.
func DefaultRisk(cloud, service, operation string) Risk {
	if r, ok := lookupException(cloud, service, operation); ok {
		return r
	}
	switch cloud {
	case AWS:
		return awsRisk(service, operation)
	case GCP:
		return gcpRisk(service, operation)
	case Azure:
		return azureRisk(service, operation)
	}
	return Privilege
}

// awsPrivilegeServices change who can do what with nearly every call: everything but a read is
// privilege.
var awsPrivilegeServices = map[string]bool{
	"iam": true, "sts": true, "kms": true, "organizations": true, "sso": true,
	"sso-directory": true, "identitystore": true, "identity-sync": true, "ram": true,
	"sso-oauth": true, "account": true, "cloudhsm": true, "acm-pca": true,
	"payment-cryptography": true, "signer": true, "rolesanywhere": true,
	"verifiedpermissions": true,
}

var awsReadVerbs = map[string]bool{
	"Get": true, "List": true, "Describe": true, "Head": true, "Query": true, "Scan": true,
	"Search": true, "Lookup": true, "Select": true, "View": true, "Filter": true, "Count": true,
	"Check": true, "Estimate": true, "Preview": true, "Download": true, "Validate": true,
	"Detect": true, "Simulate": true, "Test": true,
}

var awsDestructiveVerbs = map[string]bool{
	"Delete": true, "Terminate": true, "Remove": true, "Destroy": true, "Purge": true,
	"Deregister": true, "Disable": true, "Deprovision": true, "Decommission": true,
	"Drop": true, "Truncate": true, "Erase": true, "Release": true, "Abort": true,
	"Deactivate": true, "Unregister": true,
}

// accessWords in an operation name mean it changes access (PutBucketPolicy, AddPermission,
// CreateGrant, PutObjectAcl, CreateBucketAccessKey).
var accessWords = map[string]bool{
	"Policy": true, "Policies": true, "Permission": true, "Permissions": true, "Grant": true,
	"Grants": true, "Acl": true, "Acls": true, "ACL": true, "Trust": true, "Trusts": true,
	"Credential": true, "Credentials": true, "Password": true, "Passwords": true,
}

// notAccessPolicy qualifies "Policy" words that configure behaviour, not access
// (PutLifecyclePolicy, PutScalingPolicy, PutRetentionPolicy): those are plain writes.
var notAccessPolicy = map[string]bool{
	"Lifecycle": true, "Scaling": true, "Retention": true, "Backup": true, "Replication": true,
	"Cache": true, "Request": true, "Headers": true, "Balancer": true, "Placement": true,
	"Cors": true, "CORS": true, "Patch": true, "Scheduling": true, "Routing": true,
	"Storage": true, "Compression": true, "Cleanup": true, "Deletion": true, "Archive": true,
	"Latency": true, "Update": true, "Traffic": true, "Listener": true, "Ssl": true,
	"Firewall": true, "Delivery": true, "Metric": true, "Data": true, "Tiering": true,
	"Log": true, "Logging": true, "Notification": true, "Auto": true, "Schema": true,
	"Health": true, "Failover": true, "Recovery": true, "Network": true, "Tag": true,
	"Lb": true, "Protection": true, "Security": true, "Alarm": true, "Anomaly": true,
}

// secretWords in a read-verb name mean the read returns a secret (GetAuthorizationToken,
// GetClusterCredentials, GetPasswordData).
var secretWords = map[string]bool{
	"Credential": true, "Credentials": true, "Token": true, "Password": true, "Secret": true,
}

func awsRisk(service, op string) Risk {
	words := camelWords(op)
	if len(words) == 0 {
		return Privilege
	}
	verb := words[0]
	if verb == "Batch" && len(words) > 1 {
		verb = words[1]
	}
	read := awsReadVerbs[verb]
	if read {
		for _, w := range words[1:] {
			if secretWords[w] && verb == "Get" {
				return Privilege
			}
		}
		return Read
	}
	if awsPrivilegeServices[strings.ToLower(service)] {
		return Privilege
	}
	for i, w := range words {
		if !accessWords[w] {
			continue
		}
		if (w == "Policy" || w == "Policies") && i > 0 && notAccessPolicy[words[i-1]] {
			continue
		}
		if (w == "Acl" || w == "Acls" || w == "ACL") && i > 0 && words[i-1] == "Network" {
			continue
		}
		return Privilege
	}
	if awsDestructiveVerbs[verb] {
		return Destructive
	}
	return Write
}

// camelWords splits "PutBucketACL" into Put, Bucket, ACL and "GetObject" into Get, Object.
func camelWords(s string) []string {
	var words []string
	start := 0
	rs := []rune(s)
	for i := 1; i < len(rs); i++ {
		if !unicode.IsUpper(rs[i]) {
			continue
		}
		prevLower := unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])
		nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
		if prevLower || (unicode.IsUpper(rs[i-1]) && nextLower) {
			words = append(words, string(rs[start:i]))
			start = i
		}
	}
	if start < len(rs) {
		words = append(words, string(rs[start:]))
	}
	return words
}

// gcpPrivilegeServices grant identities, keys and access.
var gcpPrivilegeServices = map[string]bool{
	"iam": true, "iamcredentials": true, "cloudkms": true, "sts": true,
	"accesscontextmanager": true, "orgpolicy": true, "cloudidentity": true, "privateca": true,
	"policysimulator": false,
}

var gcpReadMethods = map[string]bool{
	"get": true, "list": true, "aggregatedlist": true, "lookup": true, "batchget": true,
	"getiampolicy": true, "testiampermissions": true, "query": true, "search": true,
	"searchall": true, "listall": true, "fetch": true, "watch": true, "export": false,
}

func gcpRisk(service, op string) Risk {
	op = strings.TrimPrefix(op, service+".")
	method := op
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		method = op[i+1:]
	}
	m := strings.ToLower(method)
	switch {
	case strings.Contains(m, "iampolicy") && !strings.HasPrefix(m, "get"):
		return Privilege
	case gcpReadMethods[m] || strings.HasPrefix(m, "get") || strings.HasPrefix(m, "list") ||
		strings.HasPrefix(m, "search") || strings.HasPrefix(m, "batchget"):
		return Read
	case gcpPrivilegeServices[service]:
		return Privilege
	case m == "delete" || m == "batchdelete" || strings.HasPrefix(m, "delete") ||
		strings.HasPrefix(m, "remove") || strings.HasPrefix(m, "destroy") || strings.HasPrefix(m, "purge"):
		return Destructive
	}
	return Write
}

// azurePrivilegeMarkers in a lower-cased ARM operation name hand out keys, secrets or access.
var azurePrivilegeMarkers = []string{
	"listkeys/action", "listcredential", "regeneratekey", "listaccountsas", "listservicesas",
	"listsecrets", "listconnectionstrings", "getaccesstoken", "/assign/action",
	"accesspolicies/write", "generatekey", "listadminkeys", "listquerykeys",
}

func azureRisk(service, op string) Risk {
	full := strings.ToLower(service + "/" + op)
	for _, m := range azurePrivilegeMarkers {
		if strings.Contains(full, m) {
			return Privilege
		}
	}
	read := strings.HasSuffix(full, "/read")
	if strings.HasPrefix(full, "microsoft.authorization/") || strings.HasPrefix(full, "microsoft.managedidentity/") {
		if read {
			return Read
		}
		return Privilege
	}
	switch {
	case read:
		return Read
	case strings.HasSuffix(full, "/delete"):
		return Destructive
	}
	return Write
}
