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
			prefix, iamName := s.IAMPrefix, o.Name
			if o.IAMName != "" {
				iamName = o.IAMName
				if p, n, ok := strings.Cut(o.IAMName, ":"); ok {
					prefix, iamName = p, n
				}
			}
			// The riskier reading of the API name and the IAM name: DeleteBucketCors is
			// s3:PutBucketCORS, but it still deletes.
			risk := catalog.DefaultRisk(catalog.AWS, s.IAMPrefix, o.Name)
			if o.IAMName != "" {
				risk = max(risk, catalog.DefaultRisk(catalog.AWS, prefix, iamName))
			}
			op.info = OpInfo{
				IAMAction: prefix + ":" + iamName, Service: prefix, Operation: o.Name,
				Protocol: s.Protocol, Method: o.Method, URI: o.URI, Risk: risk,
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
				k := strings.ToLower(o.info.Service + ":" + o.info.Operation)
				if seen[k] {
					continue // events and eventbridge, timestream-query and -write
				}
				seen[k] = true
				ix.ops = append(ix.ops, o.info)
			}
		}
	}
	sort.Slice(ix.ops, func(i, j int) bool {
		if ix.ops[i].IAMAction != ix.ops[j].IAMAction {
			return ix.ops[i].IAMAction < ix.ops[j].IAMAction
		}
		return ix.ops[i].Operation < ix.ops[j].Operation
	})
	// Lookup finds an operation by its API name (s3:ListObjectsV2) or, where IAM names it
	// differently, by the IAM action (s3:ListBucket → the first such operation, ListObjects).
	for i, o := range ix.ops {
		ix.byIAM[strings.ToLower(o.Service+":"+o.Operation)] = i
	}
	for i, o := range ix.ops {
		if k := strings.ToLower(o.IAMAction); !hasKey(ix.byIAM, k) {
			ix.byIAM[k] = i
		}
	}
	for op, v := range s3VersionActions { // s3:DeleteObjectVersion is DeleteObject with ?versionId
		k := strings.ToLower("s3:" + v)
		if i, ok := ix.byIAM[strings.ToLower("s3:"+op)]; ok && !hasKey(ix.byIAM, k) {
			ix.byIAM[k] = i
		}
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

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
