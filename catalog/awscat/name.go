package awscat

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Request is what the namer needs from an HTTP request to AWS.
type Request struct {
	Method   string
	Host     string // Host header as received, host[:port]
	Path     string // escaped path as sent (URL.EscapedPath()); URL.Path misreads labels holding %2F
	RawQuery string
	Header   http.Header
	// Body may be nil for large or streamed bodies; then body-borne names and resources
	// (query protocol Action in a form body, json resource members) are not seen.
	Body []byte
	// Service and Region are the signing name and region of the SigV4 credential scope.
	Service string
	Region  string
	// BaseHost is Airlock's own host[:port] in endpoint mode, or "" in forward mode, where
	// Host is the real AWS host.
	BaseHost string
	// BodyUnread is set when the request has a body that Body does not hold (streamed, or
	// larger than the caller lets the namer read). A form-encoded POST is then Unknown: its
	// Action and parameters may be in the part not seen.
	BodyUnread bool
}

// maxBodyParse bounds the body the namer reads for a resource or a form-encoded Action: the
// verifier's default buffer (authn.SigV4Config.MaxBufferedBody), so that every body it holds
// can be read. A bigger or unread body makes a call that needs it Unknown.
const maxBodyParse = 8 << 20

// Name names a request. A call it cannot name is catalog.Unknown: risk Privilege, never read.
func Name(r Request) catalog.Action {
	a, _, _ := loadIndex().name(r)
	return a
}

// name also returns the matched operation (nil when unknown) and the candidates it chose from.
func (ix *index) name(r Request) (catalog.Action, *operation, candidateSet) {
	c := ix.candidates(r)
	if len(c.services) == 0 {
		return catalog.Unknown(catalog.AWS, unknownService(r.Service), c.region), nil, c
	}
	unknown := func() (catalog.Action, *operation, candidateSet) {
		return catalog.Unknown(catalog.AWS, c.services[0].IAMPrefix, c.region), nil, c
	}
	body := readableBody(r) // read (and parsed as JSON) at most once, by whichever needs it
	var op *operation
	var res string
	var params url.Values
	if targets := r.Header.Values("X-Amz-Target"); len(targets) > 0 {
		if len(targets) == 1 {
			op = ix.nameTarget(c, targets[0])
		}
		if op != nil {
			var ok bool
			if res, ok = jsonResource(op, &body); !ok {
				return unknown()
			}
		}
	} else if !ambiguousForm(r) {
		params = queryParams(r)
		if action := params.Get("Action"); action != "" {
			if repeatedParam(params) {
				return unknown()
			}
			op = nameAction(c, action, params.Get("Version"))
			if op != nil {
				res = queryResource(op, params)
			}
		}
		if op == nil {
			var ok bool
			if op, res, ok = nameRest(c, r, params, &body); !ok {
				return unknown()
			}
		}
	}
	iamAction := ""
	if op != nil {
		iamAction = op.info.IAMAction
		if op.svc.Model == "s3" && params.Has("versionId") {
			if v, ok := s3VersionActions[op.op.Name]; ok {
				iamAction = "s3:" + v
			}
		}
	}
	if op == nil {
		return unknown()
	}
	a := catalog.Action{
		Cloud: catalog.AWS, Service: op.info.Service, Operation: op.op.Name,
		IAMAction: iamAction, Resource: res, Region: c.region,
		Risk: op.info.Risk, Known: true,
	}
	if op.svc.Model == "s3" && (op.op.Name == "CopyObject" || op.op.Name == "UploadPartCopy") {
		src, srcAction, ok := s3CopySource(r.Header.Values("X-Amz-Copy-Source"), loadIndex().endpoints.arnPartition(c.region))
		if !ok {
			return unknown()
		}
		a.ReadsFrom(src, srcAction)
	}
	if op.svc.Model == "s3" {
		a.Also = s3HeaderPermissions(a.Also, op.op.Name, a.Resource, r.Header)
	}
	if members, ok := passRoleMembers[iamAction]; ok {
		var passed bool
		if a.Also, passed = passRolePermissions(a.Also, members, params, &body); !passed {
			return unknown()
		}
	}
	return a, op, c
}

