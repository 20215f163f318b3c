package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources/v3"
	"golang.org/x/oauth2"
	"google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/api/storage/v1"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/internal/testenv"
)

// End to end for GCP and Azure in endpoint mode: Airlock in process (newServer, as `airlock
// serve` builds it) between Google's and Microsoft's Go SDKs and fakes of the clouds that
// check what the clouds check: the IAM Credentials API checks the impersonation request and
// the proxy's base identity, Azure AD checks the client secret, and the APIs accept only tokens
// those two minted, never the Airlock token the client holds.

const (
	e2eGCPBaseToken  = "ya29.airlock-proxy-base-identity"
	e2eGCPAccount    = "deployer@my-project.iam.gserviceaccount.com"
	e2eAzureTenant   = "11111111-2222-3333-4444-555555555555"
	e2eAzureClientID = "66666666-7777-8888-9999-000000000000"
	e2eAzureSecret   = "azure-client-secret-for-e2e"
	e2eAzureSub      = "00000000-0000-0000-0000-0000000000aa"
	e2eOtherSub      = "00000000-0000-0000-0000-0000000000bb"
)

// mintedTokens are the access tokens the fake token services issued; the fake APIs accept
// only these.
type mintedTokens struct {
	mu     sync.Mutex
	tokens map[string]bool
	n      atomic.Int64
}

func (m *mintedTokens) issue(prefix string) string {
	tok := fmt.Sprintf("%s-%d", prefix, m.n.Add(1))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[string]bool{}
	}
	m.tokens[tok] = true
	return tok
}

func (m *mintedTokens) valid(authorization string) bool {
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	m.mu.Lock()
	defer m.mu.Unlock()
	return ok && m.tokens[tok]
}

var iamNamePath = regexp.MustCompile(`^/v1/projects/-/serviceAccounts/([^/:]+@[^/:]+\.iam\.gserviceaccount\.com):generateAccessToken$`)

// fakeIAMCredentials is generateAccessToken as Google checks it.
func fakeIAMCredentials(t *testing.T, minted *mintedTokens) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+e2eGCPBaseToken {
			googleAPIError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
			return
		}
		m := iamNamePath.FindStringSubmatch(r.URL.Path)
		if r.Method != http.MethodPost || m == nil {
			googleAPIError(w, 404, "NOT_FOUND", "Requested entity was not found: "+r.URL.Path)
			return
		}
		if m[1] != e2eGCPAccount {
			googleAPIError(w, 403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
			return
		}
		var body struct {
			Scope    []string `json:"scope"`
			Lifetime string   `json:"lifetime"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Scope) == 0 {
			googleAPIError(w, 400, "INVALID_ARGUMENT", "Scope required.")
			return
		}
		secs, err := strconv.Atoi(strings.TrimSuffix(body.Lifetime, "s"))
		if !strings.HasSuffix(body.Lifetime, "s") || err != nil || secs < 1 || secs > 3600 {
			googleAPIError(w, 400, "INVALID_ARGUMENT", "The lifetime requested is outside the allowed range.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"accessToken": minted.issue("ya29.impersonated"),
			"expireTime":  time.Now().Add(time.Duration(secs) * time.Second).UTC().Format(time.RFC3339),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func googleAPIError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

// fakeGoogleAPIs answers the Compute and Storage JSON APIs for project p1, bucket bkt.
func fakeGoogleAPIs(t *testing.T, minted *mintedTokens) (*httptest.Server, *atomic.Int64) {
	hits := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !minted.valid(r.Header.Get("Authorization")) {
			googleAPIError(w, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch p := r.URL.Path; {
		case r.Method == "GET" && p == "/compute/v1/projects/p1/zones/us-central1-a/instances":
			io.WriteString(w, `{"kind":"compute#instanceList","items":[{"name":"vm-1","status":"RUNNING","zone":"https://www.googleapis.com/compute/v1/projects/p1/zones/us-central1-a"}]}`)
		case r.Method == "DELETE" && p == "/compute/v1/projects/p1/zones/us-central1-a/instances/vm-1":
			io.WriteString(w, `{"kind":"compute#operation","name":"operation-1","operationType":"delete","status":"DONE"}`)
		case r.Method == "GET" && p == "/storage/v1/b/bkt/o":
			io.WriteString(w, `{"kind":"storage#objects","items":[{"kind":"storage#object","bucket":"bkt","name":"reports/q1.csv","size":"42"}]}`)
		default:
			googleAPIError(w, 404, "NOT_FOUND", "The resource '"+p+"' was not found")
		}
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

var aadPathRE = regexp.MustCompile(`^/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)$`)

// fakeAzureAD is the tenant's Azure AD authority: OIDC metadata and a token endpoint that
// checks the client-credentials grant.
func fakeAzureAD(t *testing.T, minted *mintedTokens) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := aadPathRE.FindStringSubmatch(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		if m == nil || m[1] != e2eAzureTenant {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant not found."}`)
			return
		}
		base := srv.URL + "/" + e2eAzureTenant
		if strings.HasSuffix(m[2], "openid-configuration") {
			_ = json.NewEncoder(w).Encode(map[string]string{"token_endpoint": base + "/oauth2/v2.0/token",
				"authorization_endpoint": base + "/oauth2/v2.0/authorize", "issuer": base + "/v2.0"})
			return
		}
		if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != e2eAzureClientID ||
			r.PostForm.Get("client_secret") != e2eAzureSecret || !strings.Contains(" "+r.PostForm.Get("scope")+" ", " https://management.azure.com/.default ") {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
			"access_token": minted.issue("eyJ.arm")})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeARM answers Azure Resource Manager for the target's subscription.
