package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/catalog/awscat"
	"github.com/airlockhq/airlock/internal/sigv4"
	"github.com/airlockhq/airlock/signer"
)

// authenticate verifies the client's SigV4 signature against the credential Airlock issued and
// resolves the target the credential is bound to.
func (p *Proxy) authenticate(c *call) error {
	res, err := p.cfg.SigV4.Verify(c.r)
	if err != nil {
		return err
	}
	c.sig = res
	c.identity = res.Identity
	t, ok := p.cfg.Settings.Target(res.Identity.Target)
	if !ok || t.Cloud != catalog.AWS {
		return &cloudError{Status: http.StatusForbidden, Code: "InvalidClientTokenId",
			Message: fmt.Sprintf("the credential names target %q, which is not an AWS target of this Airlock; run 'airlock credentials aws --target NAME' again", res.Identity.Target)}
	}
	c.target = t
	if !regionAllowed(t.Regions, res.Service, res.Region) {
		return &cloudError{Status: http.StatusForbidden, Code: "AccessDenied",
			Message: fmt.Sprintf("region %s is not enabled for target %s (allowed: %s)", res.Region, t.Name, strings.Join(t.Regions, ", "))}
	}
	return nil
}

// globalServices sign with us-east-1 whatever region the user works in.
var globalServices = map[string]bool{"iam": true, "sts": true, "route53": true, "cloudfront": true,
	"organizations": true, "s3": true, "globalaccelerator": true, "shield": true, "waf": true}

func regionAllowed(regions []string, service, region string) bool {
	if len(regions) == 0 || slices.Contains(regions, region) {
		return true
	}
	return region == "us-east-1" && globalServices[service]
}

// name turns the request into an Action with the catalog and applies the configured risk tiers.
func (p *Proxy) name(c *call) {
	// The verifier buffered small bodies to check their hash; the namer reads those bytes in
	// place. Streamed bodies are data, not control, and are not looked at.
	body, buffered := authn.BufferedBody(c.r)
	if len(body) > maxNamingBody {
		body = nil
		buffered = false
	}
	// Route names the call and, in endpoint mode, finds the allowlisted host of the operation's
	// own service (services sharing a signing name live on different hosts). The escaped path
	// keeps a %2F inside a URI label from splitting it in two.
	var protocol string
	c.action, protocol, c.awsHost, c.awsHostOK = awscat.Route(awscat.Request{
		Method: c.r.Method, Host: c.r.Host, Path: c.r.URL.EscapedPath(), RawQuery: c.r.URL.RawQuery,
		Header: c.r.Header, Body: body, BodyUnread: !buffered, Service: c.sig.Service, Region: c.sig.Region,
		BaseHost: p.namingBaseHost(c),
	})
	c.action.Risk = p.cfg.Policy.Risk(c.action)
	if protocol != "" {
		c.protocol = guessAWSProtocol(c.r, c.sig.Service, protocol)
	}
}

// maxNamingBody bounds what the namer may look at: as much as the verifier buffers by default.
// A call whose name or resource is in a bigger body is Unknown (awscat.Request.BodyUnread).
const maxNamingBody = 8 << 20

func (p *Proxy) baseHost() string {
	// Parsed once per public_url value rather than on every call (twice per call: naming and
	// the S3 bucket); the setting is read each time, so a changed public_url is still seen.
	raw := p.cfg.Settings.PublicURL
	if b := p.base.Load(); b != nil && b.raw == raw {
		return b.host
	}
	host := ""
	if u, err := url.Parse(raw); err == nil {
		host = u.Host
	}
	p.base.Store(&parsedBase{raw: raw, host: host})
	return host
}

// decideAlso decides each other permission the call needs (c.action.Also: a copy's read of its
// source, the ACL an upload sets, the role or identity a new resource is given) as a call of its
// own, so that a copy out of a bucket whose reads are held, or an upload that makes itself
// public, cannot take the data past the rule. A denied one refuses the call, naming its rule; a
// held one holds the call with an approval request for that permission, whose grant lets the
// call (or its retry) go on.
func (p *Proxy) decideAlso(c *call, in approval.Input) error {
	for _, perm := range c.action.Also {
		extra, ok := catalog.Named(c.action.Cloud, perm.Action)
		if !ok { // the catalogs name every permission they add; this is a programming error
			extra = catalog.Unknown(c.action.Cloud, c.action.Service, "")
		}
		extra.Resource, extra.Region, extra.Account = perm.Resource, c.action.Region, c.action.Account
		extra.Risk = p.cfg.Policy.Risk(extra)
		in.Action = extra
		d := p.cfg.Policy.Decide(in)
		if d.Effect == approval.Allow {
			continue
		}
		primary, primaryDecision := c.policy, c.decision
		if d.Rule != nil {
			c.policy = d.Rule.Name
		}
		c.decision = d
		if d.Effect == approval.Hold {
			// Held like a call of its own: the approval request names this permission, and
			// its grant lets the call through now or on a retry.
			if err := p.holdFor(c, in, d, false); err != nil {
				return err
			}
			c.policy, c.decision = primary, primaryDecision
			continue
		}
		if err := p.recordDecisionFor(c, "deny", "also_not_allowed", ""); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s also needs %s on %s, which is denied by Airlock policy %q", c.action.IAMAction, perm.Action, orAll(perm.Resource), orDefault(c.policy))
		if d.Rule != nil && d.Rule.Message != "" {
			msg += ": " + d.Rule.Message
		}
		return &cloudError{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg + " (request ID " + c.id + ")"}
	}
	return nil
}

