package awsmodel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// iamPrefixOverrides maps a signing name (or, for the few where the signing name itself is shared
// or misleading, a model directory prefixed with "model:") to the IAM service prefix that IAM
// policies use. Everything not listed uses its signing name, which is the IAM prefix for almost
// every service. Reviewed against the Service Authorization Reference; keep each reason.
var iamPrefixOverrides = map[string]string{
	"monitoring":               "cloudwatch",     // CloudWatch signs as monitoring; actions are cloudwatch:*
	"email":                    "ses",            // SES v1/v2 endpoint prefix email; actions are ses:*
	"iotdata":                  "iot",            // IoT data plane (iot:Publish, iot:GetThingShadow)
	"iot-jobs-data":            "iot",            // IoT jobs data plane (iot:DescribeJobExecution)
	"ioteventsdata":            "iotevents",      // IoT Events data plane (iotevents:BatchPutMessage)
	"IoTSecuredTunneling":      "iot",            // secure tunneling (iot:OpenTunnel)
	"tagging":                  "tag",            // Resource Groups Tagging API (tag:GetResources)
	"cloudcontrolapi":          "cloudformation", // Cloud Control API (cloudformation:CreateResource)
	"mturk-requester":          "mechanicalturk", // Mechanical Turk (mechanicalturk:*)
	"forecastquery":            "forecast",       // Forecast query (forecast:QueryForecast)
	"awsssoportal":             "sso",            // IAM Identity Center portal; the closest IAM prefix
	"model:iotsecuretunneling": "iot",
}

// IAMPrefix returns the IAM service prefix for a model directory and its signing name.
func IAMPrefix(model, signingName string) string {
	if p, ok := iamPrefixOverrides["model:"+model]; ok {
		return p
	}
	if p, ok := iamPrefixOverrides[signingName]; ok {
		return p
	}
	return signingName
}

// Build reads the models of the aws-sdk-go module rooted at sdkDir.
func Build(sdkDir, sdkVersion string) (*Table, error) {
	files, err := inputFiles(sdkDir)
	if err != nil {
		return nil, err
	}
	hash, err := hashFiles(sdkDir, files)
	if err != nil {
		return nil, err
	}
	t := &Table{SDK: sdkVersion, InputSHA256: hash}
	for _, f := range files[:len(files)-1] {
		model := filepath.Base(filepath.Dir(filepath.Dir(f)))
		svc, err := readService(model, f)
		if err != nil {
			return nil, err
		}
		t.Services = append(t.Services, svc)
	}
	parts, err := readEndpoints(files[len(files)-1])
	if err != nil {
		return nil, err
	}
	t.Partitions = parts
	return t, nil
}

// InputHash hashes the files Build reads, without parsing them.
func InputHash(sdkDir string) (string, error) {
	files, err := inputFiles(sdkDir)
	if err != nil {
		return "", err
	}
	return hashFiles(sdkDir, files)
}

// inputFiles lists the newest api-2.json of every service, then endpoints.json.
func inputFiles(sdkDir string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(sdkDir, "models", "apis", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dirs)
	var files []string
	for _, dir := range dirs {
		versions, _ := filepath.Glob(filepath.Join(dir, "*", "api-2.json"))
		if len(versions) == 0 {
			continue
		}
		sort.Strings(versions) // versions are dates: the last is the newest
		files = append(files, versions[len(versions)-1])
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no models under %s", sdkDir)
	}
	return append(files, filepath.Join(sdkDir, "models", "endpoints", "endpoints.json")), nil
}

func hashFiles(root string, files []string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type apiModel struct {
	Metadata struct {
		APIVersion     string `json:"apiVersion"`
		EndpointPrefix string `json:"endpointPrefix"`
		SigningName    string `json:"signingName"`
		Protocol       string `json:"protocol"`
		ServiceID      string `json:"serviceId"`
		TargetPrefix   string `json:"targetPrefix"`
		JSONVersion    string `json:"jsonVersion"`
		GlobalEndpoint string `json:"globalEndpoint"`
	} `json:"metadata"`
	Operations map[string]struct {
		HTTP struct {
			Method     string `json:"method"`
			RequestURI string `json:"requestUri"`
		} `json:"http"`
		Input *struct {
			Shape string `json:"shape"`
		} `json:"input"`
		Endpoint *struct {
			HostPrefix string `json:"hostPrefix"`
		} `json:"endpoint"`
		Deprecated bool `json:"deprecated"`
	} `json:"operations"`
	Shapes map[string]shape `json:"shapes"`
}

type shape struct {
	Type     string          `json:"type"`
	Required []string        `json:"required"`
	Members  json.RawMessage `json:"members"`
	Member   *member         `json:"member"`
}

type member struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
	QueryName    string `json:"queryName"`
}

