package awscat

import (
	"regexp"
	"strings"

	"github.com/airlockhq/airlock/catalog/awscat/internal/awsmodel"
)

// endpointIndex is endpoints.json arranged both ways: (endpoint prefix, region) → host for the
// upstream allowlist, and host → (signing name, region) for forward mode.
type endpointIndex struct {
	partitions []*partition
	hosts      map[string]hostInfo
	// labelPrefixed are endpoint prefixes whose hosts may carry one client-chosen leading DNS
	// label: an operation host prefix such as "{AccountId}." (s3-control).
	labelPrefixed map[string]bool
	knownEP       map[string]bool
	modelSigning  map[string]string // endpoint prefix → signing name of its (primary) model
	// hostPrefixes are the literal operation host prefixes of an endpoint prefix, without
	// the dot ("management", "api").
	hostPrefixes map[string]map[string]bool
	// dashPrefixed maps "runtime-medical-imaging" to "medical-imaging": host prefixes that end
	// in a dash extend the endpoint prefix's first label.
	dashPrefixed map[string]string
}

type partition struct {
	id, dnsSuffix, hostname string
	regionRx                *regexp.Regexp
	regions                 map[string]bool
	services                map[string]*partitionService
}

type partitionService struct {
	awsmodel.PartitionService
	byKey map[string]awsmodel.Endpoint
}

type hostInfo struct {
	endpointPrefix, signing, region string
	bucket                          string // set by lookupHost for S3 virtual-hosted-style
}

func buildEndpoints(t *awsmodel.Table, ix *index) endpointIndex {
	e := endpointIndex{hosts: map[string]hostInfo{}, labelPrefixed: map[string]bool{}, knownEP: map[string]bool{}, modelSigning: map[string]string{}}
	for ep, list := range ix.byEP {
		e.modelSigning[ep] = list[0].SigningName
	}
	e.hostPrefixes = map[string]map[string]bool{}
	e.dashPrefixed = map[string]string{}
	literalPrefixes := map[string][]string{} // endpoint prefix → literal host prefixes ("api.")
	for _, s := range ix.services {
		e.knownEP[s.EndpointPrefix] = true
		seen := map[string]bool{}
		for _, o := range s.byName {
			hp := o.op.HostPrefix
			switch {
			case hp == "" || seen[hp]:
			case strings.Contains(hp, "{"):
				e.labelPrefixed[s.EndpointPrefix] = true
			default:
				literalPrefixes[s.EndpointPrefix] = append(literalPrefixes[s.EndpointPrefix], hp)
				if strings.HasSuffix(hp, "-") {
					e.dashPrefixed[hp+s.EndpointPrefix] = s.EndpointPrefix
				}
				if label, ok := strings.CutSuffix(hp, "."); ok {
					if e.hostPrefixes[s.EndpointPrefix] == nil {
						e.hostPrefixes[s.EndpointPrefix] = map[string]bool{}
					}
					e.hostPrefixes[s.EndpointPrefix][label] = true
				}
			}
			seen[hp] = true
		}
	}
	signingOf := func(ep, scope string) string {
		if scope != "" {
			return scope
		}
		if list := ix.byEP[ep]; len(list) > 0 {
			return list[0].SigningName
		}
		return ep
	}
	for _, p := range t.Partitions {
		part := &partition{
			id: p.ID, dnsSuffix: p.DNSSuffix, hostname: p.Hostname,
			regionRx: regexp.MustCompile(p.RegionRegex),
			regions:  map[string]bool{}, services: map[string]*partitionService{},
		}
		for _, r := range p.Regions {
			part.regions[r] = true
		}
		for _, ps := range p.Services {
			e.knownEP[ps.EndpointPrefix] = true
			s := &partitionService{PartitionService: ps, byKey: map[string]awsmodel.Endpoint{}}
			for _, end := range ps.Endpoints {
				s.byKey[end.Key] = end
				region := end.Key
				if end.ScopeRegion != "" {
					region = end.ScopeRegion
				}
				info := hostInfo{endpointPrefix: ps.EndpointPrefix, signing: signingOf(ps.EndpointPrefix, end.ScopeService), region: region}
				// A host listed under two prefixes (rds.us-east-1 is also docdb's and
				// neptune's) belongs to the prefix it is named after.
				if old, dup := e.hosts[end.Host]; !dup || !strings.HasPrefix(end.Host, old.endpointPrefix+".") && strings.HasPrefix(end.Host, ps.EndpointPrefix+".") {
					e.hosts[end.Host] = info
				}
			}
			part.services[ps.EndpointPrefix] = s
		}
		e.partitions = append(e.partitions, part)
	}
	// Hosts with an operation's literal host prefix ("api.", "messaging-"), where no service
	// has that host of its own: chime's "messaging-" + chime... is messaging-chime's host.
	for _, part := range e.partitions {
		for _, ep := range sortedKeys(part.services) {
			for _, end := range part.services[ep].Endpoints {
				info, ok := e.hosts[end.Host]
				if !ok || info.endpointPrefix != ep {
					continue
				}
				for _, hp := range literalPrefixes[ep] {
					if _, dup := e.hosts[hp+end.Host]; !dup {
						e.hosts[hp+end.Host] = info
					}
				}
			}
		}
	}
	return e
}

// s3RuleHosts are S3 hosts that come from S3's endpoint rules rather than endpoints.json.
// s3-object-lambda carries a "{RequestRoute}." label (WriteGetObjectResponse), never a bucket.
var s3RuleHosts = map[string]bool{"s3-object-lambda": true, "s3express-control": true}

// signingAliases are signing names some SDK calls use for a service's operations.
var signingAliases = map[string]string{"s3-object-lambda": "s3", "s3express": "s3"}