// parsedBase is public_url and the host parsed from it.
type parsedBase struct{ raw, host string }

func (p *Proxy) input(c *call) approval.Input {
	return approval.Input{
		Identity: c.identity, Action: c.action, Target: c.target.Name, Now: p.cfg.Now(),
		Request: approval.RequestContext{Reason: c.identity.Reason, Ticket: c.identity.Ticket,
			SourceIP: c.clientIP, UserAgent: c.r.UserAgent()},
	}
}

// decide applies policy. Allow goes on; deny is refused; hold looks for a grant from an earlier
// approval, else holds the call for up to hold.wait and goes on the moment it is approved. The
// decision is on the audit stream before anything is forwarded: if it cannot be written, the
// call fails closed.
func (p *Proxy) decide(c *call) error {
	in := p.input(c)
	d := p.cfg.Policy.Decide(in)
	c.decision = d
	if d.Rule != nil {
		c.policy = d.Rule.Name
	}
	if d.Effect != approval.Deny && len(c.action.Also) > 0 {
		// What else the call needs is decided before it is allowed or held: a hold would
		// otherwise wait for an approval that cannot let it through.
		if err := p.decideAlso(c, in); err != nil {
			return err
		}
	}
	switch d.Effect {
	case approval.Allow:
		return p.recordDecisionFor(c, "allow", "", "")
	case approval.Deny:
		if err := p.recordDecisionFor(c, "deny", "", ""); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s on %s is denied by Airlock policy %q", c.action.IAMAction, orAll(c.action.Resource), orDefault(c.policy))
		if d.Rule != nil && d.Rule.Message != "" {
			msg += ": " + d.Rule.Message
		}
		if c.action.Operation == catalog.UnknownOperation {
			// What the user can do about it, since no rule names this call by what it does.
			msg += "; Airlock cannot name this call (an operation its catalog does not know, or a batch request bundling several calls: send those one at a time), and only a rule naming " + c.action.IAMAction + " matches it"
		}
		return &cloudError{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg + " (request ID " + c.id + ")"}
	}
	return p.holdFor(c, in, d, true)
}

// holdFor handles a hold of in.Action (the call's own action, or a permission it also needs):
// an approval granted earlier for it lets the call through; else the call waits up to
// hold.wait and goes on the moment it is approved. final is false for a permission the call
// also needs: its approval then lets the decision of the call itself go on, which records the
// one allow event (with the approvers), instead of a second one.
func (p *Proxy) holdFor(c *call, in approval.Input, d approval.Decision, final bool) error {
	allowed := func(step, approvalID string) error {
		if !final {
			return nil
		}
		return p.recordDecisionFor(c, "allow", step, approvalID)
	}
	g, ok, err := p.cfg.Approvals.UseGrant(c.r.Context(), in)
	if err != nil {
		return p.unavailable(c, "check grants", err)
	}
	if ok {
		c.approvers = g.Approvers
		return allowed("grant_used", "")
	}
	req, err := p.cfg.Approvals.Hold(c.r.Context(), in, d)
	if err != nil {
		return p.unavailable(c, "hold request", err)
	}
	c.held = req
	if err := p.recordDecisionFor(c, "hold", "held", req.ID); err != nil {
		return err
	}
	waitStart := p.cfg.Now()
	req, err = p.cfg.Approvals.Wait(c.r.Context(), req.ID, p.cfg.Settings.Hold.Wait.D())
	if req != nil {
		c.held = req
	}
	p.cfg.Metrics.observeHold(p.cfg.Now().Sub(waitStart), string(stateOf(req)))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		if c.r.Context().Err() != nil {
			return &cloudError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Retryable: true,
				Message: "the held call was interrupted (Airlock is restarting, or the client went away); retry it: an approval still applies"}
		}
		return p.unavailable(c, "wait for approval", err)
	}
	switch stateOf(req) {
	case approval.StateApproved:
		g, ok, err := p.cfg.Approvals.UseGrant(c.r.Context(), in)
		if err != nil {
			return p.unavailable(c, "use grant", err)
		}
		if ok {
			c.approvers = g.Approvers
			return allowed("approved", req.ID)
		}
		// Approved, but the grant was spent by a concurrent retry: held again.
		return heldError(c, req, "its approval was already used")
	case approval.StateDenied:
		by := "an approver"
		if req.DeniedBy != nil {
			by = req.DeniedBy.Name()
		}
		msg := fmt.Sprintf("%s was denied by %s", in.Action.IAMAction, by)
		if req.Comment != "" {
			msg += ": " + req.Comment
		}
		return &cloudError{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg + " (request " + req.ID + ")"}
	case approval.StateExpired:
		return heldError(c, req, "the approval request expired")
	}
	return heldError(c, req, "")
}

