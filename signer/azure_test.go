package signer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store/memory"
)

const (
	azureTenant   = "11111111-2222-3333-4444-555555555555"
	azureClientID = "66666666-7777-8888-9999-000000000000"
	azureSecret   = "azure-client-secret-do-not-leak"
	// azureFederatedToken stands for the service account token AKS projects into the pod.
	azureFederatedToken = "eyJhbGciOiJSUzI1NiJ9.federated.sig"
)

// fakeAAD is an Azure AD v2 authority: the OIDC metadata that MSAL reads first, and the token
// endpoint, which checks a client-credentials request the way AAD does.
type fakeAAD struct {
	*httptest.Server
	tokens atomic.Int64
	delay  time.Duration

	mu       sync.Mutex
	lastForm url.Values
}

var aadPath = regexp.MustCompile(`^/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)$`)

func newFakeAAD(t *testing.T) *fakeAAD {
	t.Helper()
	f := &fakeAAD{}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func aadError(w http.ResponseWriter, code int, e, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e, "error_description": desc, "error_codes": []int{7000215}})
}

func (f *fakeAAD) serve(w http.ResponseWriter, r *http.Request) {
	m := aadPath.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != azureTenant {
		aadError(w, 404, "invalid_tenant", "unknown path "+r.URL.Path)
		return
	}
	base := f.URL + "/" + azureTenant
	if strings.HasSuffix(m[2], "openid-configuration") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
			"jwks_uri":               base + "/discovery/v2.0/keys",
		})
		return
	}
	n := f.tokens.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		aadError(w, 400, "invalid_request", "POST a form")
		return
	}
	f.mu.Lock()
	f.lastForm = r.PostForm
	f.mu.Unlock()
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		aadError(w, 400, "unsupported_grant_type", "grant_type")
	case r.PostForm.Get("client_id") != azureClientID:
		aadError(w, 400, "unauthorized_client", "Application not found in the directory")
	case r.PostForm.Get("client_assertion") != "":
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			r.PostForm.Get("client_assertion") != azureFederatedToken {
			aadError(w, 401, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range.")
			return
		}
		f.issue(w, n)
	case r.PostForm.Get("client_secret") != azureSecret:
		aadError(w, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
	case !strings.Contains(" "+r.PostForm.Get("scope")+" ", " "+ARMScope+" "):
		aadError(w, 400, "invalid_scope", "scope "+r.PostForm.Get("scope"))
	default:
		f.issue(w, n)
	}
}

func (f *fakeAAD) issue(w http.ResponseWriter, n int64) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
		"access_token": fmt.Sprintf("eyJ.arm-token-%d", n),
	})
}

func (f *fakeAAD) form() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastForm
}

func azureTarget(authority string) *config.Target {
	return &config.Target{
		Name: "prod-azure", Cloud: "azure",
		TenantID: azureTenant, SubscriptionID: "00000000-0000-0000-0000-000000000000",
		ClientID: azureClientID, ClientSecretEnv: "TEST_AZURE_CLIENT_SECRET",
		AuthorityHost: authority + "/",
	}
}

