// Package proxy is Airlock's front door for cloud traffic: it receives calls (endpoint mode and
// forward/MITM mode), strings the pipeline stages together — authenticate, name, decide, mint,
// forward, audit — and writes every refusal in the cloud's own error format. Decisions, credential
// minting and audit live in their own packages; this package only wires them in order.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/signer"
)

// The stages, declared here where they are consumed, each as small as the pipeline needs.
type (
	sigV4Verifier interface {
		Verify(r *http.Request) (*authn.SigV4Result, error)
	}
	decider interface {
		Decide(in approval.Input) approval.Decision
		Risk(a catalog.Action) catalog.Risk
	}
	holder interface {
		UseGrant(ctx context.Context, in approval.Input) (*approval.Grant, bool, error)
		Hold(ctx context.Context, in approval.Input, d approval.Decision) (*approval.Request, error)
		Wait(ctx context.Context, id string, max time.Duration) (*approval.Request, error)
	}
	awsMinter interface {
		Credentials(ctx context.Context, t *config.Target, m signer.MintRequest) (aws.Credentials, error)
	}
	auditor interface {
		Record(ctx context.Context, e *audit.Event) error
	}
	// bearerVerifier and tokenMinter (GCP, Azure) are in bearer.go.
)

// Config wires the stages. Every field but Bearer, GCP, Azure, Transport, Now and Metrics is
// required; without Bearer no GCP or Azure call is accepted, and without a cloud's broker its
// calls are refused after the decision.
type Config struct {
	Settings  *config.Config
	Logger    *slog.Logger
	SigV4     sigV4Verifier
	Bearer    bearerVerifier
	Policy    decider
	Approvals holder
	AWS       awsMinter
	GCP       tokenMinter
	Azure     tokenMinter
	Audit     auditor
	Metrics   *Metrics
	Transport http.RoundTripper
	Now       func() time.Time
}

// CheckAndSetDefaults refuses a half-wired proxy and fills the optional parts.
func (c *Config) CheckAndSetDefaults() error {
	var missing []string
	for name, v := range map[string]any{"Settings": c.Settings, "Logger": c.Logger, "SigV4": c.SigV4,
		"Policy": c.Policy, "Approvals": c.Approvals, "AWS": c.AWS, "Audit": c.Audit} {
		if v == nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("proxy: missing %v", missing)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Transport == nil {
		c.Transport = defaultTransport()
	}
	return nil
}

// Proxy serves cloud calls.
type Proxy struct {
	cfg           Config
	forward       *httputil.ReverseProxy
	forwardBearer *httputil.ReverseProxy
	base          atomic.Pointer[parsedBase] // see baseHost
}

// New builds the proxy.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg}
	p.forward = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: cfg.Transport,
		// 0: a response of unknown length (chunked, event streams) is still flushed after every
		// write, as ReverseProxy always does for those; one of known length goes out as the
		// server's 4 KiB write buffer fills and in full when the copy ends. A negative interval
		// would also flush known-length responses after every write, and start a timer that
		// fires at once on its own goroutine for every call: two writes and a wake-up per call.
		FlushInterval:  0,
		ModifyResponse: p.observeResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		// Without a pool ReverseProxy allocates (and clears) a fresh 32 KiB copy buffer for
		// every response.
		BufferPool: copyBuffers{},
	}
	bearer := *p.forward
	bearer.Rewrite = p.rewriteBearer
	p.forwardBearer = &bearer
	return p, nil
}

// copyBuffers lends ReverseProxy its response copy buffers from a bounded free list. A channel
// rather than a sync.Pool: ReverseProxy hands buffers back as slices, and putting a slice into
// a sync.Pool allocates a new box for it on every call.
type copyBuffers struct{}

var freeCopyBuffers = make(chan []byte, 256)