type namedMember struct {
	name string
	member
}

// orderedMembers decodes a members object keeping the model's order, which puts the primary
// identifier first (RoleName before PolicyArn).
func orderedMembers(raw json.RawMessage) ([]namedMember, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []namedMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var m member
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		out = append(out, namedMember{tok.(string), m})
	}
	return out, nil
}

var labelRE = regexp.MustCompile(`\{([^}]+?)\+?\}`)

func readService(model, path string) (Service, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Service{}, err
	}
	var m apiModel
	if err := json.Unmarshal(b, &m); err != nil {
		return Service{}, fmt.Errorf("%s: %w", path, err)
	}
	md := m.Metadata
	signing := md.SigningName
	if signing == "" {
		signing = md.EndpointPrefix
	}
	svc := Service{
		Model: model, ID: md.ServiceID, APIVersion: md.APIVersion,
		EndpointPrefix: md.EndpointPrefix, SigningName: signing,
		IAMPrefix: IAMPrefix(model, signing), Protocol: md.Protocol,
		TargetPrefix: md.TargetPrefix, JSONVersion: md.JSONVersion, GlobalEndpoint: md.GlobalEndpoint,
	}
	names := make([]string, 0, len(m.Operations))
	for n := range m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o := m.Operations[n]
		op := Op{Name: n, Method: o.HTTP.Method, URI: o.HTTP.RequestURI, Deprecated: o.Deprecated}
		if iamName := IAMActionName(model, n); iamName != n {
			op.IAMName = iamName
		}
		if o.Endpoint != nil {
			op.HostPrefix = o.Endpoint.HostPrefix
		}
		if o.Input != nil {
			if err := bindInput(&op, md.Protocol, m.Shapes, m.Shapes[o.Input.Shape]); err != nil {
				return Service{}, fmt.Errorf("%s %s: %w", model, n, err)
			}
		}
		svc.Ops = append(svc.Ops, op)
	}
	return svc, nil
}

// idSuffixes mark members that name a resource.
var idSuffixes = []string{"Arn", "ARN", "Arns", "ARNs", "Name", "Names", "Id", "Ids", "ID", "Identifier", "Identifiers"}

func idLike(name string) bool {
	for _, s := range idSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return name == "Bucket" || name == "Key" || name == "Resource"
}

func stringish(shapes map[string]shape, name string) bool {
	s := shapes[name]
	if s.Type == "string" {
		return true
	}
	return s.Type == "list" && s.Member != nil && shapes[s.Member.Shape].Type == "string"
}

func bindInput(op *Op, protocol string, shapes map[string]shape, in shape) error {
	members, err := orderedMembers(in.Members)
	if err != nil {
		return err
	}
	required := map[string]bool{}
	for _, r := range in.Required {
		required[r] = true
	}
	uriIndex := map[string]int{} // label -> position in template
	for i, l := range labelRE.FindAllStringSubmatch(op.URI, -1) {
		uriIndex[l[1]] = i
	}
	var uriRes, bodyReq, bodyOpt []string
	for _, m := range members {
		wire := m.LocationName
		if wire == "" {
			wire = m.name
		}
		switch m.Location {
		case "uri":
			if wire != m.name {
				op.URIMembers = append(op.URIMembers, [2]string{wire, m.name})
			}
			uriRes = append(uriRes, wire)
			continue
		case "querystring":
			op.QueryMembers = append(op.QueryMembers, [2]string{wire, m.name})
			if required[m.name] {
				op.ReqQuery = append(op.ReqQuery, wire)
			}
			continue
		case "header", "headers", "statusCode":
			if required[m.name] && m.Location == "header" {
				op.ReqHeader = append(op.ReqHeader, strings.ToLower(wire))
			}
			continue
		}
		if !idLike(m.name) || !stringish(shapes, m.Shape) {
			continue
		}
		var ref string
		switch protocol {
		case "ec2":
			switch {
			case m.QueryName != "":
				ref = "q:" + m.QueryName
			case m.LocationName != "":
				r := []rune(m.LocationName)
				r[0] = unicode.ToUpper(r[0])
				ref = "q:" + string(r)
			default:
				ref = "q:" + m.name
			}
		case "query":
			ref = "q:" + wire
		default: // json, rest-json: a top-level body member
			if protocol == "rest-xml" {
				continue
			}
			ref = "b:" + wire
		}
		if required[m.name] {
			bodyReq = append(bodyReq, ref)
		} else {
			bodyOpt = append(bodyOpt, ref)
		}
	}
	// URI labels in template order, ARN-like ones first: an ARN names the resource fully.
	sort.SliceStable(uriRes, func(i, j int) bool {
		ai, aj := isARNName(uriRes[i]), isARNName(uriRes[j])
		if ai != aj {
			return ai
		}
		return uriIndex[uriRes[i]] < uriIndex[uriRes[j]]
	})
	var res []string
	for _, l := range uriRes {
		res = append(res, "u:"+l)
	}
	res = append(res, bodyReq...)
	res = append(res, bodyOpt...)
	if len(res) > 3 {
		res = res[:3]
	}
	op.Resource = res
	return nil
}

