// Package gcpcat names Google Cloud API calls. It knows every method of every API version in
// the discovery documents shipped by google.golang.org/api (a generated, embedded table) and
// matches host + HTTP method + path to the method ID through a per-host trie of path segments.
//
// The IAM action of a call is its discovery method ID (compute.instances.delete). For most
// methods that is also the IAM permission Google checks, but not for all: permissions follow
// the resource type (Cloud SQL's sqladmin methods are checked as cloudsql.*, storage.objects.insert
// as storage.objects.create), so policies written against gcpcat names use method IDs.
package gcpcat

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Request is what naming needs from an HTTP request to a Google API.
type Request struct {
	Host     string // the real Google host: compute.googleapis.com (a port is ignored)
	Method   string // HTTP method
	Path     string // escaped path as on the wire (URL.EscapedPath): object names keep %2F
	RawQuery string
	Header   http.Header // optional: the Cloud Storage XML API names copies by x-goog-copy-source
}

// maxSegments bounds the path length the namer looks at; no discovery template is longer.
const maxSegments = 64

// Name names a call. Calls it cannot name, including batch requests (which bundle calls that
// would each need naming), are catalog.Unknown and so get the highest risk tier.
func Name(r Request) catalog.Action {
	ix := mustIndex()
	host := normalizeHost(r.Host)
	h := ix.hosts[host]
	if h == nil {
		return catalog.Unknown(catalog.GCP, serviceFromHost(host), "")
	}
	path := strings.TrimPrefix(r.Path, "/")
	if api, ok := h.batch[path]; ok {
		return catalog.Unknown(catalog.GCP, api, h.location)
	}
	var buf [maxSegments]string
	segs, ok := splitPath(path, buf[:0])
	if !ok {
		return catalog.Unknown(catalog.GCP, h.api, h.location)
	}
	m, segs := ix.match(h, r.Method, segs)
	if m == nil && r.Method == http.MethodGet && len(segs) > 1 && segs[0] == "download" {
		// A media download at /download/<a method's path> is that method (storage.objects.get):
		// Google serves the same media there, and discovery lists only the plain path.
		m, segs = ix.match(h, r.Method, segs[1:])
	}
	if m == nil && r.Method != http.MethodPost && isUploadPath(path) && queryValue(r.RawQuery, "upload_id") != "" {
		// The rest of a resumable upload: the chunks (PUT), a status query (PUT, empty) and the
		// cancel (DELETE) go to the session URI, which is the initiating POST's path with an
		// upload_id. They belong to that method; the session itself was decided when it began.
		m, segs = ix.match(h, http.MethodPost, segs)
	}
	if m == nil && h.api == "storage" {
		if a, ok := nameStorageXML(r, h.location); ok {
			return a
		}
	}
	if m == nil {
		return catalog.Unknown(catalog.GCP, h.api, h.location)
	}
	a := catalog.Action{
		Cloud:     catalog.GCP,
		Service:   m.api.name,
		Operation: m.operation,
		IAMAction: m.id,
		Risk:      m.risk,
		Known:     true,
	}
	describeResource(&a, m, segs, r.RawQuery)
	if m.id == "storage.objects.copy" || m.id == "storage.objects.rewrite" {
		copyEnds(&a, segs)
	}
	if m.api.name == "storage" {
		storageACLParams(&a, r.RawQuery)
	}
	if a.Region == "" {
		a.Region = h.location
	}
	return a
}

// isUploadPath reports whether path is a media upload path (upload/... or resumable/upload/...).
func isUploadPath(path string) bool {
	return strings.HasPrefix(path, "upload/") || strings.HasPrefix(path, "resumable/upload/")
}

func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func serviceFromHost(host string) string {
	label, _, _ := strings.Cut(host, ".")
	return label
}

// splitPath splits the escaped path on "/" into buf. Percent-escaped slashes stay inside
// their segment, which is how storage object names travel.
func splitPath(p string, buf []string) ([]string, bool) {
	for {
		if len(buf) == cap(buf) {
			return nil, false
		}
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return append(buf, p), true
		}
		buf = append(buf, p[:i])
		p = p[i+1:]
	}
}

