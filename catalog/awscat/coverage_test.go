package awscat

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// ambiguousOps are operations whose wire shape is identical to another operation's in the
// models, so no namer can tell them apart from the request: "model/Operation" → why. The
// namer gives the other operation (the current one, or the primary service's).
var ambiguousOps = map[string]string{
	"s3/GetBucketLifecycle":    "deprecated; same GET /{Bucket}?lifecycle as GetBucketLifecycleConfiguration",
	"s3/PutBucketLifecycle":    "deprecated; same PUT /{Bucket}?lifecycle as PutBucketLifecycleConfiguration",
	"s3/GetBucketNotification": "deprecated; same GET /{Bucket}?notification as GetBucketNotificationConfiguration",
	"s3/PutBucketNotification": "deprecated; same PUT /{Bucket}?notification as PutBucketNotificationConfiguration",
	"s3/ListDirectoryBuckets":  "GET / like ListBuckets; only the s3express-control host differs",
}

// endpointModeAmbiguousOps are told apart only by their real host: in endpoint mode every
// service of a signing name arrives at Airlock's one host. Forward mode names them.
var endpointModeAmbiguousOps = map[string]string{
	"chime/DeleteAppInstanceStreamingConfigurations": "deprecated chime (host chime.us-east-1) copy of chime-sdk-messaging DeleteMessagingStreamingConfigurations",
	"chime/GetAppInstanceStreamingConfigurations":    "deprecated chime (host chime.us-east-1) copy of chime-sdk-messaging GetMessagingStreamingConfigurations",
	"chime/PutAppInstanceStreamingConfigurations":    "deprecated chime (host chime.us-east-1) copy of chime-sdk-messaging PutMessagingStreamingConfigurations",
	"models.lex.v2/ListImports":                      "POST /imports/ is also lex-models (v1) StartImport; both sign as lex",
}

var templateLabel = regexp.MustCompile(`\{([^}]+)\}`)

// sdkRequest builds a request for an operation the way the SDKs serialise it: the json target
// header, a form-encoded Action/Version body, or the rest URI template with its labels filled,
// its literal query discriminators, and its required querystring parameters and headers.
// In forward mode Host is the service's real hostname (with the operation's host prefix, and
// S3 in virtual-hosted style); in endpoint mode it is Airlock's.
func sdkRequest(s *service, op *operation, forward bool) Request {
	r := Request{
		Host: "airlock.test:8443", BaseHost: "airlock.test:8443",
		Service: s.SigningName, Region: "us-east-1", Header: http.Header{},
	}
	switch s.Protocol {
	case "json":
		r.Method, r.Path = http.MethodPost, "/"
		r.Header.Set("X-Amz-Target", s.TargetPrefix+"."+op.op.Name)
		r.Header.Set("Content-Type", "application/x-amz-json-"+s.JSONVersion)
		r.Body = []byte("{}")
	case "query", "ec2":
		r.Method, r.Path = http.MethodPost, "/"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		r.Body = []byte(url.Values{"Action": {op.op.Name}, "Version": {s.APIVersion}}.Encode())
	default:
		r.Method = op.op.Method
		path, rawQuery, _ := strings.Cut(op.op.URI, "?")
		r.Path = templateLabel.ReplaceAllStringFunc(path, func(l string) string {
			name := l[1 : len(l)-1]
			if strings.HasSuffix(name, "+") {
				return "photos/2026/cat.jpg"
			}
			if name == "Bucket" {
				return "amzn-s3-demo-bucket"
			}
			return url.PathEscape("example-" + strings.ToLower(name))
		})
		q := url.Values{}
		for _, kv := range strings.Split(rawQuery, "&") {
			if kv == "" {
				continue
			}
			k, v, _ := strings.Cut(kv, "=")
			q.Set(k, v)
		}
		for _, k := range op.op.ReqQuery {
			if !q.Has(k) {
				q.Set(k, "1")
			}
		}
		for _, h := range op.op.ReqHeader {
			r.Header.Set(h, "x")
		}
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			r.Header.Set("X-Amz-Copy-Source", "src-bucket/src-key") // a copy names its source
		}
		r.RawQuery = q.Encode()
	}
	if forward {
		r.BaseHost = ""
		host, ok := Upstream(s.EndpointPrefix, r.Region)
		if !ok {
			panic("no upstream for " + s.Model)
		}
		hp := templateLabel.ReplaceAllString(op.op.HostPrefix, "123456789012")
		r.Host = hp + host
		if s.Model == "s3" && op.op.Name == "WriteGetObjectResponse" {
			r.Host = "route-1.s3-object-lambda.us-east-1.amazonaws.com"
			r.Service = "s3-object-lambda"
		}
		if rest, ok := strings.CutPrefix(r.Path, "/amzn-s3-demo-bucket"); ok && s.Model == "s3" {
			r.Host = "amzn-s3-demo-bucket." + r.Host
			r.Path = "/" + strings.TrimPrefix(rest, "/")
		}
	}
	return r
}

func TestCoverageEveryOperation(t *testing.T) {
	for _, mode := range []string{"endpoint", "forward"} {
		t.Run(mode, func(t *testing.T) { testCoverage(t, mode == "forward") })
	}
}

func testCoverage(t *testing.T, forward bool) {
	ix := loadIndex()
	type tally struct{ ok, all int }
	perProto := map[string]*tally{}
	var misses []string
	total, named, allowed := 0, 0, 0
	for _, s := range ix.services {
		if perProto[s.Protocol] == nil {
			perProto[s.Protocol] = &tally{}
		}
		for _, op := range sortedOps(s) {
			total++
			perProto[s.Protocol].all++
			key := s.Model + "/" + op.op.Name
			got := Name(sdkRequest(s, op, forward))
			if got.Known && got.IAMAction == op.info.IAMAction && got.Operation == op.op.Name {
				named++
				perProto[s.Protocol].ok++
				continue
			}
			_, amb := ambiguousOps[key]
			_, endpointAmb := endpointModeAmbiguousOps[key]
			if amb || endpointAmb && !forward {
				allowed++
				continue
			}
			misses = append(misses, fmt.Sprintf("%s (%s %s %s): got %s", key, s.Protocol, op.op.Method, op.op.URI, got.IAMAction))
		}
	}
	for _, p := range sortedKeys(perProto) {
		c := perProto[p]
		t.Logf("coverage %-9s %5d/%5d = %6.2f%%", p, c.ok, c.all, 100*float64(c.ok)/float64(c.all))
	}
	t.Logf("coverage overall   %5d/%5d = %6.2f%% (%d documented ambiguities, %d undocumented misses)",
		named, total, 100*float64(named)/float64(total), allowed, len(misses))
	sort.Strings(misses)
	for _, m := range misses {
		t.Errorf("miss: %s", m)
	}
}
