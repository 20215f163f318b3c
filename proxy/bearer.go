package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/catalog/azurecat"
	"github.com/airlockhq/airlock/catalog/gcpcat"
	"github.com/airlockhq/airlock/config"
)

// Endpoint mode for GCP and Azure. The client presents an Airlock-issued bearer token
// (`airlock credentials gcp|azure`) to an Airlock URL that names the cloud:
//
//	GCP:   {public_url}/gcp/{googleapis host}/{path as Google serves it}
//	       e.g. option.WithEndpoint("https://airlock/gcp/compute.googleapis.com/compute/v1/")
//	       for google.golang.org/api clients, ".../gcp/compute.googleapis.com/" for the
//	       cloud.google.com/go REST clients (they add "/compute/v1/..." themselves).
//	Azure: {public_url}/azure/{ARM path}, i.e. the ARM endpoint is {public_url}/azure.
//
// Airlock verifies the token, names and decides the call like any AWS call, swaps the token
// for one minted for the target (service account impersonation / ARM token) and forwards it
// to the allowlisted upstream: a googleapis host from the catalog, or management.azure.com;
// a target's api_endpoint / arm_endpoint replaces that base URL (private endpoints, fakes).

type (
	bearerVerifier interface {
		VerifyBearer(token string) (authn.Identity, string, error)
	}
	// tokenMinter is the GCP and the Azure broker alike: a short-lived access token for a target.
	tokenMinter interface {
		Token(ctx context.Context, t *config.Target) (token string, expires time.Time, err error)
	}
)

const (
	gcpPathPrefix      = "/gcp/"
	azurePathPrefix    = "/azure"
	defaultARMEndpoint = "https://management.azure.com"
)

// gcpRootRelative are paths that Google's generated clients send relative to the host root
// instead of the configured endpoint (storage media uploads and downloads), so they arrive
// without the /gcp/{host} prefix. Each maps to the one host that serves it.
var gcpRootRelative = map[string]string{
	"/upload/storage/":   "storage.googleapis.com",
	"/download/storage/": "storage.googleapis.com",
}

// IsBearerRequest reports whether r carries an Airlock-issued bearer token: GCP or Azure
// traffic whatever its path (the API's own bearer tokens are OIDC ID tokens, never these).
func IsBearerRequest(r *http.Request) bool {
	_, ok := bearerToken(r)
	return ok
}

func bearerToken(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(a[7:])
	return tok, strings.HasPrefix(tok, authn.BearerPrefix)
}

// bearerCloud is the cloud a bearer call is for, from the path the client was configured with.
func bearerCloud(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, gcpPathPrefix):
		return catalog.GCP
	case p == azurePathPrefix || strings.HasPrefix(p, azurePathPrefix+"/"):
		return catalog.Azure
	}
	for prefix := range gcpRootRelative {
		if strings.HasPrefix(p, prefix) {
			return catalog.GCP
		}
	}
	return ""
}

// serveBearer is the pipeline for GCP and Azure, in the same order as serveAWS.
func (p *Proxy) serveBearer(w http.ResponseWriter, c *call) error {
	if err := p.authenticateBearer(c); err != nil {
		return err
	}
	if err := p.nameBearer(c); err != nil {
		return err
	}
	if err := p.decide(c); err != nil {
		return err
	}
	if err := p.mintBearer(c); err != nil {
		return err
	}
	p.forwardAndAudit(w, c)
	return nil
}

// authenticateBearer opens the token and resolves its target, which must be of the cloud the
// request is addressed to.
func (p *Proxy) authenticateBearer(c *call) error {
	if p.cfg.Bearer == nil {
		return &cloudError{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken",
			Message: "this Airlock does not accept bearer tokens"}
	}
	route := c.cloud
	if route == "" {
		route = "gcp|azure"
	}
	tok, _ := bearerToken(c.r)
	id, cloud, err := p.cfg.Bearer.VerifyBearer(tok)
	if err != nil {
		e := &cloudError{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken",
			Message: "the Airlock token is invalid or was not issued by this Airlock; get a new one with 'airlock credentials " + route + " --target NAME'"}
		if errors.Is(err, authn.ErrCredentialExpired) {
			e.Code = "ExpiredAuthenticationToken"
			e.Message = "the Airlock token has expired; get a new one with 'airlock credentials " + route + " --target NAME'"
		}
		if c.cloud == "" {
			c.cloud = catalog.GCP // some JSON error rather than AWS's XML
		}
		return e
	}
	c.identity = id
	if c.cloud == "" {
		// Neither /gcp/ nor /azure/: answer in the format of the cloud the token is for.
		c.cloud = cloud
		return &cloudError{Status: http.StatusNotFound, Code: "NotFound",
			Message: "Airlock serves GCP calls under " + p.cfg.Settings.PublicURL + gcpPathPrefix + "{googleapis host}/ and Azure Resource Manager calls under " + p.cfg.Settings.PublicURL + azurePathPrefix + "/; set the client's API endpoint to one of them"}
	}
	if cloud != c.cloud {
		return &cloudError{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken",
			Message: fmt.Sprintf("the Airlock token was issued for %s target %q, not for %s; get one with 'airlock credentials %s --target NAME'", cloud, id.Target, c.cloud, c.cloud)}
	}
	t, ok := p.cfg.Settings.Target(id.Target)
	if !ok || t.Cloud != c.cloud {
		return &cloudError{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken",
			Message: fmt.Sprintf("the Airlock token names target %q, which is not a %s target of this Airlock; get a new one with 'airlock credentials %s --target NAME'", id.Target, c.cloud, c.cloud)}
	}
	c.target = t
	return nil
}

