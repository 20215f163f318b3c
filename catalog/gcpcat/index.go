package gcpcat

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/catalog"
)

//go:generate go run ./gen -o discovery.json.gz

//go:embed discovery.json.gz
var discoveryTable []byte

// table is the generated file's shape (written by ./gen).
type table struct {
	Module string     `json:"module"`
	APIs   []tableAPI `json:"apis"`
}

type tableAPI struct {
	Name        string      `json:"name"`
	Version     string      `json:"version"`
	Host        string      `json:"host"`
	MTLSHost    string      `json:"mtlsHost"`
	ServicePath string      `json:"servicePath"`
	BatchPath   string      `json:"batchPath"`
	Endpoints   [][2]string `json:"endpoints"`
	Methods     []struct {
		ID         string            `json:"id"`
		HTTPMethod string            `json:"m"`
		Path       string            `json:"p"`
		Greedy     string            `json:"g"`
		Patterns   map[string]string `json:"pat"`
		Order      []string          `json:"o"`
		Uploads    []string          `json:"u"`
	} `json:"methods"`
}

func decodeTable(gz []byte) (*table, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gcp discovery table: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gcp discovery table: %w", err)
	}
	var t table
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("gcp discovery table: %w", err)
	}
	return &t, nil
}

// apiInfo is one discovery document (one version of one API).
type apiInfo struct {
	name, version string
	idPrefix      string // first part of the method IDs: usually name, "sql" for sqladmin
}

// method is one route: a method reached through one path template.
type method struct {
	api        *apiInfo
	id         string // compute.instances.delete
	operation  string // instances.delete
	httpMethod string
	template   string   // full template from the host, without leading slash
	tpl        []string // template segments, the verb excluded
	skip       int      // leading segments that are service path or version, not resource
	tail       int      // trailing literal segments after the last variable (collection, custom verb)
	risk       catalog.Risk
	patterns   map[string]string // patterns of {+var} values, when they decide the route
	order      []string
}

// node is a trie node over path segments. Literal children are kept in index-wide maps keyed
// by (node, segment): one map instead of one per node keeps the ~30,000 routes compact.
type node struct {
	param  *node // {var}: exactly one non-empty segment
	greedy *node // {+var}: one or more segments
	ends   []*method
}

type edge struct {
	from *node
	seg  string
}

// hostRoutes is what a host serves: the route tries of the APIs rooted on it.
type hostRoutes struct {
	roots    []*node
	api      string // API name when the host serves one API (ServiceForHost)
	location string // location of a regional endpoint host
	batch    map[string]string
}

type index struct {
	module  string
	lits    map[edge]*node
	verbs   map[edge]*node
	hosts   map[string]*hostRoutes
	ops     []OpInfo // one per method ID, sorted
	opByID  map[string]int
	methods []*method
}

var loadIndex = sync.OnceValues(func() (*index, error) {
	t, err := decodeTable(discoveryTable)
	if err != nil {
		return nil, err
	}
	return buildIndex(t), nil
})

// Load decodes the embedded table and builds the route index, which otherwise happens on the
// first call (about a second, ~50 MB of allocations). Call it at startup so that the first
// request is not slow and a broken table fails the start.
func Load() error {
	_, err := loadIndex()
	return err
}

func mustIndex() *index {
	ix, err := loadIndex()
	if err != nil {
		// The table is embedded at build time; a decode failure is a broken build.
		panic(err)
	}
	return ix
}

func buildIndex(t *table) *index {
	ix := &index{
		module: t.Module,
		lits:   map[edge]*node{},
		verbs:  map[edge]*node{},
		hosts:  map[string]*hostRoutes{},
		opByID: map[string]int{},
	}
	// Stable versions first so that, where versions share a route, the stable one names it.
	apis := make([]*tableAPI, len(t.APIs))
	for i := range t.APIs {
		apis[i] = &t.APIs[i]
	}
	sort.SliceStable(apis, func(i, j int) bool { return versionRank(apis[i].Version) < versionRank(apis[j].Version) })

	roots := map[string]*node{}
	names := map[string]map[string]bool{}
	addHost := func(host, api, location string, root *node) *hostRoutes {
		h := ix.hosts[host]
		if h == nil {
			h = &hostRoutes{location: location, batch: map[string]string{}}
			ix.hosts[host] = h
			names[host] = map[string]bool{}
		}
		names[host][api] = true
		for _, r := range h.roots {
			if r == root {
				return h
			}
		}
		h.roots = append(h.roots, root)
		return h
	}
	for _, a := range apis {
		root := roots[a.Host]
		if root == nil {
			root = &node{}
			roots[a.Host] = root
		}
		hosts := []*hostRoutes{addHost(a.Host, a.Name, "", root)}
		if a.MTLSHost != "" {
			hosts = append(hosts, addHost(a.MTLSHost, a.Name, "", root))
		}
		for _, e := range a.Endpoints {
			hosts = append(hosts, addHost(e[0], a.Name, e[1], root))
		}
		if a.BatchPath != "" {
			for _, h := range hosts {
				h.batch[strings.TrimPrefix(a.BatchPath, "/")] = a.Name
			}
		}
		info := &apiInfo{name: a.Name, version: a.Version, idPrefix: a.Name}
		for _, tm := range a.Methods {
			prefix, op, _ := strings.Cut(tm.ID, ".")
			info.idPrefix = prefix
			base := method{api: info, id: tm.ID, operation: op, httpMethod: tm.HTTPMethod,
				risk: riskOf(prefix, op), order: tm.Order}
			add := func(template string, patterns map[string]string) {
				m := base
				m.template = fullTemplate(a.ServicePath, template)
				m.patterns = patterns
				ix.insert(root, &m)
			}
			add(tm.Path, nil)
			if tm.Greedy != "" {
				add(tm.Greedy, tm.Patterns)
			}
			for _, u := range tm.Uploads {
				add(u, nil)
			}
			if _, ok := ix.opByID[tm.ID]; !ok {
				ix.opByID[tm.ID] = len(ix.ops)
				ix.ops = append(ix.ops, OpInfo{
					IAMAction: tm.ID, Service: a.Name, Operation: op, Method: tm.HTTPMethod,
					Path: "/" + fullTemplate(a.ServicePath, tm.Path), Risk: base.risk,
				})
			}
		}
	}
	for host, h := range ix.hosts {
		h.api = hostAPI(host, names[host])
	}
	sort.Slice(ix.ops, func(i, j int) bool { return ix.ops[i].IAMAction < ix.ops[j].IAMAction })
	for i, op := range ix.ops {
		ix.opByID[op.IAMAction] = i
	}
	return ix
}

