// Package catalog names cloud control-plane calls: it turns an HTTP request into an Action
// (cloud, service, operation, IAM action name, resource, region) and gives every action a
// default risk tier. Per-cloud namers live in subpackages; this package holds the shared shape.
package catalog

import (
	"fmt"
	"net/url"
	"strings"
)

// Risk is a tier, lowest first. The zero value is not a valid tier.
type Risk int

// Risk tiers. Unknown actions are Privilege: never treated as harmless.
const (
	RiskUnknown Risk = iota
	Read
	Write
	Destructive
	Privilege
)

var riskNames = [...]string{"unknown", "read", "write", "destructive", "privilege"}

// String returns the tier's name as used in config and audit.
func (r Risk) String() string {
	if r < 0 || int(r) >= len(riskNames) {
		return "unknown"
	}
	return riskNames[r]
}

// ParseRisk parses a tier name.
func ParseRisk(s string) (Risk, error) {
	for i, n := range riskNames {
		if i > 0 && n == s {
			return Risk(i), nil
		}
	}
	return RiskUnknown, fmt.Errorf("unknown risk tier %q (read, write, destructive, privilege)", s)
}

// MarshalText makes Risk print as its name in JSON.
func (r Risk) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses the tier name.
func (r *Risk) UnmarshalText(b []byte) error {
	v, err := ParseRisk(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Cloud names.
const (
	AWS   = "aws"
	GCP   = "gcp"
	Azure = "azure"
)

// Action is what one request does, named the way the cloud's own IAM names it.
type Action struct {
	Cloud     string `json:"cloud"`
	Service   string `json:"service"`    // IAM service prefix: ec2, s3, compute, Microsoft.Compute
	Operation string `json:"operation"`  // TerminateInstances, instances.delete, virtualMachines/delete
	IAMAction string `json:"iam_action"` // ec2:TerminateInstances, compute.instances.delete, Microsoft.Compute/virtualMachines/delete
	Resource  string `json:"resource,omitempty"`
	Region    string `json:"region,omitempty"`
	Account   string `json:"account,omitempty"`
	Risk      Risk   `json:"risk"`
	// Source is what the call reads besides Resource: a copy's source object
	// (arn:aws:s3:::bkt/key, projects/_/buckets/b/objects/o).
	Source string `json:"source,omitempty"`
	// Also lists the other permissions the call needs, which the cloud checks apart from
	// IAMAction: reading a copy's Source, setting the ACL or tags an upload carries in its
	// headers. Policy decides each as a call of its own, and a session policy allows each.
	Also []Permission `json:"also,omitempty"`
	// Known is false when the catalog did not recognise the call (Operation "Unknown").
	Known bool `json:"known"`
}

// Permission is an IAM action on a resource (ARN or resource name; "" for any).
type Permission struct {
	Action   string `json:"action"`
	Resource string `json:"resource,omitempty"`
}

// ReadsFrom records that the call reads source (a copy's source object) besides Resource, and
// that doing so needs readAction on it.
func (a *Action) ReadsFrom(source, readAction string) {
	a.Source = source
	a.Also = append(a.Also, Permission{Action: readAction, Resource: source})
}

// Named builds the Action for an IAM action name of cloud (ec2:TerminateInstances,
// compute.instances.delete, Microsoft.Compute/virtualMachines/delete) with its default tier;
// ok is false when name is not of that cloud's form. A name whose operation is Unknown is the
// Unknown action, as a call the catalog cannot name is.
func Named(cloud, name string) (a Action, ok bool) {
	sep := map[string]string{AWS: ":", GCP: ".", Azure: "/"}[cloud]
	if sep == "" {
		return Action{}, false
	}
	service, operation, ok := strings.Cut(name, sep)
	if !ok || service == "" || operation == "" {
		return Action{}, false
	}
	if operation == UnknownOperation {
		return Unknown(cloud, service, ""), true
	}
	return Action{Cloud: cloud, Service: service, Operation: operation, IAMAction: name,
		Risk: DefaultRisk(cloud, service, operation), Known: true}, true
}

// UnknownOperation is the operation name of calls the catalog cannot name.
const UnknownOperation = "Unknown"

// Unknown returns the Action for an unrecognised call of a service: highest risk tier.
func Unknown(cloud, service, region string) Action {
	sep := ":"
	if cloud == GCP {
		sep = "."
	} else if cloud == Azure {
		sep = "/"
	}
	return Action{
		Cloud: cloud, Service: service, Operation: UnknownOperation,
		IAMAction: service + sep + UnknownOperation, Region: region, Risk: Privilege,
	}
}

// MatchPattern reports whether an IAM action name matches a pattern with `*` and `?` wildcards,
// case-insensitively (AWS IAM matches action names case-insensitively).
//
// IAM action names and config patterns are ASCII: those are compared byte by byte with ASCII
// case folding and nothing is allocated. Anything else is lower-cased with Unicode rules
// first (some non-ASCII letters lower-case to ASCII ones, e.g. the Kelvin sign to k).
func MatchPattern(pattern, action string) bool {
	if !isASCII(pattern) || !isASCII(action) {
		return wildcard(strings.ToLower(pattern), strings.ToLower(action))
	}
	return wildcard(pattern, action)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lowerASCII lower-cases an ASCII letter and leaves every other byte as it is.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// wildcard is a linear-time glob match with backtracking only on the last star, folding ASCII
// case (a no-op on strings already lower-cased).
func wildcard(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || lowerASCII(p[pi]) == lowerASCII(s[si])):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// PathUnescape decodes a path segment's percent-escapes, or returns it as it is when it has none
// or they are malformed: the namers read labels with it.
func PathUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}