// nameBearer resolves where the call goes (from the allowlist and the target only) and names
// it with the cloud's catalog.
var methodOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

func (p *Proxy) nameBearer(c *call) error {
	// Google (and some Azure front ends) honour method-override headers: a POST named as one
	// method could run as another. Airlock names what runs, so it refuses the override.
	for _, h := range methodOverrideHeaders {
		if c.r.Header.Get(h) != "" {
			return &cloudError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: h + " is not accepted through Airlock: send the real HTTP method"}
		}
	}
	rel, err := bearerPath(c.r.URL)
	if err != nil {
		return err
	}
	switch c.cloud {
	case catalog.GCP:
		err = p.nameGCP(c, rel)
	default:
		err = p.nameAzure(c, rel)
	}
	if err != nil {
		return err
	}
	return p.bodyPermissions(c)
}

// bodyPermissions adds the permissions a call's body asks for besides its action (the service
// accounts a new VM runs as, the managed identities a resource is given), for the few methods
// whose body does that: the body is read (bounded) and put back for forwarding. A body that
// cannot be read as the method's JSON is refused, on the audit stream (step body_unreadable):
// what it grants could not be decided.
func (p *Proxy) bodyPermissions(c *call) error {
	needs, read := gcpcat.NeedsBody, gcpcat.BodyPermissions
	if c.cloud == catalog.Azure {
		needs, read = azurecat.NeedsBody, azurecat.BodyPermissions
	}
	if !needs(c.action) {
		return nil
	}
	refuse := func(status int, msg string) error {
		if err := p.recordDecisionFor(c, "deny", "body_unreadable", ""); err != nil {
			return err
		}
		return &cloudError{Status: status, Code: "InvalidRequest", Message: msg + " (request ID " + c.id + ")"}
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, maxNamingBody+1))
	if err != nil {
		return refuse(http.StatusBadRequest, "the request body could not be read")
	}
	if len(body) > maxNamingBody {
		return refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body of %s is larger than Airlock reads (%d MiB) to see which identities it assigns", c.action.IAMAction, maxNamingBody>>20))
	}
	c.r.Body = io.NopCloser(bytes.NewReader(body))
	c.r.ContentLength = int64(len(body))
	c.r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	also, ok := read(c.action, body)
	if !ok {
		return refuse(http.StatusBadRequest, fmt.Sprintf("the body of %s is not the JSON the method takes, so Airlock cannot tell which identities it assigns", c.action.IAMAction))
	}
	c.action.Also = append(c.action.Also, also...)
	return nil
}

// bearerPath is the request path after the cloud prefix, escaped as on the wire, with dot
// segments refused: the name and the upstream must see the same path, and an upstream that
// resolved "../" would not.
func bearerPath(u *url.URL) (string, error) {
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return "", &cloudError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "the request path must not contain '.' or '..' segments"}
		}
	}
	return u.EscapedPath(), nil
}

func (p *Proxy) nameGCP(c *call, escaped string) error {
	host, rest := "", ""
	if after, ok := strings.CutPrefix(escaped, gcpPathPrefix); ok {
		host, rest, _ = strings.Cut(after, "/")
		// The REST clients join "/v1/..." to an endpoint ending in "/": one slash is meant.
		rest = "/" + strings.TrimLeft(rest, "/")
	} else {
		for prefix, h := range gcpRootRelative {
			if strings.HasPrefix(escaped, prefix) {
				host, rest = h, escaped
			}
		}
	}
	host = strings.ToLower(host)
	if _, known := gcpcat.ServiceForHost(host); !known || !isHostname(host) {
		return &cloudError{Status: http.StatusNotFound, Code: "NotFound",
			Message: fmt.Sprintf("%q is not a Google API host that Airlock forwards to; set the endpoint to %s%s{googleapis host}/, e.g. %s%scompute.googleapis.com/compute/v1/", host, p.cfg.Settings.PublicURL, gcpPathPrefix, p.cfg.Settings.PublicURL, gcpPathPrefix)}
	}
	c.action = gcpcat.Name(gcpcat.Request{Host: host, Method: c.r.Method, Path: rest, RawQuery: c.r.URL.RawQuery, Header: c.r.Header})
	unnamedResource(&c.action, host, rest)
	c.action.Risk = p.cfg.Policy.Risk(c.action)
	base := "https://" + host
	if c.target.APIEndpoint != "" {
		base = c.target.APIEndpoint
	}
	up, err := upstreamAt(base, rest)
	if err != nil {
		return fmt.Errorf("target %s api_endpoint: %w", c.target.Name, err)
	}
	c.upstream = up
	return nil
}

