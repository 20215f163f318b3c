// Package azurecat names Azure Resource Manager calls by their RBAC operation
// (Microsoft.Compute/virtualMachines/delete). ARM paths are resource IDs, so the rules are
// structural: the last provider namespace in the path, the resource types after it, and the
// HTTP method (GET read, PUT/PATCH write, DELETE delete, POST to a trailing name: action).
package azurecat

import (
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Request is what naming needs from an HTTP request to management.azure.com.
type Request struct {
	Method   string
	Path     string // escaped path as on the wire
	RawQuery string
}

// resourcesNamespace owns subscriptions, resource groups and the paths with no provider.
const resourcesNamespace = "Microsoft.Resources"

// maxSegments bounds how deep a path is looked at; ARM resource IDs are far shorter.
const maxSegments = 64

// typePair is one resource type in a path and, when the path has it, the resource's name.
type typePair struct {
	typ     string
	hasName bool
}

// parsed is a path read as an ARM resource ID.
type parsed struct {
	namespace    string
	types        [maxSegments / 2]typePair
	ntypes       int
	subscription string
	location     string
	resourceEnd  int // segments up to the deepest named resource or scope
}

// Name names an ARM call. Paths that are not resource IDs are catalog.Unknown.
func Name(r Request) catalog.Action {
	verb, ok := verbOf(r.Method)
	var p parsed
	if !ok || !parse(r.Path, &p) {
		ns := ""
		if ok {
			ns = p.namespace
		}
		return catalog.Unknown(catalog.Azure, ns, p.location)
	}
	last := p.types[p.ntypes-1]
	if !last.hasName && r.Method == "POST" {
		verb = "action"
	}
	op := operation(&p, verb)
	return catalog.Action{
		Cloud:     catalog.Azure,
		Service:   p.namespace,
		Operation: op,
		IAMAction: p.namespace + "/" + op,
		Resource:  resourceID(r.Path, p.resourceEnd),
		Region:    p.location,
		Account:   p.subscription,
		Risk:      riskOf(p.namespace, op),
		Known:     true,
	}
}

// verbOf maps the HTTP method to the RBAC verb. A POST to a named resource is a write;
// a POST whose last segment is not a resource name is that segment's action (Name decides).
func verbOf(method string) (string, bool) {
	switch method {
	case "GET", "HEAD":
		return "read", true
	case "PUT", "PATCH", "POST":
		return "write", true
	case "DELETE":
		return "delete", true
	}
	return "", false
}

func operation(p *parsed, verb string) string {
	n := len(verb)
	for _, t := range p.types[:p.ntypes] {
		n += len(t.typ) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for _, t := range p.types[:p.ntypes] {
		b.WriteString(t.typ)
		b.WriteByte('/')
	}
	b.WriteString(verb)
	return b.String()
}

// parse reads the path as scope segments (subscriptions/{s}/resourceGroups/{rg}) and
// provider segments (providers/{Namespace}/{type}/{name}/...). An extension resource
// (a role assignment on a storage account) repeats providers/...: the last one decides.
func parse(path string, p *parsed) bool {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	p.namespace = resourcesNamespace
	if path == "" {
		return false
	}
	var buf [maxSegments]string
	segs := buf[:0]
	for rest := path; ; {
		if len(segs) == maxSegments {
			return false
		}
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" {
			return false
		}
		segs = append(segs, seg)
		if !more {
			break
		}
		rest = tail
	}
	switch {
	case strings.EqualFold(segs[0], "subscriptions"), strings.EqualFold(segs[0], "providers"),
		strings.EqualFold(segs[0], "tenants"):
	default:
		return false
	}
	inScope := true // still in the subscription / resource group part
	for i := 0; i < len(segs); {
		s := segs[i]
		complete := p.ntypes == 0 || p.types[p.ntypes-1].hasName
		if !plainSegment(s) {
			// A type (or "providers") spelled with escapes or odd characters: ARM would read
			// it decoded, so a name built from the raw text would not be the operation that
			// runs (%4Dicrosoft.Compute is Microsoft.Compute to ARM). Such a path is unknown.
			return false
		}
		if strings.EqualFold(s, "providers") && complete && i+2 < len(segs) && strings.Contains(segs[i+1], ".") {
			if !plainSegment(segs[i+1]) {
				return false
			}
			p.namespace = segs[i+1]
			p.ntypes = 0
			inScope = false
			i += 2
			continue
		}
		typ := canonicalType(s)
		hasName := i+1 < len(segs)
		p.types[p.ntypes] = typePair{typ: typ, hasName: hasName}
		p.ntypes++
		if !hasName {
			break
		}
		name := segs[i+1]
		switch {
		case inScope && typ == "subscriptions" && p.subscription == "":
			p.subscription = catalog.PathUnescape(name)
		case typ == "locations":
			p.location = catalog.PathUnescape(name)
		}
		i += 2
		p.resourceEnd = i
	}
	return p.ntypes > 0
}

// plainSegment reports whether a namespace or resource type segment holds only the characters
// ARM namespaces and types are made of (letters, digits, '.', '-', '_'), so that it reads the
// same escaped and decoded.
func plainSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// canonicalType spells the structural ARM segments the way RBAC names them; ARM itself
// matches them case-insensitively (resourcegroups, ResourceGroups).
func canonicalType(s string) string {
	for _, c := range [...]string{"subscriptions", "resourceGroups", "providers", "locations", "tenants"} {
		if strings.EqualFold(s, c) {
			return c
		}
	}
	return s
}

// resourceID returns the path's first n segments with a leading slash: the deepest
// resource or scope the call names (the parent, for a list or an action).
func resourceID(path string, n int) string {
	path = strings.TrimPrefix(path, "/")
	end := 0
	for i := 0; i < n; i++ {
		j := strings.IndexByte(path[end:], '/')
		if j < 0 {
			end = len(path)
			break
		}
		end += j + 1
	}
	id := strings.TrimSuffix(path[:end], "/")
	if id == "" {
		return ""
	}
	return "/" + catalog.PathUnescape(id)
}
