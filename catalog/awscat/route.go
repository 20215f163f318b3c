package awscat

import (
	"regexp"
	"strings"

	"github.com/airlockhq/airlock/catalog"
)

// Route names a request and says where it may go. In forward mode that is the request's own
// host, which Name has already checked is an AWS endpoint of the signed service. In endpoint
// mode it is the allowlisted host of the service the operation belongs to: services that share
// a signing name live on different hosts (bedrock InvokeModel is on bedrock-runtime, sagemaker
// InvokeEndpoint on runtime.sagemaker), so Upstream(r.Service, r.Region) alone is not enough.
// The operation's host prefix is added ("{AccountId}." for s3-control, from the
// x-amz-account-id header), and an S3 virtual-hosted bucket stays in the host.
// ok is false when no safe upstream exists; an unnamed call gets the signing name's host.
// protocol is the named operation's wire protocol (ec2, query, json, rest-json, rest-xml), ""
// when the call is unknown.
func Route(r Request) (a catalog.Action, protocol, upstream string, ok bool) {
	ix := loadIndex()
	a, op, c := ix.name(r)
	if op != nil {
		protocol = op.info.Protocol
	}
	if r.BaseHost == "" {
		if len(c.services) == 0 {
			return a, protocol, "", false
		}
		return a, protocol, stripPort(strings.ToLower(r.Host)), true
	}
	if op == nil {
		host, ok := Upstream(r.Service, c.region)
		return a, protocol, host, ok
	}
	host, ok := Upstream(op.svc.EndpointPrefix, c.region)
	if !ok {
		return a, protocol, "", false
	}
	if hp := op.op.HostPrefix; hp != "" {
		prefix, ok := expandHostPrefix(hp, r)
		if !ok {
			return a, protocol, "", false
		}
		host = prefix + host
	}
	if c.bucket != "" && op.svc.Model == "s3" {
		if !dnsBucket.MatchString(c.bucket) {
			return a, protocol, "", false
		}
		host = c.bucket + "." + host
	}
	return a, protocol, host, true
}

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dnsBucket = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{1,61}[a-z0-9])?$`)
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
)

// hostPrefixHeaders are where the labels of operation host prefixes come from on the wire.
var hostPrefixHeaders = map[string]string{
	"AccountId":    "X-Amz-Account-Id",
	"RequestRoute": "X-Amz-Request-Route",
}

func expandHostPrefix(hp string, r Request) (string, bool) {
	ok := true
	out := templateLabels.ReplaceAllStringFunc(hp, func(l string) string {
		name := l[1 : len(l)-1]
		v := strings.ToLower(r.Header.Get(hostPrefixHeaders[name]))
		if name == "AccountId" && !accountID.MatchString(v) || !dnsLabel.MatchString(v) {
			ok = false
		}
		return v
	})
	return out, ok
}

var templateLabels = regexp.MustCompile(`\{[^}]+\}`)