func fakeARM(t *testing.T, minted *mintedTokens) (*httptest.Server, *atomic.Int64) {
	hits := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		armErr := func(status int, code, msg string) {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
		}
		if !minted.valid(r.Header.Get("Authorization")) {
			armErr(401, "InvalidAuthenticationToken", "The access token is invalid.")
			return
		}
		if r.URL.Query().Get("api-version") == "" {
			armErr(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
			return
		}
		sub := "/subscriptions/" + e2eAzureSub
		switch p := r.URL.Path; {
		case r.Method == "GET" && strings.EqualFold(p, sub+"/resourcegroups"):
			io.WriteString(w, `{"value":[{"id":"`+sub+`/resourceGroups/rg1","name":"rg1","type":"Microsoft.Resources/resourceGroups","location":"westeurope","properties":{"provisioningState":"Succeeded"}}]}`)
		case r.Method == "DELETE" && p == sub+"/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1":
			w.WriteHeader(http.StatusOK)
		default:
			armErr(404, "ResourceNotFound", "The Resource '"+p+"' was not found.")
		}
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

const e2eCloudConfig = `
listen: {{LISTEN}}
dev:
  bootstrap_token_env: AIRLOCK_E2E_TOKEN
  bootstrap_identity: {subject: alice, email: alice@example.com, groups: [engineers]}
targets:
  - name: prod-gcp
    cloud: gcp
    service_account: ` + e2eGCPAccount + `
    scopes: [https://www.googleapis.com/auth/cloud-platform]
    iam_endpoint: {{IAM}}
    api_endpoint: {{GAPI}}
  - name: prod-azure
    cloud: azure
    tenant_id: ` + e2eAzureTenant + `
    subscription_id: ` + e2eAzureSub + `
    client_id: ` + e2eAzureClientID + `
    client_secret_env: AIRLOCK_E2E_AZURE_SECRET
    authority_host: {{AAD}}/
    arm_endpoint: {{ARM}}
policies:
  - name: vm-deletes-need-approval
    actions: ["compute.instances.delete", "Microsoft.Compute/virtualMachines/delete"]
    decision: hold
    approvers: {groups: [engineers], allow_self: true}
    grant: {ttl: 1h, uses: 1}
  - name: resource-groups-are-forever
    actions: ["Microsoft.Resources/subscriptions/resourceGroups/delete"]
    decision: deny
    message: ask the platform team
  - name: reads-flow
    risk: [read]
    decision: allow
  - name: default-deny
    decision: deny
hold: {wait: 200ms}
audit:
  file: {{AUDIT}}
`

// cloudEnv is Airlock in process with the GCP and Azure fakes behind it.
type cloudEnv struct {
	*e2eEnv
	gapiHits, armHits *atomic.Int64
}

func startCloudAirlock(t *testing.T, cfgYAML string, extra map[string]string) *cloudEnv {
	t.Helper()
	minted := &mintedTokens{}
	iam := fakeIAMCredentials(t, minted)
	gapi, gapiHits := fakeGoogleAPIs(t, minted)
	aad := fakeAzureAD(t, minted)
	armSrv, armHits := fakeARM(t, minted)

	t.Setenv("AIRLOCK_E2E_AZURE_SECRET", e2eAzureSecret)
	repl := []string{"{{IAM}}", iam.URL, "{{GAPI}}", gapi.URL, "{{AAD}}", aad.URL, "{{ARM}}", armSrv.URL}
	for k, v := range extra {
		repl = append(repl, k, v)
	}
	e := startAirlockWith(t, cfgYAML, e2eOptions{replace: repl, server: []serverOption{func(s *server) {
		s.brokerHooks.gcpClientOptions = []option.ClientOption{
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: e2eGCPBaseToken}))}
		s.brokerHooks.azureHTTPClient = aad.Client()
	}}})
	return &cloudEnv{e2eEnv: e, gapiHits: gapiHits, armHits: armHits}
}