// match finds the method for the segments. A last segment with a colon is tried first as
// `name:verb` (custom methods), then whole (values such as `example.com:project` hold colons).
// When it matched a verb, it cuts the verb off the last segment.
func (ix *index) match(h *hostRoutes, httpMethod string, segs []string) (*method, []string) {
	last := segs[len(segs)-1]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		segs[len(segs)-1] = last[:i]
		if m := ix.matchRoots(h, segs, last[i+1:], httpMethod); m != nil {
			return m, segs
		}
		segs[len(segs)-1] = last
	}
	return ix.matchRoots(h, segs, "", httpMethod), segs
}

func (ix *index) matchRoots(h *hostRoutes, segs []string, verb, httpMethod string) *method {
	for _, root := range h.roots {
		st := search{ix: ix, segs: segs, verb: verb, httpMethod: httpMethod}
		if m := st.find(root, 0); m != nil {
			return m
		}
		if st.loose != nil {
			return st.loose
		}
	}
	return nil
}

// maxGreedy bounds the reserved-expansion variables of one template (discovery has two at most).
const maxGreedy = 4

// search is one depth-first walk of a route trie.
type search struct {
	ix               *index
	segs             []string
	verb, httpMethod string
	spans            [maxGreedy][2]int // segments bound to the {+var}s on the current branch
	nspans           int
	loose            *method // a route whose greedy patterns did not match: used if nothing does
}

// find walks the trie depth first: literal segments before variables, single-segment
// variables before greedy ones, shortest greedy match first (so that literals after a
// {+var}, as in v1/{+name}/operations, win over a bare v1/{+name}).
func (st *search) find(n *node, i int) *method {
	segs := st.segs
	if i == len(segs) {
		if st.verb != "" {
			n = st.ix.verbs[edge{n, st.verb}]
			if n == nil {
				return nil
			}
		}
		return st.pick(n.ends)
	}
	s := segs[i]
	if c := st.ix.lits[edge{n, s}]; c != nil {
		if m := st.find(c, i+1); m != nil {
			return m
		}
	}
	if s == "" {
		return nil
	}
	if n.param != nil {
		if m := st.find(n.param, i+1); m != nil {
			return m
		}
	}
	if n.greedy != nil && st.nspans < maxGreedy {
		k := st.nspans
		st.nspans++
		for j := i + 1; j <= len(segs); j++ {
			if segs[j-1] == "" {
				break
			}
			st.spans[k] = [2]int{i, j}
			if m := st.find(n.greedy, j); m != nil {
				return m
			}
		}
		st.nspans--
	}
	return nil
}

// pick chooses among the methods ending at a node. Methods that share a greedy template
// (`v1/{+name}`) are told apart by their parameter patterns, checked against the bound spans.
func (st *search) pick(ends []*method) *method {
	for _, m := range ends {
		if m.httpMethod != st.httpMethod {
			continue
		}
		if len(m.patterns) == 0 || st.patternsMatch(m) {
			return m
		}
		if st.loose == nil {
			st.loose = m
		}
	}
	return nil
}

func (st *search) patternsMatch(m *method) bool {
	k := 0
	for _, s := range m.tpl {
		if !strings.HasPrefix(s, "{+") {
			continue
		}
		if k >= st.nspans {
			return false
		}
		sp := st.spans[k]
		k++
		re := compiled(m.patterns[s[2:len(s)-1]])
		if re != nil && !re.MatchString(strings.Join(st.segs[sp[0]:sp[1]], "/")) {
			return false
		}
	}
	return true
}

