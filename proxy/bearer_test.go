package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store/memory"
)

const (
	mintedGCPToken   = "ya29.minted-for-the-target"
	mintedAzureToken = "eyJ.minted-arm-token"
	bearerSub        = "00000000-0000-0000-0000-00000000000a"
	otherSub         = "00000000-0000-0000-0000-00000000000b"
)

type staticTokenMinter struct {
	token string
	calls atomic.Int64
	fail  atomic.Bool
}

func (m *staticTokenMinter) Token(ctx context.Context, t *config.Target) (string, time.Time, error) {
	m.calls.Add(1)
	if m.fail.Load() {
		return "", time.Time{}, errors.New("iam credentials: 403")
	}
	return m.token, time.Now().Add(time.Hour), nil
}

// tokenUpstream is a fake Google API / ARM: it accepts only the minted token, as the cloud
// would accept only a token it issued, and records what reached it.
type tokenUpstream struct {
	*httptest.Server
	want string
	hits atomic.Int64

	mu       sync.Mutex
	last     *http.Request
	lastBody []byte
}

func newTokenUpstream(t *testing.T, want string) *tokenUpstream {
	u := &tokenUpstream{want: want}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.lastBody = body
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+u.want {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":401,"message":"not the minted token","status":"UNAUTHENTICATED"}}`)
			return
		}
		io.WriteString(w, `{"kind":"compute#instanceList","items":[],"value":[]}`)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *tokenUpstream) lastRequest() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

type bearerPipeline struct {
	t          *testing.T
	airlock    *httptest.Server
	gcp, azure *tokenUpstream
	gcpMinter  *staticTokenMinter
	azMinter   *staticTokenMinter
	issuer     *authn.Issuer
	workflow   *approval.Workflow
	audit      *recordingAuditor
}

const bearerConfig = `
listen: 127.0.0.1:8080
targets:
  - name: gcp-dev
    cloud: gcp
    service_account: deployer@my-project.iam.gserviceaccount.com
    api_endpoint: {{GCP}}
  - name: az-dev
    cloud: azure
    tenant_id: 11111111-2222-3333-4444-555555555555
    subscription_id: ` + bearerSub + `
    client_id: 66666666-7777-8888-9999-000000000000
    arm_endpoint: {{ARM}}
hold: {wait: 50ms}
policies:
  - name: vm-deletes-need-sre
    actions: ["compute.instances.delete", "Microsoft.Compute/virtualMachines/delete"]
    decision: hold
    approvers: {groups: [sre-leads]}
    grant: {ttl: 1h, uses: 1}
  - name: no-bucket-deletes
    actions: ["storage.buckets.delete", "Microsoft.Resources/subscriptions/resourceGroups/delete"]
    decision: deny
    message: ask the data team
  - name: secret-reads-denied
    actions: ["storage.objects.get"]
    when: 'action.resource.startsWith("projects/_/buckets/secret/")'
    decision: deny
  - name: reads-flow
    risk: [read, write]
    decision: allow
  - name: default-deny
    decision: deny
`