// bearer asks Airlock for a token, as `airlock credentials gcp|azure` does.
func (e *cloudEnv) bearer(cloud, target string) string {
	e.t.Helper()
	body, err := requestCredentials(context.Background(), e.url, e.token, cloud, target, "OPS-7 e2e")
	if err != nil {
		e.t.Fatal(err)
	}
	var c struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &c); err != nil || c.TokenType != "Bearer" || !strings.HasPrefix(c.AccessToken, "airlock-v1.") {
		e.t.Fatalf("credentials %s: %v %s", cloud, err, body)
	}
	return c.AccessToken
}

// approve approves a held request through the API, as `airlock approve ID` does.
func (e *e2eEnv) approve(id string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/api/v1/requests/"+url.PathEscape(id)+"/approve", strings.NewReader(`{"comment":"ok"}`))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("approve %s: %d %s", id, resp.StatusCode, b)
	}
}

// wantEvent is an audit event a test expects: kind, action and decision ("" for any).
type wantEvent struct{ kind, action, decision string }

// awaitEvents waits until the audit trail holds every wanted event, fails the test for each
// one still missing after 5 s, and returns the events. A forward event is written after the
// answer went out, so a client's next call, on another connection, can overtake it.
func (e *e2eEnv) awaitEvents(t *testing.T, wants ...wantEvent) []audit.Event {
	t.Helper()
	var events []audit.Event
	missing := wants
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		events = e.auditEvents()
		missing = missing[:0:0]
		for _, w := range wants {
			if !hasEvent(events, w.kind, w.action, w.decision) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range missing {
		t.Errorf("audit has no %s event for %q (%s)", w.kind, w.action, w.decision)
	}
	return events
}

func TestE2EGCPClientsThroughAirlock(t *testing.T) {
	e := startCloudAirlock(t, e2eCloudConfig, nil)
	ctx := context.Background()
	tok := e.bearer("gcp", "prod-gcp")
	clientOpts := func(host, basePath, token string) []option.ClientOption {
		return []option.ClientOption{option.WithEndpoint(e.url + "/gcp/" + host + basePath),
			option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))}
	}
	cs, err := compute.NewService(ctx, clientOpts("compute.googleapis.com", "/compute/v1/", tok)...)
	if err != nil {
		t.Fatal(err)
	}

	// A read flows, with a token minted by impersonating the target's service account.
	list, err := cs.Instances.List("p1", "us-central1-a").Context(ctx).Do()
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "vm-1" {
		t.Fatalf("instances.list: %v %+v", err, list)
	}

	// A delete is held: the SDK's error carries the approval URL.
	_, err = cs.Instances.Delete("p1", "us-central1-a", "vm-1").Context(ctx).Do()
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != 403 || !strings.Contains(ge.Message, e.url+"/requests/") || !strings.Contains(ge.Message, "vm-deletes-need-approval") {
		t.Fatalf("instances.delete must be held with the approval URL: %v", err)
	}
	var info struct {
		Metadata map[string]string `json:"metadata"`
	}
	if len(ge.Details) == 0 {
		t.Fatalf("no error details: %v", ge)
	}
	b, _ := json.Marshal(ge.Details[0])
	_ = json.Unmarshal(b, &info)
	id := info.Metadata["approval_request"]
	if id == "" {
		t.Fatalf("no approval_request in the error details: %s", b)
	}
	e.approve(id)
	op, err := cs.Instances.Delete("p1", "us-central1-a", "vm-1").Context(ctx).Do()
	if err != nil || op.Status != "DONE" {
		t.Fatalf("instances.delete after approval: %v %+v", err, op)
	}

	// Storage through the generated storage client.
	ss, err := storage.NewService(ctx, clientOpts("storage.googleapis.com", "/storage/v1/", tok)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ss.Objects.List("bkt").Context(ctx).Do()
	if err != nil || len(objs.Items) != 1 || objs.Items[0].Name != "reports/q1.csv" {
		t.Fatalf("objects.list: %v %+v", err, objs)
	}

	// Forged and foreign tokens are refused in Google's format, before anything is forwarded.
	hits := e.gapiHits.Load()
	for name, bad := range map[string]string{
		"forged":      tok[:len(tok)-6] + "AAAAAA",
		"azure token": e.bearer("azure", "prod-azure"),
	} {
		forged, _ := compute.NewService(ctx, clientOpts("compute.googleapis.com", "/compute/v1/", bad)...)
		_, err = forged.Instances.List("p1", "us-central1-a").Context(ctx).Do()
		if !errors.As(err, &ge) || ge.Code != 401 || !strings.Contains(ge.Message, "airlock credentials gcp") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if e.gapiHits.Load() != hits {
		t.Error("a refused call reached the Google API")
	}

	events := e.awaitEvents(t,
		wantEvent{"decision", "compute.instances.list", "allow"},
		wantEvent{"forward", "compute.instances.list", "allow"},
		wantEvent{"decision", "compute.instances.delete", "hold"},
		wantEvent{"decision", "compute.instances.delete", "allow"},
		wantEvent{"forward", "compute.instances.delete", "allow"},
		wantEvent{"decision", "storage.objects.list", "allow"},
		wantEvent{"forward", "storage.objects.list", "allow"})
	for _, ev := range events {
		if ev.Kind == "decision" || ev.Kind == "forward" {
			if ev.Cloud != "gcp" || ev.Target != "prod-gcp" || ev.Identity.Email != "alice@example.com" {
				t.Errorf("event without cloud, target or identity: %+v", ev)
			}
			if ev.Kind == "forward" && ev.UpstreamStatus != 200 {
				t.Errorf("forward event: %+v", ev)
			}
		}
	}
	if strings.Contains(e.logs.String(), "ya29.impersonated") || strings.Contains(e.logs.String(), tok) {
		t.Error("a token is in the log")
	}
}

// staticCredential is what a user's program hands the Azure SDK: the Airlock-issued token.
type staticCredential string

func (s staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// airlockARMOptions point the ARM clients at Airlock: the Resource Manager endpoint is
// {airlock}/azure with the usual audience. Plain HTTP needs InsecureAllowCredentialWithHTTP;
// a real deployment serves Airlock over TLS.
func airlockARMOptions(airlockURL string) *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: "https://login.microsoftonline.com/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: airlockURL + "/azure", Audience: "https://management.azure.com"},
			},
		},
		InsecureAllowCredentialWithHTTP: true,
		Retry:                           policy.RetryOptions{MaxRetries: -1},
	}, DisableRPRegistration: true}
}