// hostAPI names the API a host serves, or "" for a host shared by unrelated APIs
// (www.googleapis.com), where only the path tells them apart.
func hostAPI(host string, names map[string]bool) string {
	if len(names) == 1 {
		for n := range names {
			return n
		}
	}
	label, _, _ := strings.Cut(host, ".")
	if names[label] {
		return label
	}
	return ""
}

// versionRank orders versions stable first, then beta, then alpha and others.
func versionRank(v string) int {
	switch {
	case strings.Contains(v, "alpha"):
		return 2
	case strings.Contains(v, "beta"), strings.Contains(v, "preview"):
		return 1
	}
	return 0
}

// fullTemplate joins the service path and a method path; a path starting with "/" is
// already absolute from the host (media upload paths).
func fullTemplate(servicePath, path string) string {
	if strings.HasPrefix(path, "/") {
		return path[1:]
	}
	return servicePath + path
}

// splitTemplate splits a template into segments and the custom-method verb
// (`v1/{+name}:generateAccessToken` → [v1 {+name}], "generateAccessToken").
func splitTemplate(t string) (segs []string, verb string) {
	segs = strings.Split(t, "/")
	last := segs[len(segs)-1]
	if i := strings.LastIndexByte(last, ':'); i >= 0 && !strings.Contains(last[i:], "}") {
		segs[len(segs)-1], verb = last[:i], last[i+1:]
	}
	return segs, verb
}

func (ix *index) insert(root *node, m *method) {
	segs, verb := splitTemplate(m.template)
	m.tpl = segs
	m.skip = resourceStart(segs, m.api)
	for i := len(segs) - 1; i >= m.skip && !strings.HasPrefix(segs[i], "{"); i-- {
		m.tail++
	}
	n := root
	for _, s := range segs {
		switch {
		case strings.HasPrefix(s, "{+"):
			if n.greedy == nil {
				n.greedy = &node{}
			}
			n = n.greedy
		case strings.HasPrefix(s, "{"):
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			n = ix.child(ix.lits, n, s)
		}
	}
	if verb != "" {
		n = ix.child(ix.verbs, n, verb)
	}
	for _, e := range n.ends {
		if e.httpMethod == m.httpMethod && e.id == m.id && len(m.patterns) == 0 && len(e.patterns) == 0 {
			return // the same method again (another version or an upload path)
		}
	}
	n.ends = append(n.ends, m)
	ix.methods = append(ix.methods, m)
}

func (ix *index) child(edges map[edge]*node, n *node, seg string) *node {
	k := edge{n, seg}
	c := edges[k]
	if c == nil {
		c = &node{}
		edges[k] = c
	}
	return c
}

// resourceStart counts the leading template segments that name the API rather than the
// resource: the service path's, "upload" prefixes, the API name and the version.
func resourceStart(segs []string, a *apiInfo) int {
	i := 0
	for i < len(segs) && !strings.HasPrefix(segs[i], "{") {
		s := segs[i]
		switch {
		case s == "upload" || s == "resumable" || s == "batch":
		case isVersion(s):
		case (s == a.name || s == a.idPrefix) && i+1 < len(segs) && isVersion(segs[i+1]):
		default:
			return i
		}
		i++
	}
	return i
}

func isVersion(s string) bool {
	return len(s) >= 2 && s[0] == 'v' && s[1] >= '0' && s[1] <= '9'
}

var patternCache sync.Map // pattern → *regexp.Regexp (nil when it does not compile)

func compiled(p string) *regexp.Regexp {
	if v, ok := patternCache.Load(p); ok {
		return v.(*regexp.Regexp)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		re = nil
	}
	patternCache.Store(p, re)
	return re
}
