package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/airlockhq/airlock/catalog/awscat"
)

// upstream is where a call goes. It is computed from the target's configuration and the
// catalog's endpoint allowlist only: the client's Host header and credential scope select among
// allowlisted endpoints but can never name a host of their own.
type upstream struct {
	scheme, host string
	// path is the decoded path; rawPath its encoding as the client sent it ("" when the
	// default encoding of path is the same), so object keys reach the upstream byte for byte.
	path, rawPath string
}

func (u upstream) prefixed(prefix string) upstream {
	if u.rawPath != "" {
		u.rawPath = prefix + u.rawPath
	}
	u.path = prefix + u.path
	return u
}

// upstreamFor resolves the upstream for an authenticated, named AWS call.
func (p *Proxy) upstreamFor(c *call) (upstream, error) {
	bucket := p.s3Bucket(c)
	if bucket != "" && !validBucket(bucket) {
		return upstream{}, &cloudError{Status: http.StatusBadRequest, Code: "InvalidBucketName",
			Message: "the bucket name in the Host header is not a valid S3 bucket name"}
	}
	rel := upstream{path: c.r.URL.Path, rawPath: c.r.URL.RawPath}
	if rel.path == "" {
		rel.path = "/"
	}
	fwdHost, forward := forwardHost(c.r.Context())
	if forward {
		if err := checkForwardHost(c, fwdHost); err != nil {
			return upstream{}, err
		}
	}
	if ep := c.target.Endpoint; ep != "" {
		// A private or S3-compatible endpoint (MinIO in tests) takes every service of the
		// target, path-style.
		u, err := url.Parse(ep)
		if err != nil {
			return upstream{}, fmt.Errorf("target %s endpoint: %w", c.target.Name, err)
		}
		if bucket != "" {
			rel = rel.prefixed("/" + bucket)
		}
		rel = rel.prefixed(strings.TrimRight(u.Path, "/"))
		rel.scheme, rel.host = u.Scheme, u.Host
		return rel, nil
	}
	if c.sig.Service == "sts" && c.target.STSEndpoint != "" {
		u, err := url.Parse(c.target.STSEndpoint)
		if err != nil {
			return upstream{}, fmt.Errorf("target %s sts_endpoint: %w", c.target.Name, err)
		}
		rel = rel.prefixed(strings.TrimRight(u.Path, "/"))
		rel.scheme, rel.host = u.Scheme, u.Host
		return rel, nil
	}
	if forward {
		// Forward mode: exactly the host the client asked for, which is allowlisted (the
		// endpoints table knows it, for the service and region the call is signed for).
		rel.scheme, rel.host = "https", fwdHost
		return rel, nil
	}
	if !c.awsHostOK {
		return upstream{}, &cloudError{Status: http.StatusBadRequest, Code: "InvalidRequest",
			Message: fmt.Sprintf("Airlock knows no AWS endpoint for %s (service %q, region %q)", c.action.IAMAction, c.sig.Service, c.sig.Region)}
	}
	rel.scheme, rel.host = "https", c.awsHost
	switch {
	case bucket == "":
	case strings.HasPrefix(c.awsHost, bucket+".") && strings.Contains(bucket, "."):
		// Buckets with dots go path-style: their names break the TLS wildcard certificate.
		rel.host = strings.TrimPrefix(c.awsHost, bucket+".")
		rel = rel.prefixed("/" + bucket)
	case !strings.HasPrefix(c.awsHost, bucket+"."):
		rel = rel.prefixed("/" + bucket)
	}
	return rel, nil
}

// s3Bucket splits a virtual-hosted-style S3 request (bucket.airlock.example:8080) into the
// bucket; path-style requests return "".
func (p *Proxy) s3Bucket(c *call) string {
	if c.sig.Service != "s3" {
		return ""
	}
	if fwd, ok := forwardHost(c.r.Context()); ok {
		return s3BucketOfAWSHost(fwd)
	}
	host := stripPort(c.r.Host)
	base := stripPort(p.baseHost())
	if base == "" || host == base || !strings.HasSuffix(host, "."+base) {
		return ""
	}
	return strings.TrimSuffix(host, "."+base)
}

// validBucket is S3's bucket naming rule; anything else never becomes part of a hostname.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case (ch == '.' || ch == '-') && i > 0 && i < len(b)-1:
		default:
			return false
		}
	}
	return true
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// checkForwardHost refuses a forward-mode call whose host is not the endpoint of the service
// and region it is signed for: the host decides where the call goes, the signature what it is.
func checkForwardHost(c *call, host string) error {
	service, region, ok := awscat.ServiceForHost(host)
	if ok && service == c.sig.Service && region == c.sig.Region {
		return nil
	}
	return &cloudError{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: fmt.Sprintf("the call is signed for %s in %s but was sent to %s; Airlock forwards a call only to the endpoint of the service and region it is signed for", c.sig.Service, c.sig.Region, host)}
}

// s3BucketOfAWSHost returns the bucket of a virtual-hosted-style S3 host
// (bucket.s3.us-east-1.amazonaws.com), "" for the service host itself.
func s3BucketOfAWSHost(host string) string {
	bucket := ""
	for i := strings.IndexByte(host, '.'); i > 0; {
		if _, _, ok := awscat.ServiceForHost(host[i+1:]); ok {
			bucket = host[:i] // keep going: the shortest service host leaves the whole bucket
		}
		j := strings.IndexByte(host[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return bucket
}

// namingBaseHost is Airlock's own host for the namer in endpoint mode, and "" in forward mode,
// where the request's Host is the real AWS host.
func (p *Proxy) namingBaseHost(c *call) string {
	if _, ok := forwardHost(c.r.Context()); ok {
		return ""
	}
	return p.baseHost()
}
