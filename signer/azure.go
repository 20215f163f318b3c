package signer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/airlockhq/airlock/config"
)

// ARMScope is the scope of Azure Resource Manager tokens.
const ARMScope = "https://management.azure.com/.default"

// Azure credential kinds (config key targets[].credential).
const (
	AzureClientSecret     = "client_secret"
	AzureWorkloadIdentity = "workload_identity"
	AzureManagedIdentity  = "managed_identity"
)

// AzureBrokerConfig configures an AzureBroker.
type AzureBrokerConfig struct {
	BrokerConfig // CallTimeout covers authority discovery too
	// HTTPClient calls Azure AD (or the managed identity endpoint); nil: azcore's default.
	HTTPClient *http.Client
}

// AzureBroker mints Azure Resource Manager tokens with the credential a target names and caches
// them encrypted in the store.
type AzureBroker struct {
	cfg    AzureBrokerConfig
	flight *flight
}

// NewAzureBroker returns a broker; cfg is checked and defaulted.
func NewAzureBroker(cfg AzureBrokerConfig) (*AzureBroker, error) {
	f, err := cfg.newFlight()
	if err != nil {
		return nil, err
	}
	return &AzureBroker{cfg: cfg, flight: f}, nil
}

// Stats reports tokens minted and requests answered without minting.
func (b *AzureBroker) Stats() (mints, hits uint64) { return b.flight.stats() }

// Token returns an ARM access token for the target: cached when usable, otherwise minted once
// across concurrent callers and replicas.
func (b *AzureBroker) Token(ctx context.Context, t *config.Target) (token string, exp time.Time, err error) {
	if t == nil || t.Cloud != "azure" {
		return "", time.Time{}, errors.New("mint azure token: not an azure target")
	}
	kind := azureCredentialKind(t)
	key := CacheKey("azure", t.Name, t.AuthorityHost, t.TenantID, t.ClientID, kind, ARMScope)
	raw, err := b.flight.get(ctx, key, func(ctx context.Context) ([]byte, time.Time, error) {
		tok, err := b.mint(ctx, t, kind)
		if err != nil {
			return nil, time.Time{}, err
		}
		v, err := json.Marshal(cachedToken{tok.Token, tok.ExpiresOn})
		return v, tok.ExpiresOn, err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint azure token for target %s: %w", t.Name, err)
	}
	var c cachedToken
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", time.Time{}, fmt.Errorf("mint azure token for target %s: decode cached token: %w", t.Name, err)
	}
	return c.Token, c.Expires, nil
}

// azureCredentialKind is the target's credential, client_secret when it names a secret.
func azureCredentialKind(t *config.Target) string {
	if t.Credential == "" && t.ClientSecretEnv != "" {
		return AzureClientSecret
	}
	return t.Credential
}

// mint builds the credential afresh each time: mints are an hour apart, our cache already holds
// the token, and a fresh credential picks up a rotated secret or token file.
func (b *AzureBroker) mint(ctx context.Context, t *config.Target, kind string) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel()
	opts := azcore.ClientOptions{}
	if b.cfg.HTTPClient != nil {
		opts.Transport = b.cfg.HTTPClient
	}
	// A custom authority (sovereign cloud, or a fake in tests) is not in Microsoft's instance
	// discovery list, so discovery is skipped for it.
	custom := t.AuthorityHost != ""
	if custom {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: t.AuthorityHost}
	}
	var cred azcore.TokenCredential
	var err error
	switch kind {
	case AzureClientSecret:
		secret, serr := config.Secret(t.ClientSecretEnv)
		if serr != nil {
			return azcore.AccessToken{}, fmt.Errorf("client secret: %w", serr)
		}
		cred, err = azidentity.NewClientSecretCredential(t.TenantID, t.ClientID, secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: custom})
	case AzureWorkloadIdentity:
		// The federated token file comes from AZURE_FEDERATED_TOKEN_FILE (set by the AKS webhook).
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: t.TenantID, ClientID: t.ClientID, DisableInstanceDiscovery: custom})
	case AzureManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if t.ClientID != "" {
			mo.ID = azidentity.ClientID(t.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mo)
	case "":
		return azcore.AccessToken{}, errors.New("no credential: set client_secret_env, or credential: workload_identity or managed_identity")
	default:
		return azcore.AccessToken{}, fmt.Errorf("unknown credential %q (client_secret, workload_identity, managed_identity)", kind)
	}
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("%s credential: %w", kind, err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ARMScope}})
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("%s token: %w", kind, err)
	}
	b.cfg.Logger.Info("minted azure token", "target", t.Name, "credential", kind, "expires", tok.ExpiresOn.UTC())
	return tok, nil
}