// describeResource fills Resource, Account and Region from the matched path: Resource is
// the path below the service path and version up to the last variable
// (projects/p/zones/z/instances/i; the parent for a list or create), Account the project,
// Region the zone, region or location named in it.
func describeResource(a *catalog.Action, m *method, segs []string, rawQuery string) {
	if m.skip+m.tail > len(segs) {
		return
	}
	res := segs[m.skip : len(segs)-m.tail]
	for i := 0; i+1 < len(res); i++ {
		switch res[i] {
		case "projects":
			if a.Account == "" {
				a.Account = catalog.PathUnescape(res[i+1])
			}
		case "zones", "regions", "locations":
			if a.Region == "" {
				a.Region = catalog.PathUnescape(res[i+1])
			}
		}
	}
	if m.api.name == "storage" {
		a.Resource = storageResource(res)
	} else {
		a.Resource = joinUnescaped(res)
	}
	if a.Account == "-" {
		// projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com: the project is in the email.
		a.Account = projectOfServiceAccount(res)
	}
	if a.Account == "" && rawQuery != "" {
		a.Account = queryValue(rawQuery, "project")
		if a.Account == "" {
			a.Account = queryValue(rawQuery, "projectId")
		}
	}
}

func projectOfServiceAccount(res []string) string {
	for i := 0; i+1 < len(res); i++ {
		if res[i] == "serviceAccounts" {
			email := catalog.PathUnescape(res[i+1])
			if _, domain, ok := strings.Cut(email, "@"); ok {
				if p, ok := strings.CutSuffix(domain, ".iam.gserviceaccount.com"); ok {
					return p
				}
			}
		}
	}
	return "-"
}

// storageACLParams adds the ACL change a Cloud Storage write makes through its query: a
// predefinedAcl (publicRead, say) on an object write needs storage.objects.setIamPolicy, and
// one on a bucket storage.buckets.setIamPolicy, which policy then decides as well.
func storageACLParams(a *catalog.Action, rawQuery string) {
	if rawQuery == "" {
		return
	}
	switch {
	case strings.HasPrefix(a.IAMAction, "storage.buckets.") &&
		(queryValue(rawQuery, "predefinedAcl") != "" || queryValue(rawQuery, "predefinedDefaultObjectAcl") != ""):
		a.Also = append(a.Also, catalog.Permission{Action: "storage.buckets.setIamPolicy", Resource: a.Resource})
	case strings.HasPrefix(a.IAMAction, "storage.objects.") &&
		(queryValue(rawQuery, "predefinedAcl") != "" || queryValue(rawQuery, "destinationPredefinedAcl") != ""):
		a.Also = append(a.Also, catalog.Permission{Action: "storage.objects.setIamPolicy", Resource: a.Resource})
	}
}

// copyEnds names a JSON API copy or rewrite (b/{src}/o/{obj}/copyTo/b/{dst}/o/{obj}) by what it
// writes, the destination object, with the source object as what it reads.
func copyEnds(a *catalog.Action, segs []string) {
	for i, s := range segs {
		if (s == "copyTo" || s == "rewriteTo") && i >= 4 && len(segs) == i+5 {
			a.ReadsFrom(storageResource(segs[i-4:i]), "storage.objects.get")
			a.Resource = storageResource(segs[i+1:])
			return
		}
	}
}

// storageResource names a Cloud Storage bucket or object the way IAM does:
// projects/_/buckets/b/objects/o, from the JSON API's b/{bucket}/o/{object}.
func storageResource(res []string) string {
	if len(res) == 0 {
		return ""
	}
	if len(res) < 2 || res[0] != "b" {
		return joinUnescaped(res)
	}
	r := "projects/_/buckets/" + catalog.PathUnescape(res[1])
	if len(res) >= 4 && res[2] == "o" {
		r += "/objects/" + catalog.PathUnescape(res[3])
	}
	return r
}

func joinUnescaped(segs []string) string {
	j := strings.Join(segs, "/")
	if strings.IndexByte(j, '%') < 0 {
		return j
	}
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(catalog.PathUnescape(s))
	}
	return b.String()
}

// queryValue returns the first value of key in a raw query without building a url.Values.
func queryValue(q, key string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

// ServiceForHost reports whether host is a Google API host from the discovery documents
// (root, mTLS and regional endpoints) and which API it serves. A host shared by unrelated
// APIs (www.googleapis.com) is allowed with api "": there the path decides.
func ServiceForHost(host string) (api string, ok bool) {
	h := mustIndex().hosts[normalizeHost(host)]
	if h == nil {
		return "", false
	}
	return h.api, true
}