func newTestAzureBroker(t testing.TB, st *memory.Store, key []byte, client *http.Client) *AzureBroker {
	t.Helper()
	b, err := NewAzureBroker(AzureBrokerConfig{BrokerConfig: BrokerConfig{Store: st, Key: key}, HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAzureClientSecretToken(t *testing.T) {
	t.Setenv("TEST_AZURE_CLIENT_SECRET", azureSecret)
	aad := newFakeAAD(t)
	b := newTestAzureBroker(t, memory.New(nil), testKey(t), aad.Client())
	target := azureTarget(aad.URL)

	tok, exp, err := b.Token(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "eyJ.arm-token-1" || time.Until(exp) < 55*time.Minute || time.Until(exp) > time.Hour {
		t.Errorf("Token = %q, expires in %v", tok, time.Until(exp))
	}
	form := aad.form()
	if form.Get("client_id") != azureClientID || form.Get("client_secret") != azureSecret || form.Get("grant_type") != "client_credentials" {
		t.Errorf("token request form: client_id=%q grant_type=%q", form.Get("client_id"), form.Get("grant_type"))
	}
	again, _, err := b.Token(context.Background(), target)
	if err != nil || again != tok || aad.tokens.Load() != 1 {
		t.Errorf("second call: %q, %v, token requests=%d", again, err, aad.tokens.Load())
	}
}

func TestAzureErrors(t *testing.T) {
	aad := newFakeAAD(t)
	b := newTestAzureBroker(t, memory.New(nil), testKey(t), aad.Client())
	ctx := context.Background()

	t.Setenv("TEST_AZURE_CLIENT_SECRET", "wrong-secret-value")
	_, _, err := b.Token(ctx, azureTarget(aad.URL))
	if err == nil || !strings.HasPrefix(err.Error(), "mint azure token for target prod-azure: ") || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("wrong secret: %v", err)
	} else if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("error leaks the secret: %v", err)
	}

	t.Setenv("TEST_AZURE_CLIENT_SECRET", "")
	if _, _, err := b.Token(ctx, azureTarget(aad.URL)); err == nil || !strings.Contains(err.Error(), "TEST_AZURE_CLIENT_SECRET") {
		t.Errorf("unset secret: %v", err)
	}
	none := azureTarget(aad.URL)
	none.ClientSecretEnv = ""
	if _, _, err := b.Token(ctx, none); err == nil || !strings.Contains(err.Error(), "no credential") {
		t.Errorf("no credential: %v", err)
	}
	odd := azureTarget(aad.URL)
	odd.Credential = "certificate"
	if _, _, err := b.Token(ctx, odd); err == nil || !strings.Contains(err.Error(), "unknown credential") {
		t.Errorf("unknown credential: %v", err)
	}
	if _, _, err := b.Token(ctx, &config.Target{Name: "g", Cloud: "gcp"}); err == nil {
		t.Error("minted an azure token for a gcp target")
	}
}

func TestAzureSingleFlight(t *testing.T) {
	t.Setenv("TEST_AZURE_CLIENT_SECRET", azureSecret)
	aad := newFakeAAD(t)
	aad.delay = 50 * time.Millisecond
	shared := memory.New(nil)
	key := testKey(t)
	replicas := []*AzureBroker{
		newTestAzureBroker(t, shared, key, aad.Client()),
		newTestAzureBroker(t, shared, key, aad.Client()),
	}
	target := azureTarget(aad.URL)
	var wg sync.WaitGroup
	start := make(chan struct{})
	toks := make([]string, 500)
	for i := range toks {
		wg.Go(func() {
			<-start
			tok, _, err := replicas[i%2].Token(context.Background(), target)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	close(start)
	wg.Wait()
	if aad.tokens.Load() != 1 {
		t.Fatalf("token requests = %d, want 1", aad.tokens.Load())
	}
	for i, tok := range toks {
		if tok != toks[0] {
			t.Fatalf("caller %d got %q, caller 0 %q", i, tok, toks[0])
		}
	}
}

func TestAzureWorkloadIdentityToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(azureFederatedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	aad := newFakeAAD(t)
	b := newTestAzureBroker(t, memory.New(nil), testKey(t), aad.Client())
	target := azureTarget(aad.URL)
	target.ClientSecretEnv, target.Credential = "", AzureWorkloadIdentity
	tok, _, err := b.Token(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "eyJ.arm-token-1" {
		t.Errorf("Token = %q", tok)
	}
	if f := aad.form(); f.Get("client_id") != azureClientID || f.Get("client_secret") != "" {
		t.Errorf("token request: client_id=%q, secret sent=%v", f.Get("client_id"), f.Get("client_secret") != "")
	}
}