func stateOf(r *approval.Request) approval.State {
	if r == nil {
		return ""
	}
	return r.State
}

func heldError(c *call, req *approval.Request, why string) error {
	// req.Action is what is held: the call's own action, or a permission it also needs.
	what := fmt.Sprintf("%s on %s needs", req.Action.IAMAction, orAll(req.Action.Resource))
	if req.Action.IAMAction != c.action.IAMAction || req.Action.Resource != c.action.Resource {
		what = fmt.Sprintf("%s also needs %s on %s, which needs", c.action.IAMAction, req.Action.IAMAction, orAll(req.Action.Resource))
	}
	msg := fmt.Sprintf("%s approval (Airlock policy %q). Request %s: approve at %s and retry", what, c.policy, req.ID, req.URL)
	if why != "" {
		msg = why + ": " + msg
	}
	return &cloudError{Status: http.StatusForbidden, Code: "AccessDenied", Message: msg}
}

func orAll(resource string) string {
	if resource == "" {
		return "*"
	}
	return resource
}

func orDefault(policy string) string {
	if policy == "" {
		return "default-deny"
	}
	return policy
}

func (p *Proxy) unavailable(c *call, what string, err error) error {
	p.cfg.Logger.Error("fail closed", "request_id", c.id, "stage", what, "err", err)
	return &cloudError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Retryable: true,
		Message: "Airlock cannot " + what + " right now, so the call was not forwarded (request ID " + c.id + ")"}
}

// recordDecisionFor writes the decision event; the call does not go on if it cannot be written.
func (p *Proxy) recordDecisionFor(c *call, decision, step, approvalID string) error {
	p.cfg.Metrics.decided(c.action.Cloud, decision, c.action.Risk.String())
	e := p.event(c, audit.KindDecision)
	e.Decision = decision
	e.Step = step
	if approvalID != "" {
		e.ApprovalID = approvalID
	}
	if err := p.cfg.Audit.Record(c.r.Context(), e); err != nil {
		return p.unavailable(c, "write the audit trail", err)
	}
	return nil
}

func (p *Proxy) event(c *call, kind string) *audit.Event {
	var also []audit.Permission
	for _, perm := range c.action.Also {
		also = append(also, audit.Permission{Action: perm.Action, Resource: perm.Resource})
	}
	return &audit.Event{
		Kind: kind, RequestID: c.id,
		Identity: audit.Identity{Subject: c.identity.Subject, Email: c.identity.Email, Groups: c.identity.Groups},
		Target:   targetName(c), Cloud: c.action.Cloud, Action: c.action.IAMAction, Service: c.action.Service,
		Operation: c.action.Operation, Resource: c.action.Resource, Source: c.action.Source, Also: also, Region: c.action.Region,
		Risk: c.action.Risk.String(), Policy: c.policy, Approvers: c.approvers, Reason: c.identity.Reason,
		ClientIP: c.clientIP, UserAgent: c.r.UserAgent(),
	}
}

func targetName(c *call) string {
	if c.target == nil {
		return ""
	}
	return c.target.Name
}

// mint gets short-lived credentials for the target, narrowed to the action when the target
// asks for session policies (the default).
func (p *Proxy) mint(c *call) error {
	up, err := p.upstreamFor(c)
	if err != nil {
		return err
	}
	c.upstream = up
	m := signer.MintRequest{SessionName: c.identity.Name()}
	if c.target.SessionPolicy == nil || *c.target.SessionPolicy {
		m.Policy = signer.SessionPolicy(c.action.IAMAction, c.action.Resource, c.action.Also...)
	}
	// The broker bounds its own wait when it has to go past its in-process credentials.
	creds, err := p.cfg.AWS.Credentials(c.r.Context(), c.target, m)
	if err != nil {
		return p.mintFailed(c, err)
	}
	c.creds = creds
	return nil
}