func isARNName(s string) bool {
	l := strings.ToLower(s)
	return strings.HasSuffix(l, "arn") || strings.HasSuffix(l, "arns")
}

type endpointsFile struct {
	Partitions []struct {
		Partition   string `json:"partition"`
		DNSSuffix   string `json:"dnsSuffix"`
		RegionRegex string `json:"regionRegex"`
		Defaults    struct {
			Hostname string `json:"hostname"`
		} `json:"defaults"`
		Regions  map[string]json.RawMessage `json:"regions"`
		Services map[string]struct {
			Defaults struct {
				Hostname string `json:"hostname"`
			} `json:"defaults"`
			IsRegionalized    *bool  `json:"isRegionalized"`
			PartitionEndpoint string `json:"partitionEndpoint"`
			Endpoints         map[string]struct {
				Hostname        string `json:"hostname"`
				Deprecated      bool   `json:"deprecated"`
				CredentialScope struct {
					Region  string `json:"region"`
					Service string `json:"service"`
				} `json:"credentialScope"`
			} `json:"endpoints"`
		} `json:"services"`
	} `json:"partitions"`
}

func readEndpoints(path string) ([]Partition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f endpointsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Partition
	for _, p := range f.Partitions {
		part := Partition{ID: p.Partition, DNSSuffix: p.DNSSuffix, RegionRegex: p.RegionRegex, Hostname: p.Defaults.Hostname}
		for r := range p.Regions {
			part.Regions = append(part.Regions, r)
		}
		sort.Strings(part.Regions)
		prefixes := make([]string, 0, len(p.Services))
		for ep := range p.Services {
			prefixes = append(prefixes, ep)
		}
		sort.Strings(prefixes)
		for _, ep := range prefixes {
			s := p.Services[ep]
			ps := PartitionService{EndpointPrefix: ep}
			pattern := part.Hostname
			if s.Defaults.Hostname != "" && s.Defaults.Hostname != part.Hostname {
				ps.Hostname = s.Defaults.Hostname
				pattern = s.Defaults.Hostname
			}
			if s.IsRegionalized != nil && !*s.IsRegionalized {
				ps.Global = s.PartitionEndpoint
			}
			keys := make([]string, 0, len(s.Endpoints))
			for k := range s.Endpoints {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				e := s.Endpoints[k]
				if e.Deprecated {
					continue
				}
				host := e.Hostname
				if host == "" {
					host = pattern
				}
				host = ExpandHost(host, ep, k, p.DNSSuffix)
				end := Endpoint{Key: k, Host: host, ScopeService: e.CredentialScope.Service}
				if e.CredentialScope.Region != k {
					end.ScopeRegion = e.CredentialScope.Region
				}
				ps.Endpoints = append(ps.Endpoints, end)
			}
			part.Services = append(part.Services, ps)
		}
		out = append(out, part)
	}
	return out, nil
}

// ExpandHost fills a hostname pattern such as "{service}.{region}.{dnsSuffix}".
func ExpandHost(pattern, service, region, dnsSuffix string) string {
	r := strings.NewReplacer("{service}", service, "{region}", region, "{dnsSuffix}", dnsSuffix)
	return r.Replace(pattern)
}