// unnamedResource gives a call the catalog could not name its address as the resource: host
// and escaped path, never the query (signed URLs carry signatures there). The audit trail, the
// approval page and a grant then say which call it was, and the host prefix keeps it from
// reading as a resource name that a `when` condition on action.resource was written for.
func unnamedResource(a *catalog.Action, host, escapedPath string) {
	if a.Operation == catalog.UnknownOperation && a.Resource == "" {
		a.Resource = host + escapedPath
	}
}

func (p *Proxy) nameAzure(c *call, escaped string) error {
	rest := strings.TrimPrefix(escaped, azurePathPrefix)
	if rest == "" {
		rest = "/"
	}
	c.action = azurecat.Name(azurecat.Request{Method: c.r.Method, Path: rest, RawQuery: c.r.URL.RawQuery})
	unnamedResource(&c.action, strings.TrimPrefix(defaultARMEndpoint, "https://"), rest)
	c.action.Risk = p.cfg.Policy.Risk(c.action)
	base := defaultARMEndpoint
	if c.target.ARMEndpoint != "" {
		base = c.target.ARMEndpoint
	}
	up, err := upstreamAt(base, rest)
	if err != nil {
		return fmt.Errorf("target %s arm_endpoint: %w", c.target.Name, err)
	}
	c.upstream = up
	// The minted token is the target principal's: it must not reach any subscription but the
	// target's. The refusal is a decision, so it is on the audit stream.
	if msg := subscriptionScope(c.r.Method, armPath(rest), c.target); msg != "" {
		c.policy = "target-subscription"
		if err := p.recordDecisionFor(c, "deny", "wrong_subscription", ""); err != nil {
			return err
		}
		return &cloudError{Status: http.StatusForbidden, Code: "AuthorizationFailed", Message: msg + " (request ID " + c.id + ")"}
	}
	return nil
}

// subscriptionScope says why an ARM call is outside the target's subscription, or "" when it is
// inside. Calls above any subscription (listing subscriptions, provider metadata) may only read.
func subscriptionScope(method, path string, t *config.Target) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) >= 2 && strings.EqualFold(segs[0], "subscriptions") {
		if strings.EqualFold(segs[1], t.SubscriptionID) {
			return ""
		}
		return fmt.Sprintf("Airlock target %s is bound to subscription %s; this call is for subscription %s. Get a token for that subscription's target with 'airlock credentials azure --target NAME'", t.Name, t.SubscriptionID, segs[1])
	}
	if method == http.MethodGet || method == http.MethodHead {
		return ""
	}
	return fmt.Sprintf("Airlock target %s is bound to subscription %s; %s calls outside a subscription are not forwarded", t.Name, t.SubscriptionID, method)
}

// armPath is the decoded ARM path, as ARM reads the subscription out of it.
func armPath(escaped string) string {
	if p, err := url.PathUnescape(escaped); err == nil {
		return p
	}
	return escaped
}

// upstreamAt joins the escaped request path to an upstream base URL.
func upstreamAt(base, escaped string) (upstream, error) {
	b, err := url.Parse(base)
	if err != nil || b.Host == "" || (b.Scheme != "http" && b.Scheme != "https") {
		return upstream{}, fmt.Errorf("%q is not an absolute http(s) URL", base)
	}
	rel, err := url.Parse(escaped)
	if err != nil || rel.Host != "" || rel.Scheme != "" {
		return upstream{}, &cloudError{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "the request path is not a valid URL path"}
	}
	up := upstream{scheme: b.Scheme, host: b.Host, path: rel.Path, rawPath: rel.RawPath}
	return up.prefixed(strings.TrimRight(b.Path, "/")), nil
}

func isHostname(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		ch := h[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-') {
			return false
		}
	}
	return true
}

// mintBearer gets the target's access token from the cloud's broker (cached, single-flight).
func (p *Proxy) mintBearer(c *call) error {
	m := p.cfg.GCP
	if c.cloud == catalog.Azure {
		m = p.cfg.Azure
	}
	if m == nil {
		return &cloudError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable",
			Message: fmt.Sprintf("this Airlock has no %s credential broker configured (request ID %s)", c.cloud, c.id)}
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), 30*time.Second)
	defer cancel()
	tok, _, err := m.Token(ctx, c.target)
	if err != nil {
		return p.mintFailed(c, err)
	}
	c.token = tok
	return nil
}

// rewriteBearer points the outgoing request at the upstream and swaps the client's Airlock
// token for the minted one.
func (p *Proxy) rewriteBearer(pr *httputil.ProxyRequest) {
	c, out := toUpstream(pr)
	// Google also reads a token from ?access_token=; only the minted one may reach it.
	if q := pr.In.URL.Query(); q.Has("access_token") {
		q.Del("access_token")
		out.URL.RawQuery = q.Encode()
	}
	out.Header.Set("Authorization", "Bearer "+c.token)
}