// passRoleMembers are the request members that hand a role to a service, for the calls that
// take one: IAM then checks iam:PassRole on it besides the call's own action. A "writes flow"
// rule must not let RunInstances start an instance as an administrator role.
var passRoleMembers = map[string][]string{
	"ec2:RunInstances":                   {"IamInstanceProfile.Arn", "IamInstanceProfile.Name"},
	"lambda:CreateFunction":              {"Role"},
	"lambda:UpdateFunctionConfiguration": {"Role"},
	"ecs:RegisterTaskDefinition":         {"taskRoleArn", "executionRoleArn"},
	"states:CreateStateMachine":          {"roleArn"},
	"states:UpdateStateMachine":          {"roleArn"},
	"codebuild:CreateProject":            {"serviceRole"},
	"codebuild:UpdateProject":            {"serviceRole"},
	"glue:CreateJob":                     {"Role"},
}

// passRolePermissions adds iam:PassRole on each role (or instance profile) the request names in
// members, read from the query parameters or the JSON body. ok is false when the body holding
// them could not be read.
func passRolePermissions(also []catalog.Permission, members []string, params url.Values, body *requestBody) ([]catalog.Permission, bool) {
	var obj map[string]json.RawMessage
	for _, m := range members {
		v := params.Get(m)
		if v == "" {
			if obj == nil {
				var ok bool
				if obj, ok = jsonObject(body); !ok {
					return also, false
				}
			}
			v = jsonString(obj[m])
		}
		if v != "" {
			also = append(also, catalog.Permission{Action: "iam:PassRole", Resource: v})
		}
	}
	return also, true
}

// s3HeaderPermissions adds what S3 checks for the settings a write carries in its headers, on
// top of the operation's own action: an upload that sets an ACL needs s3:PutObjectAcl, one that
// sets tags s3:PutObjectTagging, object lock settings s3:PutObjectRetention and
// s3:PutObjectLegalHold; a bucket created with an ACL needs s3:PutBucketAcl, one with object lock
// s3:PutBucketObjectLockConfiguration. Naming only the write would let `x-amz-acl: public-read`
// publish an object past a rule that holds ACL changes.
func s3HeaderPermissions(also []catalog.Permission, op, resource string, h http.Header) []catalog.Permission {
	var extra [4]string
	n := 0
	switch op {
	case "PutObject", "CopyObject", "CreateMultipartUpload":
		if hasAny(h, s3ACLHeaders) {
			extra[n], n = "s3:PutObjectAcl", n+1
		}
		if hasAny(h, s3TaggingHeaders) {
			extra[n], n = "s3:PutObjectTagging", n+1
		}
		if hasAny(h, s3RetentionHeaders) {
			extra[n], n = "s3:PutObjectRetention", n+1
		}
		if hasAny(h, s3LegalHoldHeaders) {
			extra[n], n = "s3:PutObjectLegalHold", n+1
		}
	case "CreateBucket":
		if hasAny(h, s3ACLHeaders) {
			extra[n], n = "s3:PutBucketAcl", n+1
		}
		if hasAny(h, s3ObjectLockHeaders) {
			extra[n], n = "s3:PutBucketObjectLockConfiguration", n+1
		}
	}
	for _, a := range extra[:n] {
		also = append(also, catalog.Permission{Action: a, Resource: resource})
	}
	return also
}

var (
	s3ACLHeaders = []string{"X-Amz-Acl", "X-Amz-Grant-Read", "X-Amz-Grant-Write", "X-Amz-Grant-Read-Acp",
		"X-Amz-Grant-Write-Acp", "X-Amz-Grant-Full-Control"}
	s3TaggingHeaders    = []string{"X-Amz-Tagging"}
	s3RetentionHeaders  = []string{"X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date"}
	s3LegalHoldHeaders  = []string{"X-Amz-Object-Lock-Legal-Hold"}
	s3ObjectLockHeaders = []string{"X-Amz-Bucket-Object-Lock-Enabled"}
)

// hasAny reports whether h has any of the canonical header names.
func hasAny(h http.Header, names []string) bool {
	for _, n := range names {
		if len(h[n]) > 0 {
			return true
		}
	}
	return false
}

// s3CopySource reads a copy's x-amz-copy-source (bucket/key, URL-encoded, with an optional
// leading slash and ?versionId=) into the source object's ARN and the IAM action that reading
// it needs. An access point or Outposts ARN is passed on as it is. ok is false unless there is
// exactly one well-formed value: S3 would read some source, and the name must say which.
func s3CopySource(values []string, partition string) (src, action string, ok bool) {
	if len(values) != 1 {
		return "", "", false
	}
	v, query, _ := strings.Cut(values[0], "?")
	action = "s3:GetObject"
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil || len(q) != 1 || len(q["versionId"]) != 1 {
			return "", "", false
		}
		action = "s3:GetObjectVersion"
	}
	v, err := url.PathUnescape(v)
	if err != nil {
		return "", "", false
	}
	v = strings.TrimPrefix(v, "/")
	if strings.HasPrefix(v, "arn:") {
		return v, action, true
	}
	bucket, key, _ := strings.Cut(v, "/")
	if bucket == "" || key == "" {
		return "", "", false
	}
	return "arn:" + partition + ":s3:::" + bucket + "/" + key, action, true
}