func newBearerPipeline(t *testing.T) *bearerPipeline {
	t.Helper()
	gcp, az := newTokenUpstream(t, mintedGCPToken), newTokenUpstream(t, mintedAzureToken)
	cfg, err := config.Parse([]byte(strings.NewReplacer("{{GCP}}", gcp.URL, "{{ARM}}", az.URL).Replace(bearerConfig)))
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Key: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := authn.NewSigV4Verifier(authn.SigV4Config{Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := approval.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	aud := &recordingAuditor{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	wf, err := approval.NewWorkflow(approval.WorkflowConfig{Store: memory.New(nil), Auditor: aud, PublicURL: cfg.PublicURL, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	bp := &bearerPipeline{t: t, gcp: gcp, azure: az, issuer: issuer, workflow: wf, audit: aud,
		gcpMinter: &staticTokenMinter{token: mintedGCPToken}, azMinter: &staticTokenMinter{token: mintedAzureToken}}
	px, err := New(Config{Settings: cfg, Logger: logger, SigV4: verifier, Bearer: issuer, Policy: engine,
		Approvals: wf, AWS: &staticMinter{}, GCP: bp.gcpMinter, Azure: bp.azMinter, Audit: aud})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = Router(px, http.NotFoundHandler())
	srv.Start()
	bp.airlock = srv
	return bp
}

func (p *bearerPipeline) token(cloud, target string) string {
	p.t.Helper()
	tok, _, err := p.issuer.IssueBearer(alice, cloud, target, "INC-9 cleanup")
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

func (p *bearerPipeline) do(method, path, token string) (*http.Response, string) {
	p.t.Helper()
	return p.doBody(method, path, token, "")
}

// doBody is do with a JSON request body.
func (p *bearerPipeline) doBody(method, path, token, body string) (*http.Response, string) {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.airlock.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// googleErr and armErr are the error bodies as the clouds define them.
type googleErr struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type     string            `json:"@type"`
			Reason   string            `json:"reason"`
			Metadata map[string]string `json:"metadata"`
		} `json:"details"`
	} `json:"error"`
}

type armErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	return v
}

func TestGCPCallIsForwardedWithTheMintedToken(t *testing.T) {
	p := newBearerPipeline(t)
	resp, body := p.do("GET", "/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/us-central1-a/instances?maxResults=5", p.token("gcp", "gcp-dev"))
	if resp.StatusCode != 200 {
		t.Fatalf("instances.list: %d %s", resp.StatusCode, body)
	}
	got := p.gcp.lastRequest()
	if got.URL.Path != "/compute/v1/projects/p1/zones/us-central1-a/instances" || got.URL.RawQuery != "maxResults=5" {
		t.Errorf("upstream got %s?%s", got.URL.Path, got.URL.RawQuery)
	}
	d := p.audit.find("decision", "compute.instances.list", "allow")
	if d == nil || d.Cloud != "gcp" || d.Target != "gcp-dev" || d.Identity.Email != "alice@example.com" || d.Reason != "INC-9 cleanup" || d.Policy != "reads-flow" {
		t.Errorf("decision event: %+v", d)
	}
	if f := p.audit.await("forward", "compute.instances.list", ""); f == nil || f.UpstreamStatus != 200 || f.Cloud != "gcp" {
		t.Errorf("forward event: %+v", f)
	}
}

// TestGCPGeneratedClientThroughAirlock uses google.golang.org/api's compute client the way a
// user would: the endpoint is Airlock's /gcp/{host}/ plus the API's base path.
func TestGCPGeneratedClientThroughAirlock(t *testing.T) {
	p := newBearerPipeline(t)
	ctx := context.Background()
	cs, err := compute.NewService(ctx, option.WithEndpoint(p.airlock.URL+"/gcp/compute.googleapis.com/compute/v1/"),
		option.WithTokenSource(staticTokenSource(p.token("gcp", "gcp-dev"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Instances.List("p1", "us-central1-a").Context(ctx).Do(); err != nil {
		t.Fatalf("instances.list: %v", err)
	}
	_, err = cs.Instances.Delete("p1", "us-central1-a", "vm-1").Context(ctx).Do()
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != 403 || !strings.Contains(ge.Message, p.airlock.URL+"/requests/") || !strings.Contains(ge.Message, "vm-deletes-need-sre") {
		t.Fatalf("instances.delete must be held with the approval URL in the message: %v", err)
	}
	if len(ge.Details) == 0 {
		t.Errorf("no ErrorInfo details: %+v", ge)
	}
	if p.gcp.hits.Load() != 1 {
		t.Errorf("upstream hits = %d, want 1 (the list only)", p.gcp.hits.Load())
	}
}

func TestGCPHeldCallThenApprovedRetry(t *testing.T) {
	p := newBearerPipeline(t)
	tok := p.token("gcp", "gcp-dev")
	path := "/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/z1/instances/vm-1"
	resp, body := p.do("DELETE", path, tok)
	ge := decode[googleErr](t, body)
	if resp.StatusCode != 403 || ge.Error.Status != "PERMISSION_DENIED" || ge.Error.Code != 403 || !strings.Contains(ge.Error.Message, "/requests/") {
		t.Fatalf("held delete: %d %s", resp.StatusCode, body)
	}
	if len(ge.Error.Details) != 1 || ge.Error.Details[0].Type != "type.googleapis.com/google.rpc.ErrorInfo" || ge.Error.Details[0].Metadata["approval_url"] == "" {
		t.Errorf("details: %+v", ge.Error.Details)
	}
	reqs, err := p.workflow.List(context.Background(), "pending", bob)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("pending: %v %v", reqs, err)
	}
	if _, err := p.workflow.Approve(context.Background(), reqs[0].ID, bob, "ok"); err != nil {
		t.Fatal(err)
	}
	if resp, body := p.do("DELETE", path, tok); resp.StatusCode != 200 {
		t.Fatalf("retry after approval: %d %s", resp.StatusCode, body)
	}
	if d := p.audit.find("decision", "compute.instances.delete", "allow"); d == nil || len(d.Approvers) == 0 || d.Resource != "projects/p1/zones/z1/instances/vm-1" {
		t.Errorf("allow-after-approval event: %+v", d)
	}
	if f := p.audit.await("forward", "compute.instances.delete", ""); f == nil || f.UpstreamStatus != 200 {
		t.Errorf("forward event: %+v", f)
	}
}

func TestGCPDeniedNamesTheRule(t *testing.T) {
	p := newBearerPipeline(t)
	resp, body := p.do("DELETE", "/gcp/storage.googleapis.com/storage/v1/b/important", p.token("gcp", "gcp-dev"))
	ge := decode[googleErr](t, body)
	if resp.StatusCode != 403 || ge.Error.Status != "PERMISSION_DENIED" || !strings.Contains(ge.Error.Message, "no-bucket-deletes") || !strings.Contains(ge.Error.Message, "ask the data team") {
		t.Errorf("bucket delete: %d %s", resp.StatusCode, body)
	}
	if p.gcp.hits.Load() != 0 || p.gcpMinter.calls.Load() != 0 {
		t.Error("a denied call reached the broker or the upstream")
	}
}

func TestGCPPathsReachTheUpstreamByteForByte(t *testing.T) {
	p := newBearerPipeline(t)
	tok := p.token("gcp", "gcp-dev")
	// An object name with an escaped slash stays one segment.
	if resp, body := p.do("GET", "/gcp/storage.googleapis.com/storage/v1/b/bkt/o/dir%2Ffile.txt?alt=json", tok); resp.StatusCode != 200 {
		t.Fatalf("objects.get: %d %s", resp.StatusCode, body)
	}
	if got := p.gcp.lastRequest(); got.URL.EscapedPath() != "/storage/v1/b/bkt/o/dir%2Ffile.txt" {
		t.Errorf("upstream path %q", got.URL.EscapedPath())
	}
	if d := p.audit.find("decision", "storage.objects.get", "allow"); d == nil || !strings.Contains(d.Resource, "dir/file.txt") {
		t.Errorf("objects.get event: %+v", d)
	}
	// cloud.google.com/go REST clients join "/v1/..." to an endpoint ending in "/".
	if resp, body := p.do("GET", "/gcp/compute.googleapis.com//compute/v1/projects/p1/global/networks", tok); resp.StatusCode != 200 {
		t.Fatalf("double slash: %d %s", resp.StatusCode, body)
	}
	if got := p.gcp.lastRequest(); got.URL.Path != "/compute/v1/projects/p1/global/networks" {
		t.Errorf("upstream path %q", got.URL.Path)
	}
	// Storage media uploads are sent root-relative by the generated client.
	req, _ := http.NewRequest("POST", p.airlock.URL+"/upload/storage/v1/b/bkt/o?uploadType=media&name=x", strings.NewReader("hi"))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := p.gcp.lastRequest(); resp.StatusCode != 200 || got.URL.Path != "/upload/storage/v1/b/bkt/o" {
		t.Errorf("upload: %d, upstream path %q", resp.StatusCode, got.URL.Path)
	}
	if d := p.audit.find("decision", "storage.objects.insert", "allow"); d == nil {
		t.Error("upload not named storage.objects.insert")
	}
}

func TestGCPUpstreamIsNeverTheClientsChoice(t *testing.T) {
	p := newBearerPipeline(t)
	tok := p.token("gcp", "gcp-dev")
	for _, path := range []string{
		"/gcp/evil.example.com/compute/v1/projects",
		"/gcp/compute.googleapis.com:8443/compute/v1/projects",
		"/gcp/127.0.0.1/compute/v1/projects",
		"/gcp/compute.googleapis.com@evil.example.com/x",
	} {
		resp, body := p.do("GET", path, tok)
		if resp.StatusCode != 404 || decode[googleErr](t, body).Error.Status != "NOT_FOUND" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := p.do("GET", "/gcp/compute.googleapis.com/compute/v1/projects/p1/../../../storage/v1/b", tok)
	if resp.StatusCode != 400 || decode[googleErr](t, body).Error.Status != "INVALID_ARGUMENT" {
		t.Errorf("dot segments: %d %s", resp.StatusCode, body)
	}
	resp, body = p.do("GET", "/api/v1/requests", tok)
	if resp.StatusCode != 404 || !strings.Contains(body, "/gcp/") {
		t.Errorf("bearer token on a non-cloud path: %d %s", resp.StatusCode, body)
	}
	if p.gcp.hits.Load() != 0 {
		t.Errorf("upstream hits = %d", p.gcp.hits.Load())
	}
}

func TestForgedAndExpiredBearerTokens(t *testing.T) {
	p := newBearerPipeline(t)
	past, err := authn.NewIssuer(authn.IssuerConfig{Key: bytes.Repeat([]byte{7}, 32), Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, _, _ := past.IssueBearer(alice, "gcp", "gcp-dev", "")
	other, _ := authn.NewIssuer(authn.IssuerConfig{Key: bytes.Repeat([]byte{8}, 32)})
	foreign, _, _ := other.IssueBearer(alice, "azure", "az-dev", "")
	good := p.token("gcp", "gcp-dev")
	tampered := good[:len(good)-4] + "AAAA"
	gcpPath := "/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/z/instances"
	azPath := "/azure/subscriptions/" + bearerSub + "/resourcegroups?api-version=2021-04-01"

	for _, tt := range []struct {
		name, path, token, want string
	}{
		{"gcp tampered", gcpPath, tampered, "invalid"},
		{"gcp expired", gcpPath, expired, "expired"},
		{"gcp token from another airlock", gcpPath, strings.Replace(foreign, "", "", 1), "invalid"},
		{"azure token on gcp", gcpPath, p.token("azure", "az-dev"), "issued for azure"},
		{"gcp token naming an azure target", gcpPath, p.token("gcp", "az-dev"), "not a gcp target"},
	} {
		resp, body := p.do("GET", tt.path, tt.token)
		ge := decode[googleErr](t, body)
		if resp.StatusCode != 401 || ge.Error.Status != "UNAUTHENTICATED" || !strings.Contains(ge.Error.Message, tt.want) || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
		}
		if strings.Contains(body, tt.token) {
			t.Errorf("%s: the error echoes the token", tt.name)
		}
	}
	for _, tt := range []struct{ name, token, code string }{
		{"azure forged", foreign, "InvalidAuthenticationToken"},
		{"azure expired", func() string { s, _, _ := past.IssueBearer(alice, "azure", "az-dev", ""); return s }(), "ExpiredAuthenticationToken"},
	} {
		resp, body := p.do("GET", azPath, tt.token)
		if ae := decode[armErr](t, body); resp.StatusCode != 401 || ae.Error.Code != tt.code || resp.Header.Get("x-ms-error-code") != tt.code {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
		}
	}
	if p.gcp.hits.Load()+p.azure.hits.Load() != 0 || p.gcpMinter.calls.Load()+p.azMinter.calls.Load() != 0 {
		t.Error("an unauthenticated call reached a broker or an upstream")
	}
	p.audit.mu.Lock()
	defer p.audit.mu.Unlock()
	if len(p.audit.events) != 0 {
		t.Errorf("unauthenticated calls made decisions: %+v", p.audit.events)
	}
}

func TestAzureCallIsForwardedWithTheMintedToken(t *testing.T) {
	p := newBearerPipeline(t)
	tok := p.token("azure", "az-dev")
	resp, body := p.do("GET", "/azure/subscriptions/"+bearerSub+"/resourcegroups?api-version=2021-04-01", tok)
	if resp.StatusCode != 200 {
		t.Fatalf("resource groups list: %d %s", resp.StatusCode, body)
	}
	if got := p.azure.lastRequest(); got.URL.Path != "/subscriptions/"+bearerSub+"/resourcegroups" || got.URL.Query().Get("api-version") != "2021-04-01" {
		t.Errorf("upstream got %s", got.URL)
	}
	d := p.audit.find("decision", "Microsoft.Resources/subscriptions/resourceGroups/read", "allow")
	if d == nil || d.Cloud != "azure" || d.Target != "az-dev" {
		t.Errorf("decision event: %+v (events %+v)", d, p.audit.events)
	}
	if f := p.audit.await("forward", "Microsoft.Resources/subscriptions/resourceGroups/read", ""); f == nil || f.UpstreamStatus != 200 {
		t.Errorf("forward event: %+v", f)
	}

	// A VM delete is held; the ARM error names the approval page.
	resp, body = p.do("DELETE", "/azure/subscriptions/"+bearerSub+"/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01", tok)
	if ae := decode[armErr](t, body); resp.StatusCode != 403 || ae.Error.Code != "AuthorizationFailed" || !strings.Contains(ae.Error.Message, "/requests/") {
		t.Errorf("vm delete: %d %s", resp.StatusCode, body)
	}
	if d := p.audit.find("decision", "Microsoft.Compute/virtualMachines/delete", "hold"); d == nil {
		t.Error("no hold event for the VM delete")
	}
	// Deleting a resource group is denied by a named rule.
	resp, body = p.do("DELETE", "/azure/subscriptions/"+bearerSub+"/resourceGroups/rg?api-version=2021-04-01", tok)
	if ae := decode[armErr](t, body); resp.StatusCode != 403 || !strings.Contains(ae.Error.Message, "no-bucket-deletes") {
		t.Errorf("rg delete: %d %s", resp.StatusCode, body)
	}
	if p.azure.hits.Load() != 1 {
		t.Errorf("upstream hits = %d, want 1", p.azure.hits.Load())
	}
}

func TestAzureOtherSubscriptionIsRefused(t *testing.T) {
	p := newBearerPipeline(t)
	tok := p.token("azure", "az-dev")
	for _, path := range []string{
		"/azure/subscriptions/" + otherSub + "/resourcegroups?api-version=2021-04-01",
		"/azure/SUBSCRIPTIONS/" + otherSub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01",
		"/azure/subscriptions/%30" + otherSub[1:] + "/resourcegroups",
	} {
		resp, body := p.do("GET", path, tok)
		ae := decode[armErr](t, body)
		if resp.StatusCode != 403 || ae.Error.Code != "AuthorizationFailed" || !strings.Contains(ae.Error.Message, "bound to subscription "+bearerSub) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	// Above any subscription only reads pass (then policy decides).
	if resp, body := p.do("PUT", "/azure/providers/Microsoft.Management/managementGroups/mg1?api-version=2021-04-01", tok); resp.StatusCode != 403 {
		t.Errorf("tenant-level write: %d %s", resp.StatusCode, body)
	}
	if resp, body := p.do("GET", "/azure/subscriptions?api-version=2022-12-01", tok); resp.StatusCode != 200 {
		t.Errorf("list subscriptions: %d %s", resp.StatusCode, body)
	}
	if p.azure.hits.Load() != 1 || p.azMinter.calls.Load() != 1 {
		t.Errorf("upstream hits = %d, mints = %d; want 1, 1 (the subscription list only)", p.azure.hits.Load(), p.azMinter.calls.Load())
	}
	if d := p.audit.find("decision", "Microsoft.Resources/subscriptions/resourceGroups/read", "deny"); d == nil || d.Step != "wrong_subscription" {
		t.Errorf("the refusal is not on the audit stream: %+v", d)
	}
}

func TestBearerUpstreamUnreachableAndMintFailure(t *testing.T) {
	p := newBearerPipeline(t)
	p.gcpMinter.fail.Store(true)
	gcpPath := "/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/z/instances"
	resp, body := p.do("GET", gcpPath, p.token("gcp", "gcp-dev"))
	if ge := decode[googleErr](t, body); resp.StatusCode != 503 || ge.Error.Status != "UNAVAILABLE" || strings.Contains(body, "iam credentials: 403") {
		t.Errorf("mint failure: %d %s", resp.StatusCode, body)
	}
	p.gcpMinter.fail.Store(false)
	p.gcp.Close()
	resp, body = p.do("GET", gcpPath, p.token("gcp", "gcp-dev"))
	if ge := decode[googleErr](t, body); resp.StatusCode != 502 || ge.Error.Status != "UNAVAILABLE" || !strings.Contains(ge.Error.Message, "unreachable") {
		t.Errorf("gcp upstream down: %d %s", resp.StatusCode, body)
	}
	p.azure.Close()
	resp, body = p.do("GET", "/azure/subscriptions/"+bearerSub+"/resourcegroups", p.token("azure", "az-dev"))
	if ae := decode[armErr](t, body); resp.StatusCode != 502 || !strings.Contains(ae.Error.Message, "unreachable") {
		t.Errorf("arm down: %d %s", resp.StatusCode, body)
	}
	if f := p.audit.await("forward", "compute.instances.list", ""); f == nil || f.UpstreamStatus != 502 {
		t.Errorf("forward event for an unreachable upstream: %+v", f)
	}
}

func TestBearerFailsClosedWhenAuditCannotBeWritten(t *testing.T) {
	p := newBearerPipeline(t)
	p.audit.fail.Store(true)
	resp, body := p.do("GET", "/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/z/instances", p.token("gcp", "gcp-dev"))
	if resp.StatusCode != 503 || !strings.Contains(body, "audit") {
		t.Errorf("audit down: %d %s", resp.StatusCode, body)
	}
	if p.gcp.hits.Load() != 0 {
		t.Error("call forwarded without an audit record")
	}
}

func TestCloudErrorBodies(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cloud string
		err   *cloudError
		want  string
	}{
		{"gcp denied", "gcp", &cloudError{Status: 403, Code: "AccessDenied", Message: "no"},
			`{"error":{"code":403,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"airlock","metadata":{"request_id":"r1"},"reason":"ACCESS_DENIED"}],"message":"no","status":"PERMISSION_DENIED"}}`},
		{"gcp unauthenticated", "gcp", &cloudError{Status: 401, Code: "InvalidAuthenticationToken", Message: "bad"},
			`{"error":{"code":401,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"airlock","metadata":{"request_id":"r1"},"reason":"INVALID_AUTHENTICATION_TOKEN"}],"message":"bad","status":"UNAUTHENTICATED"}}`},
		{"azure denied", "azure", &cloudError{Status: 403, Code: "AccessDenied", Message: "no"},
			`{"error":{"code":"AuthorizationFailed","message":"no"}}`},
		{"azure unavailable", "azure", &cloudError{Status: 503, Code: "ServiceUnavailable", Message: "later", Retryable: true},
			`{"error":{"code":"ServiceUnavailable","message":"later"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeCloudError(w, &call{id: "r1", cloud: tt.cloud}, tt.err)
			if got := w.Body.String(); got != tt.want || w.Code != tt.err.Status || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("got %d %s\nwant %s", w.Code, got, tt.want)
			}
			if tt.err.Retryable && w.Header().Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
}

func TestRouterSendsBearerTrafficToThePipeline(t *testing.T) {
	cloud := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(298) })
	h := Router(cloud, api)
	for _, tt := range []struct {
		auth string
		want int
	}{
		{"Bearer airlock-v1.abc", 299},
		{"bearer airlock-v1.abc", 299},
		{"Bearer eyJhbGciOi.oidc.id-token", 298},
		{"", 298},
	} {
		r := httptest.NewRequest("GET", "/api/v1/requests", nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%q: %d, want %d", tt.auth, w.Code, tt.want)
		}
	}
}

type staticTokenSource string

func (s staticTokenSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: string(s), TokenType: "Bearer"}, nil
}

// TestMethodOverrideIsRefused: Google runs the overriding method, so a GET named as a list
// could run as a delete. Airlock refuses the header rather than name the wrong call.
func TestMethodOverrideIsRefused(t *testing.T) {
	p := newBearerPipeline(t)
	req, _ := http.NewRequest("POST", p.airlock.URL+"/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/us-central1-a/instances", nil)
	req.Header.Set("Authorization", "Bearer "+p.token("gcp", "gcp-dev"))
	req.Header.Set("X-HTTP-Method-Override", "DELETE")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	g := decode[googleErr](t, string(body))
	if resp.StatusCode != 400 || !strings.Contains(g.Error.Message, "X-HTTP-Method-Override") {
		t.Errorf("override: %d %s", resp.StatusCode, body)
	}
	if p.gcp.hits.Load() != 0 || p.gcpMinter.calls.Load() != 0 {
		t.Error("a method-override call reached the broker or the upstream")
	}
}

// TestUnnamedBearerCallsRecordTheirAddress: a call the catalog cannot name is denied, and its
// decision event records the host and path (never the query) so that the audit trail says
// which call it was.
func TestUnnamedBearerCallsRecordTheirAddress(t *testing.T) {
	p := newBearerPipeline(t)
	for _, tc := range []struct{ cloud, target, path, action, resource string }{
		{"gcp", "gcp-dev", "/gcp/storage.googleapis.com/batch/storage/v1?X-Goog-Signature=secret", "storage.Unknown", "storage.googleapis.com/batch/storage/v1"},
		{"azure", "az-dev", "/azure/subscriptions/" + bearerSub + "//a%2Fb?api-version=2024-01-01&sig=secret", "Microsoft.Resources/Unknown", "management.azure.com/subscriptions/" + bearerSub + "//a%2Fb"},
	} {
		resp, body := p.do("POST", tc.path, p.token(tc.cloud, tc.target))
		if resp.StatusCode != 403 || !strings.Contains(body, "cannot name this call") {
			t.Errorf("%s: unnamed call = %d %s", tc.cloud, resp.StatusCode, body)
		}
		if ev := p.audit.find("decision", tc.action, "deny"); ev == nil || ev.Resource != tc.resource {
			t.Errorf("%s: decision event = %+v, want a deny on %s", tc.cloud, ev, tc.resource)
		}
	}
	if p.gcp.hits.Load() != 0 {
		t.Error("an unnamed call reached the upstream")
	}
}

// TestGCPCopyIsDecidedOnItsSource: copyTo out of a bucket whose reads are denied is refused,
// naming the rule; a copy out of another bucket is forwarded, named by its destination.
func TestGCPCopyIsDecidedOnItsSource(t *testing.T) {
	p := newBearerPipeline(t)
	tok := p.token("gcp", "gcp-dev")
	resp, body := p.do("POST", "/gcp/storage.googleapis.com/storage/v1/b/secret/o/k/copyTo/b/open/o/k", tok)
	if resp.StatusCode != 403 || !strings.Contains(body, "secret-reads-denied") || !strings.Contains(body, "projects/_/buckets/secret/objects/k") {
		t.Errorf("copy out of secret: %d %s", resp.StatusCode, body)
	}
	if p.gcp.hits.Load() != 0 {
		t.Error("the refused copy was forwarded")
	}
	p.do("POST", "/gcp/storage.googleapis.com/storage/v1/b/public/o/k/copyTo/b/open/o/k", tok)
	f := p.audit.await("forward", "storage.objects.copy", "")
	if f == nil || f.Resource != "projects/_/buckets/open/objects/k" || f.Source != "projects/_/buckets/public/objects/k" {
		t.Errorf("forward event of the copy: %+v", f)
	}
}

// TestIdentityInTheBodyIsDecidedToo: a VM that runs as a service account, or is given a
// managed identity, needs the permission to hand that identity over (privilege, not allowed
// here); the same VM without one is forwarded with its body intact.
func TestIdentityInTheBodyIsDecidedToo(t *testing.T) {
	p := newBearerPipeline(t)
	gcpPath := "/gcp/compute.googleapis.com/compute/v1/projects/p1/zones/z/instances"
	resp, body := p.doBody("POST", gcpPath, p.token("gcp", "gcp-dev"),
		`{"name":"vm-1","service_accounts":[{"email":"admin@p1.iam.gserviceaccount.com"}]}`)
	if resp.StatusCode != 403 || !strings.Contains(body, "also needs iam.serviceAccounts.actAs on projects/-/serviceAccounts/admin@p1.iam.gserviceaccount.com") {
		t.Errorf("VM as a service account: %d %s", resp.StatusCode, body)
	}
	resp, body = p.doBody("POST", gcpPath, p.token("gcp", "gcp-dev"), `{"name":"vm-2"`)
	if resp.StatusCode != 400 || !strings.Contains(body, "cannot tell which identities") {
		t.Errorf("VM with a broken body: %d %s", resp.StatusCode, body)
	}
	p.audit.mu.Lock()
	audited := false
	for _, ev := range p.audit.events {
		audited = audited || (ev.Kind == "decision" && ev.Decision == "deny" && ev.Step == "body_unreadable")
	}
	p.audit.mu.Unlock()
	if !audited {
		t.Error("the refusal of an unreadable body is not on the audit stream")
	}
	if p.gcp.hits.Load() != 0 {
		t.Fatal("a refused insert was forwarded")
	}
	plain := `{"name":"vm-3","machineType":"zones/z/machineTypes/e2-small"}`
	if resp, body := p.doBody("POST", gcpPath, p.token("gcp", "gcp-dev"), plain); resp.StatusCode != 200 {
		t.Fatalf("VM without a service account: %d %s", resp.StatusCode, body)
	}
	p.gcp.mu.Lock()
	got := string(p.gcp.lastBody)
	p.gcp.mu.Unlock()
	if got != plain {
		t.Errorf("the upstream got body %q, want %q", got, plain)
	}

	vm := "/azure/subscriptions/" + bearerSub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01"
	uai := "/subscriptions/" + bearerSub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deployer"
	resp, body = p.doBody("PUT", vm, p.token("azure", "az-dev"), `{"location":"westeurope","Identity":{"type":"UserAssigned","userAssignedIdentities":{"`+uai+`":{}}}}`)
	if resp.StatusCode != 403 || !strings.Contains(body, "also needs Microsoft.ManagedIdentity/userAssignedIdentities/assign/action on "+uai) {
		t.Errorf("VM with a managed identity: %d %s", resp.StatusCode, body)
	}
	if p.azure.hits.Load() != 0 {
		t.Fatal("the refused VM write was forwarded")
	}
}