// partitionFor returns the partition a region belongs to.
func (e *endpointIndex) partitionFor(region string) *partition {
	for _, p := range e.partitions {
		if p.regions[region] {
			return p
		}
	}
	if !validRegion.MatchString(region) {
		return nil
	}
	for _, p := range e.partitions {
		if p.regionRx.MatchString(region) {
			return p
		}
	}
	for _, p := range e.partitions { // pseudo-regions such as aws-global
		for _, s := range p.services {
			if _, ok := s.byKey[region]; ok {
				return p
			}
		}
	}
	return nil
}

// Upstream returns the real AWS hostname for a signing name or endpoint prefix in a region,
// from the endpoints table. It is the proxy's allowlist: the client never picks the host.
// Regions newer than the table are allowed when they match their partition's region pattern,
// with the partition's default hostname.
func Upstream(service, region string) (host string, ok bool) {
	ix := loadIndex()
	e := &ix.endpoints
	ep := service
	if !e.knownEP[ep] {
		list := ix.bySigning[service]
		if len(list) == 0 {
			return "", false
		}
		ep = list[0].EndpointPrefix
	}
	p := e.partitionFor(region)
	if p == nil {
		return "", false
	}
	ps := p.services[ep]
	if ps == nil {
		if len(ix.byEP[ep]) == 0 || !p.regions[region] && !p.regionRx.MatchString(region) {
			return "", false
		}
		return awsmodel.ExpandHost(p.hostname, ep, region, p.dnsSuffix), true
	}
	if end, ok := ps.byKey[region]; ok {
		return end.Host, true
	}
	if ps.Global != "" {
		if end, ok := ps.byKey[ps.Global]; ok {
			return end.Host, true
		}
	}
	if !p.regions[region] && !p.regionRx.MatchString(region) {
		return "", false
	}
	pattern := p.hostname
	if ps.Hostname != "" {
		pattern = ps.Hostname
	}
	return awsmodel.ExpandHost(pattern, ep, region, p.dnsSuffix), true
}

// ServiceForHost maps a real AWS hostname (forward mode) to its signing name and region,
// including S3 virtual-hosted-style hosts (bucket.s3.us-east-1.amazonaws.com,
// bucket.s3.amazonaws.com). ok is false for any host that is not an AWS endpoint.
func ServiceForHost(host string) (service, region string, ok bool) {
	h, ok := loadIndex().endpoints.lookupHost(stripPort(strings.ToLower(host)))
	return h.signing, h.region, ok
}

func (e *endpointIndex) lookupHost(host string) (hostInfo, bool) {
	if h, ok := e.exactOrPattern(host); ok {
		return h, true
	}
	// One or more leading labels before a known host: an S3 bucket (which may contain
	// dots) or an operation host prefix such as "{AccountId}." of s3-control.
	for i := strings.IndexByte(host, '.'); i > 0; i = nextDot(host, i) {
		rest := host[i+1:]
		h, ok := e.exactOrPattern(rest)
		if !ok {
			continue
		}
		label := host[:i]
		switch {
		case h.endpointPrefix == "s3":
			h.bucket = label
			return h, true
		case (e.labelPrefixed[h.endpointPrefix] || h.endpointPrefix == "s3-object-lambda") && !strings.Contains(label, "."):
			return h, true
		case e.hostPrefixes[h.endpointPrefix][label]:
			return h, true
		}
		return hostInfo{}, false
	}
	return hostInfo{}, false
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// exactOrPattern looks a host up in the table, then tries the partition patterns
// {service}.{region}.{dnsSuffix}, S3's dualstack and legacy dash forms, and -fips.
func (e *endpointIndex) exactOrPattern(host string) (hostInfo, bool) {
	if h, ok := e.hosts[host]; ok {
		return h, true
	}
	for _, p := range e.partitions {
		rest, ok := strings.CutSuffix(host, "."+p.dnsSuffix)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '.')
		if i < 0 {
			continue
		}
		ep, region := rest[:i], rest[i+1:]
		if !p.regions[region] && !(validRegion.MatchString(region) && p.regionRx.MatchString(region)) {
			return hostInfo{}, false
		}
		ep = strings.TrimSuffix(ep, "-fips")
		ep = strings.TrimSuffix(ep, ".dualstack")
		if s3RuleHosts[ep] {
			return hostInfo{endpointPrefix: ep, signing: "s3", region: region}, true
		}
		if base, ok := e.dashPrefixed[ep]; ok && !e.knownEP[ep] {
			ep = base
		}
		if !e.knownEP[ep] {
			return hostInfo{}, false
		}
		return hostInfo{endpointPrefix: ep, signing: e.signingFor(ep), region: region}, true
	}
	// Legacy S3 "s3-us-west-2.amazonaws.com".
	if rest, ok := strings.CutPrefix(host, "s3-"); ok {
		if region, ok := strings.CutSuffix(rest, ".amazonaws.com"); ok && validRegion.MatchString(region) {
			if p := e.partitionFor(region); p != nil && p.id == "aws" {
				return hostInfo{endpointPrefix: "s3", signing: "s3", region: region}, true
			}
		}
	}
	return hostInfo{}, false
}

func (e *endpointIndex) signingFor(ep string) string {
	if s, ok := e.modelSigning[ep]; ok {
		return s
	}
	for _, p := range e.partitions {
		if s := p.services[ep]; s != nil {
			for _, end := range s.Endpoints {
				if h, ok := e.hosts[end.Host]; ok {
					return h.signing
				}
			}
		}
	}
	return ep
}

// arnPartition returns the ARN partition of a region ("aws" when unknown).
func (e *endpointIndex) arnPartition(region string) string {
	if p := e.partitionFor(region); p != nil {
		return p.id
	}
	return "aws"
}