func (copyBuffers) Get() []byte {
	select {
	case b := <-freeCopyBuffers:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (copyBuffers) Put(b []byte) {
	if cap(b) < 32<<10 {
		return
	}
	select {
	case freeCopyBuffers <- b[:32<<10]:
	default: // the list is full: let the collector have it
	}
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.ResponseHeaderTimeout = 5 * time.Minute
	// The proxy forwards the client's Accept-Encoding untouched; never add our own.
	t.DisableCompression = true
	return t
}

// IsAWSRequest reports whether r carries a SigV4 signature (header or presigned query): such a
// request is cloud traffic whatever its path, so an S3 bucket named "api" never reaches the API.
func IsAWSRequest(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); len(a) >= 16 && a[:16] == "AWS4-HMAC-SHA256" {
		return true
	}
	return r.URL.RawQuery != "" && r.URL.Query().Get("X-Amz-Algorithm") != ""
}

// call is one request's state as it moves through the stages.
type call struct {
	id        string
	start     time.Time
	r         *http.Request
	clientIP  string
	sig       *authn.SigV4Result
	identity  authn.Identity
	target    *config.Target
	action    catalog.Action
	protocol  awsProtocol
	decision  approval.Decision
	approvers []string
	policy    string
	creds     aws.Credentials
	upstream  upstream
	// awsHost is the catalog's allowlisted upstream host for the named operation (endpoint
	// mode); awsHostOK is false when there is none.
	awsHost   string
	awsHostOK bool
	status    int
	// cloud is set for GCP and Azure calls (bearer tokens); "" is AWS.
	cloud string
	// token is the minted GCP/Azure access token; it never leaves the outgoing request.
	token string
	// held is the approval request when the call was held, for the error details.
	held *approval.Request
}

type callKey struct{}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ServeHTTP is endpoint mode: the aws CLI or an SDK with AWS_ENDPOINT_URL pointing here, and
// GCP and Azure clients whose API endpoint is {public_url}/gcp/{host}/ or {public_url}/azure.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{id: newRequestID(), start: p.cfg.Now(), r: r, clientIP: clientIP(r)}
	// Every answer names Airlock's request ID: it is the audit trail's request_id, so a user
	// or an operator can find the call's decision from any response.
	w.Header().Set("X-Airlock-Request-Id", c.id)
	if IsBearerRequest(r) && !IsAWSRequest(r) {
		c.cloud = bearerCloud(r)
		if err := p.serveBearer(w, c); err != nil {
			p.refuse(w, c, err)
		}
		return
	}
	if err := p.serveAWS(w, c); err != nil {
		p.refuse(w, c, err)
	}
}

// serveAWS is the pipeline of ARCHITECTURE.md, in order. Each stage either fills the call or
// returns the error the client will see.
func (p *Proxy) serveAWS(w http.ResponseWriter, c *call) error {
	if err := p.authenticate(c); err != nil {
		return err
	}
	p.name(c)
	if err := p.decide(c); err != nil {
		return err
	}
	if err := p.mint(c); err != nil {
		return err
	}
	p.forwardAndAudit(w, c)
	return nil
}

// refuse writes err in the client's format and logs it. Refusals after authentication are
// already on the audit stream (the decision event); those before it are logged.
func (p *Proxy) refuse(w http.ResponseWriter, c *call, err error) {
	var ce *cloudError
	var ae *authn.Error
	switch {
	case errors.As(err, &ce):
	case errors.As(err, &ae):
		ce = &cloudError{Status: ae.Status, Code: ae.Code, Message: ae.Message}
	default:
		p.cfg.Logger.Error("internal error", "request_id", c.id, "err", err)
		ce = &cloudError{Status: http.StatusInternalServerError, Code: "InternalFailure",
			Message: "Airlock could not process the request (request ID " + c.id + ")"}
	}
	level := slog.LevelInfo
	if ce.Status >= 500 {
		level = slog.LevelWarn
	}
	p.cfg.Logger.Log(c.r.Context(), level, "call refused", "request_id", c.id, "code", ce.Code,
		"status", ce.Status, "action", c.action.IAMAction, "subject", c.identity.Subject)
	cloud := c.action.Cloud
	if cloud == "" {
		cloud = c.cloud
	}
	p.cfg.Metrics.refused(cloud, ce.Code)
	writeCloudError(w, c, ce)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
