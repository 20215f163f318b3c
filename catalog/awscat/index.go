package awscat

import (
	"regexp"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/catalog/awscat/internal/awsmodel"
)

// index is the table arranged for lookups: every Name call is a few map lookups and, for rest
// protocols, one walk down a path trie.
type index struct {
	services  []*service
	bySigning map[string][]*service // signing name → services, primary first
	byEP      map[string][]*service // endpoint prefix → services
	byTarget  map[string][]*service // X-Amz-Target prefix → services
	ops       []OpInfo              // one per IAM action, sorted
	byIAM     map[string]int        // lower-cased IAM action → ops index
	endpoints endpointIndex
}

type service struct {
	awsmodel.Service
	byName map[string]*operation
	rest   map[string]*node // HTTP method → path trie
}

type operation struct {
	svc  *service
	op   awsmodel.Op
	info OpInfo
	// rest protocols
	segs     []string   // template path segments, labels kept as "{Name}" / "{Name+}"
	literals int        // literal segments, for specificity across services
	query    []queryLit // literal query discriminators from the template
}

type queryLit struct {
	key, value string
	hasValue   bool
}

func buildIndex(t *awsmodel.Table) *index {
	ix := &index{
		bySigning: map[string][]*service{},
		byEP:      map[string][]*service{},
		byTarget:  map[string][]*service{},
		byIAM:     map[string]int{},
	}
	for i := range t.Services {
		s := &service{Service: t.Services[i], byName: map[string]*operation{}}
		s.Ops = nil
		for _, o := range t.Services[i].Ops {
			op := &operation{svc: s, op: o}
			op.info = OpInfo{
				IAMAction: s.IAMPrefix + ":" + o.Name, Service: s.IAMPrefix, Operation: o.Name,
				Protocol: s.Protocol, Method: o.Method, URI: o.URI,
				Risk: catalog.DefaultRisk(catalog.AWS, s.IAMPrefix, o.Name),
			}
			s.byName[o.Name] = op
			if isRest(s.Protocol) {
				s.addRest(op)
			}
		}
		ix.services = append(ix.services, s)
		ix.bySigning[s.SigningName] = append(ix.bySigning[s.SigningName], s)
		ix.byEP[s.EndpointPrefix] = append(ix.byEP[s.EndpointPrefix], s)
		if s.TargetPrefix != "" {
			ix.byTarget[s.TargetPrefix] = append(ix.byTarget[s.TargetPrefix], s)
		}
	}
	for name, list := range ix.bySigning {
		sortPrimaryFirst(name, list)
	}
	seen := map[string]bool{}
	for _, name := range sortedKeys(ix.bySigning) {
		for _, s := range ix.bySigning[name] {
			for _, o := range sortedOps(s) {
				k := strings.ToLower(o.info.IAMAction)
				if seen[k] {
					continue
				}
				seen[k] = true
				ix.ops = append(ix.ops, o.info)
			}
		}
	}
	sort.Slice(ix.ops, func(i, j int) bool { return ix.ops[i].IAMAction < ix.ops[j].IAMAction })
	for i, o := range ix.ops {
		ix.byIAM[strings.ToLower(o.IAMAction)] = i
	}
	ix.endpoints = buildEndpoints(t, ix)
	return ix
}

// sortPrimaryFirst orders the services sharing a signing name: the one whose endpoint prefix is
// the signing name itself (s3 before s3control, dynamodb before streams.dynamodb) wins ties.
func sortPrimaryFirst(signing string, list []*service) {
	sort.SliceStable(list, func(i, j int) bool {
		pi, pj := list[i].EndpointPrefix == signing, list[j].EndpointPrefix == signing
		if pi != pj {
			return pi
		}
		mi, mj := list[i].Model == signing, list[j].Model == signing
		if mi != mj {
			return mi
		}
		return list[i].Model < list[j].Model
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedOps(s *service) []*operation {
	out := make([]*operation, 0, len(s.byName))
	for _, k := range sortedKeys(s.byName) {
		out = append(out, s.byName[k])
	}
	return out
}

func isRest(protocol string) bool { return protocol == "rest-json" || protocol == "rest-xml" }

var validRegion = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