func TestE2EAzureClientsThroughAirlock(t *testing.T) {
	e := startCloudAirlock(t, e2eCloudConfig, nil)
	ctx := context.Background()
	cred := staticCredential(e.bearer("azure", "prod-azure"))
	opts := airlockARMOptions(e.url)

	groups, err := armresources.NewResourceGroupsClient(e2eAzureSub, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	page, err := groups.NewListPager(nil).NextPage(ctx)
	if err != nil || len(page.Value) != 1 || *page.Value[0].Name != "rg1" {
		t.Fatalf("resource groups list: %v %+v", err, page)
	}

	// A VM delete is held; the SDK's ResponseError carries ARM's code and Airlock's message.
	vms, err := armcompute.NewVirtualMachinesClient(e2eAzureSub, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = vms.BeginDelete(ctx, "rg1", "vm1", nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 403 || re.ErrorCode != "AuthorizationFailed" || !strings.Contains(err.Error(), e.url+"/requests/") {
		t.Fatalf("vm delete must be held with the approval URL: %v", err)
	}
	id := regexp.MustCompile(`/requests/([a-z0-9]+)`).FindStringSubmatch(err.Error())
	if id == nil {
		t.Fatalf("no request ID in %v", err)
	}
	e.approve(id[1])
	poller, err := vms.BeginDelete(ctx, "rg1", "vm1", nil)
	if err != nil {
		t.Fatalf("vm delete after approval: %v", err)
	}
	if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}); err != nil {
		t.Fatalf("vm delete poll: %v", err)
	}

	// Deleting a resource group is denied by a named rule.
	_, err = groups.BeginDelete(ctx, "rg1", nil)
	if !errors.As(err, &re) || re.StatusCode != 403 || re.ErrorCode != "AuthorizationFailed" || !strings.Contains(err.Error(), "resource-groups-are-forever") || !strings.Contains(err.Error(), "ask the platform team") {
		t.Errorf("rg delete: %v", err)
	}

	// The target's token cannot be spent on another subscription.
	hits := e.armHits.Load()
	other, err := armresources.NewResourceGroupsClient(e2eOtherSub, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.NewListPager(nil).NextPage(ctx)
	if !errors.As(err, &re) || re.StatusCode != 403 || !strings.Contains(err.Error(), "bound to subscription "+e2eAzureSub) {
		t.Errorf("other subscription: %v", err)
	}
	// Forged tokens are refused in ARM's format.
	forged, _ := armresources.NewResourceGroupsClient(e2eAzureSub, staticCredential(string(cred)[:len(cred)-6]+"AAAAAA"), opts)
	_, err = forged.NewListPager(nil).NextPage(ctx)
	if !errors.As(err, &re) || re.StatusCode != 401 || re.ErrorCode != "InvalidAuthenticationToken" {
		t.Errorf("forged token: %v", err)
	}
	if e.armHits.Load() != hits {
		t.Error("a refused call reached ARM")
	}

	events := e.awaitEvents(t,
		wantEvent{"decision", "Microsoft.Resources/subscriptions/resourceGroups/read", "allow"},
		wantEvent{"forward", "Microsoft.Resources/subscriptions/resourceGroups/read", "allow"},
		wantEvent{"decision", "Microsoft.Compute/virtualMachines/delete", "hold"},
		wantEvent{"decision", "Microsoft.Compute/virtualMachines/delete", "allow"},
		wantEvent{"forward", "Microsoft.Compute/virtualMachines/delete", "allow"},
		wantEvent{"decision", "Microsoft.Resources/subscriptions/resourceGroups/delete", "deny"},
		wantEvent{"decision", "Microsoft.Resources/subscriptions/resourceGroups/read", "deny"})
	for _, ev := range events {
		if (ev.Kind == "decision" || ev.Kind == "forward") && (ev.Cloud != "azure" || ev.Target != "prod-azure") {
			t.Errorf("event without cloud or target: %+v", ev)
		}
	}
	if res, err := audit.VerifyFiles(audit.ChainFile, e.auditFile); err != nil {
		t.Errorf("audit chain does not verify: %v (%+v)", err, res)
	}
}

const e2eGCSConfig = `
listen: {{LISTEN}}
dev:
  bootstrap_token_env: AIRLOCK_E2E_TOKEN
  bootstrap_identity: {subject: alice, email: alice@example.com, groups: [engineers]}
targets:
  - name: gcs
    cloud: gcp
    service_account: ` + e2eGCPAccount + `
    iam_endpoint: {{IAM}}
    api_endpoint: {{GCS}}
policies:
  - name: object-deletes-are-denied
    actions: ["storage.objects.delete"]
    decision: deny
  - name: storage-flows
    actions: ["storage.*"]
    decision: allow
  - name: default-deny
    decision: deny
audit:
  file: {{AUDIT}}
`

// startFakeGCS starts fake-gcs-server (in memory, plain HTTP) and returns its URL. publicHost is
// the host it writes into the upload addresses it hands out ("": its own address).
func startFakeGCS(t *testing.T, publicHost string) string {
	t.Helper()
	bin := testenv.Binary(t, "fake-gcs-server")
	port := testenv.FreePort(t)
	gcs := fmt.Sprintf("http://127.0.0.1:%d", port)
	if publicHost == "" {
		publicHost = fmt.Sprintf("127.0.0.1:%d", port)
	}
	testenv.Start(t, nil, bin, "-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
		"-backend", "memory", "-public-host", publicHost, "-log-level", "warn")
	testenv.WaitFor(t, "fake-gcs-server", 20*time.Second, testenv.HTTPReady(gcs+"/storage/v1/b?project=p1"))
	return gcs
}

// TestE2EFakeGCSServerThroughAirlock runs the generated storage client through Airlock to
// fake-gcs-server, a real third-party implementation of the storage JSON API (it accepts any
// token, so the token swap itself is checked by the tests above). Media uploads, which the
// client sends root-relative (/upload/storage/v1/...), reach it too.
func TestE2EFakeGCSServerThroughAirlock(t *testing.T) {
	e := startCloudAirlock(t, e2eGCSConfig, map[string]string{"{{GCS}}": startFakeGCS(t, "")})
	ctx := context.Background()
	tok := e.bearer("gcp", "gcs")
	ss, err := storage.NewService(ctx, option.WithEndpoint(e.url+"/gcp/storage.googleapis.com/storage/v1/"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Buckets.Insert("p1", &storage.Bucket{Name: "e2e-bucket"}).Context(ctx).Do(); err != nil {
		t.Fatalf("buckets.insert: %v", err)
	}
	if _, err := ss.Objects.Insert("e2e-bucket", &storage.Object{Name: "dir/hello.txt"}).Media(strings.NewReader("hello through airlock\n")).Context(ctx).Do(); err != nil {
		t.Fatalf("objects.insert (media upload): %v", err)
	}
	objs, err := ss.Objects.List("e2e-bucket").Context(ctx).Do()
	if err != nil || len(objs.Items) != 1 || objs.Items[0].Name != "dir/hello.txt" || objs.Items[0].Size != 22 {
		t.Fatalf("objects.list: %v %+v", err, objs)
	}
	resp, err := ss.Objects.Get("e2e-bucket", "dir/hello.txt").Context(ctx).Download()
	if err != nil {
		t.Fatalf("objects.get media: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello through airlock\n" {
		t.Errorf("downloaded %q", body)
	}
	err = ss.Objects.Delete("e2e-bucket", "dir/hello.txt").Context(ctx).Do()
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != 403 || !strings.Contains(ge.Message, "object-deletes-are-denied") {
		t.Errorf("objects.delete: %v", err)
	}
	// The same delete inside a batch request: the catalog cannot name a batch, and the
	// storage.* rule after the deny must not let it through.
	batch := "--b\r\nContent-Type: application/http\r\n\r\nDELETE /storage/v1/b/e2e-bucket/o/dir%2Fhello.txt HTTP/1.1\r\n\r\n--b--\r\n"
	req, _ := http.NewRequest("POST", e.url+"/gcp/storage.googleapis.com/batch/storage/v1", strings.NewReader(batch))
	req.Header.Set("Content-Type", "multipart/mixed; boundary=b")
	req.Header.Set("Authorization", "Bearer "+tok)
	bresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bbody, _ := io.ReadAll(bresp.Body)
	bresp.Body.Close()
	if bresp.StatusCode != 403 || !strings.Contains(string(bbody), "storage.Unknown") || !strings.Contains(string(bbody), "batch request") {
		t.Errorf("a batch bundling the denied delete = %d %s, want 403 naming storage.Unknown", bresp.StatusCode, bbody)
	}
	if _, err := ss.Objects.Get("e2e-bucket", "dir/hello.txt").Context(ctx).Do(); err != nil {
		t.Errorf("the denied delete reached the upstream: %v", err)
	}
	e.awaitEvents(t,
		wantEvent{"forward", "storage.buckets.insert", "allow"},
		wantEvent{"forward", "storage.objects.insert", "allow"},
		wantEvent{"forward", "storage.objects.list", "allow"},
		wantEvent{"forward", "storage.objects.get", "allow"},
		wantEvent{"decision", "storage.objects.delete", "deny"})
}