// s3VersionActions are the IAM actions S3 checks instead when a call names an object version
// (?versionId=): a policy on s3:DeleteObject does not cover s3:DeleteObjectVersion.
var s3VersionActions = map[string]string{
	"GetObject":           "GetObjectVersion",
	"HeadObject":          "GetObjectVersion",
	"DeleteObject":        "DeleteObjectVersion",
	"GetObjectAcl":        "GetObjectVersionAcl",
	"PutObjectAcl":        "PutObjectVersionAcl",
	"GetObjectTagging":    "GetObjectVersionTagging",
	"PutObjectTagging":    "PutObjectVersionTagging",
	"DeleteObjectTagging": "DeleteObjectVersionTagging",
	"GetObjectAttributes": "GetObjectVersionAttributes",
}

func unknownService(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// candidateSet is the services a request may belong to, best first.
type candidateSet struct {
	services []*service
	region   string
	// hostEP is the endpoint prefix named by a real AWS host (forward mode), "" otherwise.
	hostEP string
	bucket string // S3 virtual-hosted-style bucket from the host
}

func (ix *index) candidates(r Request) candidateSet {
	c := candidateSet{region: r.Region}
	host := stripPort(strings.ToLower(r.Host))
	signing := r.Service
	if r.BaseHost == "" && host != "" {
		// Forward mode: the host is where the call goes, so it must be an AWS endpoint of the
		// very service the client signed for; otherwise the name would describe another call.
		h, ok := ix.endpoints.lookupHost(host)
		if !ok || signing != "" && canonicalSigning(signing) != canonicalSigning(h.signing) &&
			signing != ix.endpoints.modelSigning[h.endpointPrefix] {
			return c
		}
		c.hostEP, c.bucket = h.endpointPrefix, h.bucket
		if signing == "" {
			signing = h.signing
		}
		if c.region == "" {
			c.region = h.region
		}
	} else if base := stripPort(strings.ToLower(r.BaseHost)); host != base && strings.HasSuffix(host, "."+base) {
		c.bucket = strings.TrimSuffix(host, "."+base)
	}
	signing = canonicalSigning(signing)
	list := ix.bySigning[signing]
	if len(list) == 0 {
		list = ix.byEP[signing]
	}
	if len(list) == 0 && c.hostEP != "" {
		list = ix.byEP[c.hostEP] // signed with a credential scope service (IngestionService)
	}
	if c.hostEP != "" && len(list) > 1 {
		// The real host says which of the services sharing a signing name this is.
		ordered := make([]*service, 0, len(list))
		for _, s := range list {
			if s.EndpointPrefix == c.hostEP {
				ordered = append(ordered, s)
			}
		}
		for _, s := range list {
			if s.EndpointPrefix != c.hostEP {
				ordered = append(ordered, s)
			}
		}
		list = ordered
	}
	c.services = list
	return c
}

func canonicalSigning(s string) string {
	if alias, ok := signingAliases[s]; ok {
		return alias
	}
	return s
}

func stripPort(hostport string) string {
	// Most hosts have no port, and SplitHostPort allocates an error to say so.
	if strings.IndexByte(hostport, ':') < 0 {
		return strings.TrimSuffix(hostport, ".")
	}
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(hostport, ".")
}

// nameTarget names a json-protocol call by its X-Amz-Target, "Prefix.Operation". Only services
// of the credential scope's signing name are considered: a target of another service is unknown.
func (ix *index) nameTarget(c candidateSet, target string) *operation {
	i := strings.LastIndexByte(target, '.')
	if i < 0 {
		return nil
	}
	prefix, name := target[:i], target[i+1:]
	for _, s := range c.services {
		if s.TargetPrefix == prefix {
			if op := s.byName[name]; op != nil {
				return op
			}
		}
	}
	return nil
}

// nameAction names a query- or ec2-protocol call by its Action (and Version, which tells apart
// elasticloadbalancing 2012-06-01 from 2015-12-01). json services that also accept the query
// protocol (SQS) are named the same way.
func nameAction(c candidateSet, action, version string) *operation {
	var first *operation
	for _, s := range c.services {
		if isRest(s.Protocol) {
			continue
		}
		op := s.byName[action]
		if op == nil {
			continue
		}
		if version == "" || s.APIVersion == version {
			return op
		}
		if first == nil {
			first = op
		}
	}
	return first
}

// ambiguousForm reports a form-encoded POST whose body the namer cannot read in full: its
// Action could be there rather than (or besides) in the query string.
func ambiguousForm(r Request) bool {
	if r.Method != http.MethodPost || (!r.BodyUnread && len(r.Body) <= maxBodyParse) {
		return false
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

// repeatedParam reports a query-protocol parameter given twice (in the query, the body, or
// both). The SDKs never repeat one (lists are Name.1, Name.2), and which copy a service reads
// is not something to guess: Action=DescribeInstances&Action=TerminateInstances is Unknown.
func repeatedParam(params url.Values) bool {
	for _, v := range params {
		if len(v) > 1 {
			return true
		}
	}
	return false
}

func queryParams(r Request) url.Values {
	params, _ := url.ParseQuery(r.RawQuery)
	if r.Method != http.MethodPost || len(r.Body) == 0 || len(r.Body) > maxBodyParse {
		return params
	}
	// The media type without its parameters; mime.ParseMediaType would also build a map of them.
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return params
	}
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		return params
	}
	if params == nil {
		return form
	}
	for k, v := range form {
		params[k] = append(params[k], v...)
	}
	return params
}

// nameRest matches a rest-json or rest-xml call against every candidate service's trie and
// keeps the most specific match (most literal segments, then the best query/header fit).
func nameRest(c candidateSet, r Request, params url.Values, body *requestBody) (*operation, string, bool) {
	if params == nil {
		params = url.Values{}
	}
	rq := &restRequest{query: params, header: r.Header}
	if rq.header == nil {
		rq.header = http.Header{}
	}
	segs := splitPath(r.Path)
	// segsSlash is segs with a trailing slash added, for the retry: built at most once per
	// call and shared by the candidate services (matching only reads it).
	var segsSlash []string
	var best *operation
	var bestSegs []string
	bestScore := -1 << 30
	for _, s := range c.services {
		root := s.rest[r.Method]
		if root == nil {
			continue
		}
		ss, slash := segs, &segsSlash
		if c.bucket != "" && s.Model == "s3" {
			slash = nil
			ss = append([]string{url.PathEscape(c.bucket)}, segs...)
			if len(segs) == 1 && segs[0] == "" {
				ss = ss[:1] // "bucket.host/" is "/bucket"
			}
		}
		op, score, used := matchWithSlashRetry(root, ss, rq, slash)
		if op == nil {
			continue
		}
		score += op.literals * 100000
		if s.EndpointPrefix == c.hostEP {
			score += 10000000 // forward mode: the real host names the service
		}
		if score > bestScore {
			best, bestSegs, bestScore = op, used, score
		}
	}
	if best == nil {
		return nil, "", true
	}
	res, ok := restResource(best, bestSegs, body, c.region)
	return best, res, ok
}

// matchWithSlashRetry matches, then retries once with the trailing slash added or removed:
// clients and templates disagree about it ("/2015-03-31/functions/"). When slash is not nil it
// caches segs with the slash added, for the next service trying the same segs.
func matchWithSlashRetry(root *node, segs []string, rq *restRequest, slash *[]string) (*operation, int, []string) {
	if op, score := root.match(segs, 0, rq); op != nil {
		return op, score, segs
	}
	var alt []string
	if n := len(segs); n > 0 && segs[n-1] == "" {
		alt = segs[:n-1]
	} else if slash != nil {
		if *slash == nil {
			*slash = append(segs[:len(segs):len(segs)], "")
		}
		alt = *slash
	} else {
		alt = append(append([]string(nil), segs...), "")
	}
	if op, score := root.match(alt, 0, rq); op != nil {
		return op, score - 1, alt
	}
	return nil, 0, nil
}

// restResource reads the resource from the path labels or the JSON body; ok is false when it
// is in a body the namer could not read (see jsonObject).
func restResource(op *operation, segs []string, body *requestBody, region string) (string, bool) {
	if op.svc.Model == "s3" {
		b := op.label(segs, "Bucket")
		if b == "" {
			return "", true
		}
		if k := op.label(segs, "Key"); k != "" {
			return "arn:" + loadIndex().endpoints.arnPartition(region) + ":s3:::" + b + "/" + k, true
		}
		if op.op.Name == "DeleteObjects" {
			// s3:DeleteObject on each key listed in the body: the bucket's objects, as IAM
			// names them, so that rules on object ARNs and the session policy both cover it.
			return "arn:" + loadIndex().endpoints.arnPartition(region) + ":s3:::" + b + "/*", true
		}
		return "arn:" + loadIndex().endpoints.arnPartition(region) + ":s3:::" + b, true
	}
	var obj map[string]json.RawMessage
	for _, ref := range op.op.Resource {
		kind, name := ref[:2], ref[2:]
		switch kind {
		case "u:":
			if v := op.label(segs, name); v != "" {
				return v, true
			}
		case "b:":
			if obj == nil {
				var ok bool
				if obj, ok = jsonObject(body); !ok {
					return "", false
				}
			}
			if v := jsonString(obj[name]); v != "" {
				return v, true
			}
		}
	}
	return "", true
}

// requestBody is the body as the namer may read it: ok is false when the request has a body
// that the namer does not hold (streamed, or over maxBodyParse). Its JSON members are parsed
// once, by the first reader (the resource, then the roles a call passes).
type requestBody struct {
	data []byte
	ok   bool

	parsed bool
	obj    map[string]json.RawMessage
	objOK  bool
}

func readableBody(r Request) requestBody {
	if r.BodyUnread || len(r.Body) > maxBodyParse {
		return requestBody{}
	}
	return requestBody{data: r.Body, ok: true}
}

// jsonResource reads the resource members of a JSON-protocol body; ok is false when the
// operation names its resource in the body and the body cannot be read for it.
func jsonResource(op *operation, body *requestBody) (string, bool) {
	var obj map[string]json.RawMessage
	for _, ref := range op.op.Resource {
		if !strings.HasPrefix(ref, "b:") {
			continue
		}
		if obj == nil {
			var ok bool
			if obj, ok = jsonObject(body); !ok {
				return "", false
			}
		}
		if v := jsonString(obj[ref[2:]]); v != "" {
			return v, true
		}
	}
	return "", true
}

// jsonObject reads the body's top-level members. ok is false when the body was not readable
// or names a member twice ({"TableName":"dev","TableName":"prod"}): which one the service
// reads is not something to guess, and a resource read from the wrong one, or from none
// because the body was padded past what the namer reads, would slip past a rule that names
// the resource. A body that is not a JSON object reads as no members; the service refuses it.
func jsonObject(body *requestBody) (map[string]json.RawMessage, bool) {
	if !body.parsed {
		body.parsed = true
		body.obj, body.objOK = parseObject(body)
	}
	return body.obj, body.objOK
}

func parseObject(body *requestBody) (map[string]json.RawMessage, bool) {
	if !body.ok {
		return nil, false
	}
	obj := map[string]json.RawMessage{}
	if len(body.data) == 0 || json.Unmarshal(body.data, &obj) != nil {
		return map[string]json.RawMessage{}, true
	}
	if topLevelMembers(body.data) != len(obj) {
		return nil, false // a member given twice (perhaps spelled with escapes)
	}
	return obj, true
}

// topLevelMembers counts the members of a JSON object by its colons at depth one outside
// strings; on a valid object that is one per member, so fewer map entries mean a repeated
// name. A scan instead of a token decoder: it allocates nothing on every JSON-protocol call.
func topLevelMembers(data []byte) int {
	n, depth, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			n++
		}
	}
	return n
}

// jsonString reads a string or a list of strings (joined by commas).
func jsonString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, ",")
	}
	return ""
}

// queryResource reads a resource parameter: "RoleName", or a list "InstanceId.1" (ec2) /
// "Names.member.1" (query), joined by commas.
func queryResource(op *operation, params url.Values) string {
	for _, ref := range op.op.Resource {
		if !strings.HasPrefix(ref, "q:") {
			continue
		}
		name := ref[2:]
		if v := params.Get(name); v != "" {
			return v
		}
		var list []string
		for _, prefix := range [...]string{name + ".", name + ".member."} {
			for i := 1; ; i++ {
				v := params.Get(prefix + strconv.Itoa(i))
				if v == "" {
					break
				}
				list = append(list, v)
			}
			if len(list) > 0 {
				return strings.Join(list, ",")
			}
		}
	}
	return ""
}