// forwardAndAudit re-signs and forwards the call, streams the answer back and records it.
func (p *Proxy) forwardAndAudit(w http.ResponseWriter, c *call) {
	ctx := context.WithValue(c.r.Context(), callKey{}, c)
	fwd := p.forward
	if c.cloud != "" {
		fwd = p.forwardBearer
	}
	fwd.ServeHTTP(w, c.r.WithContext(ctx))
	// A short answer is still in the server's write buffer: send it now, so that the client
	// does not also wait for the forward event's commit below (on Redis, a round trip).
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	dur := p.cfg.Now().Sub(c.start)
	p.cfg.Metrics.forwarded(c.action.Cloud, c.status, dur)
	e := p.event(c, audit.KindForward)
	e.Decision = "allow"
	e.UpstreamStatus = c.status
	e.DurationMS = float64(dur.Microseconds()) / 1000
	// The call already happened; a failure here can only be reported, and the decision event
	// written before forwarding already proves the call was allowed.
	if err := p.cfg.Audit.Record(context.WithoutCancel(c.r.Context()), e); err != nil {
		p.cfg.Logger.Error("audit forward event lost", "request_id", c.id, "err", err)
	}
}

// rewrite points the outgoing request at the allowlisted upstream and signs it with the minted
// credentials. It runs inside httputil.ReverseProxy after hop-by-hop headers are gone.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c, out := toUpstream(pr)
	// The query goes on as the client signed it; SignAWS drops presigned-URL parameters, the
	// client's signature, whatever their case. A chunk-signed body is checked and re-signed
	// chunk by chunk as it streams.
	var err error
	if c.sig.Chunks != nil {
		err = signer.SignAWSChunked(out.Context(), out, c.creds, c.sig.Service, c.sig.Region, c.sig.PayloadHash, c.sig.Chunks, p.cfg.Now())
	} else {
		err = signer.SignAWS(out.Context(), out, c.creds, c.sig.Service, c.sig.Region, c.sig.PayloadHash, p.cfg.Now())
	}
	if err != nil {
		// Leave the request unsigned: the upstream refuses it rather than us forwarding a
		// half-signed call. Logged for the operator.
		p.cfg.Logger.Error("re-sign failed", "request_id", c.id, "err", err)
		out.Header.Del("Authorization")
	}
}

// toUpstream addresses the outgoing request of a call to the call's upstream (the allowlisted
// host and the path it was named by), drops X-Forwarded-For, and returns the call.
func toUpstream(pr *httputil.ProxyRequest) (*call, *http.Request) {
	c := pr.In.Context().Value(callKey{}).(*call)
	out := pr.Out
	out.URL.Scheme = c.upstream.scheme
	out.URL.Host = c.upstream.host
	out.Host = c.upstream.host
	out.URL.Path = c.upstream.path
	out.URL.RawPath = c.upstream.rawPath
	out.Header.Del("X-Forwarded-For")
	return c, out
}

// mintFailed is the answer when a broker cannot mint: logged with the cause, which the client
// does not see.
func (p *Proxy) mintFailed(c *call, err error) error {
	p.cfg.Logger.Error("mint failed", "request_id", c.id, "target", c.target.Name, "err", err)
	return &cloudError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Retryable: true,
		Message: fmt.Sprintf("Airlock could not obtain credentials for target %s (request ID %s)", c.target.Name, c.id)}
}

func (p *Proxy) observeResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*call)
	c.status = resp.StatusCode
	return nil
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	c := r.Context().Value(callKey{}).(*call)
	// A chunk-signed body that failed its check on the way: the upstream got an aborted body,
	// the client gets S3's answer for what was wrong with it.
	var chunkErr *sigv4.ChunkError
	if errors.As(err, &chunkErr) {
		ce := &cloudError{Status: http.StatusBadRequest, Code: chunkErr.Code, Message: chunkErr.Message + " (request ID " + c.id + ")"}
		if chunkErr.Code == sigv4.CodeSignatureDoesNotMatch {
			ce.Status = http.StatusForbidden
		}
		c.status = ce.Status
		p.cfg.Metrics.refused(c.action.Cloud, ce.Code)
		p.cfg.Logger.Info("chunk-signed body refused", "request_id", c.id, "code", ce.Code, "err", err)
		writeCloudError(w, c, ce)
		return
	}
	c.status = http.StatusBadGateway
	p.cfg.Metrics.upstreamError(c.action.Cloud)
	p.cfg.Logger.Warn("upstream unreachable", "request_id", c.id, "upstream", c.upstream.host, "err", err)
	name := map[string]string{"": "AWS", catalog.GCP: "Google API", catalog.Azure: "Azure Resource Manager"}[c.cloud]
	writeCloudError(w, c, &cloudError{Status: http.StatusBadGateway, Code: "ServiceUnavailable", Retryable: true,
		Message: fmt.Sprintf("the %s endpoint %s is unreachable from Airlock (request ID %s)", name, c.upstream.host, c.id)})
}
