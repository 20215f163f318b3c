package signer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	credentials "cloud.google.com/go/iam/credentials/apiv1"
	"cloud.google.com/go/iam/credentials/apiv1/credentialspb"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/airlockhq/airlock/config"
)

// DefaultGCPLifetime is the token lifetime when the target sets none.
const DefaultGCPLifetime = 15 * time.Minute

// GCPBrokerConfig configures a GCPBroker.
type GCPBrokerConfig struct {
	BrokerConfig // CallTimeout bounds each generateAccessToken call
	// ClientOptions set the base identity that impersonates the targets' service accounts and
	// its transport. None: Application Default Credentials, i.e. the proxy's own Google identity.
	// Tests pass option.WithTokenSource with a static token.
	ClientOptions []option.ClientOption
}

// GCPBroker mints access tokens for GCP targets by impersonating the target's service account
// (IAM Credentials generateAccessToken) and caches them encrypted in the store.
type GCPBroker struct {
	cfg    GCPBrokerConfig
	flight *flight

	mu      sync.Mutex
	clients map[string]*credentials.IamCredentialsClient // by IAM endpoint ("" = Google's)
}

// NewGCPBroker returns a broker; cfg is checked and defaulted. Close releases its clients.
func NewGCPBroker(cfg GCPBrokerConfig) (*GCPBroker, error) {
	f, err := cfg.newFlight()
	if err != nil {
		return nil, err
	}
	return &GCPBroker{cfg: cfg, flight: f, clients: map[string]*credentials.IamCredentialsClient{}}, nil
}

// Stats reports tokens minted and requests answered without minting.
func (b *GCPBroker) Stats() (mints, hits uint64) { return b.flight.stats() }

// Close releases the IAM Credentials clients.
func (b *GCPBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for k, c := range b.clients {
		errs = append(errs, c.Close())
		delete(b.clients, k)
	}
	return errors.Join(errs...)
}

// cachedToken is what the cache seals for GCP and Azure.
type cachedToken struct {
	Token   string    `json:"t"`
	Expires time.Time `json:"e"`
}

// Token returns an access token for the target's service account: cached when usable,
// otherwise minted once across concurrent callers and replicas.
func (b *GCPBroker) Token(ctx context.Context, t *config.Target) (token string, exp time.Time, err error) {
	if t == nil || t.Cloud != "gcp" || t.ServiceAccount == "" {
		return "", time.Time{}, errors.New("mint gcp token: not a gcp target with a service account")
	}
	scopes := slices.Clone(t.Scopes)
	slices.Sort(scopes)
	key := CacheKey("gcp", t.Name, t.IAMEndpoint, t.ServiceAccount, strings.Join(scopes, " "), strings.Join(t.Delegates, " "))
	raw, err := b.flight.get(ctx, key, func(ctx context.Context) ([]byte, time.Time, error) {
		tok, exp, err := b.generate(ctx, t)
		if err != nil {
			return nil, time.Time{}, err
		}
		v, err := json.Marshal(cachedToken{tok, exp})
		return v, exp, err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint gcp token for target %s: %w", t.Name, err)
	}
	var c cachedToken
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", time.Time{}, fmt.Errorf("mint gcp token for target %s: decode cached token: %w", t.Name, err)
	}
	return c.Token, c.Expires, nil
}

func (b *GCPBroker) generate(ctx context.Context, t *config.Target) (string, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel()
	client, err := b.client(ctx, t.IAMEndpoint)
	if err != nil {
		return "", time.Time{}, err
	}
	lifetime := t.Duration.D()
	if lifetime == 0 {
		lifetime = DefaultGCPLifetime
	}
	scopes := t.Scopes
	if len(scopes) == 0 {
		scopes = []string{"https://www.googleapis.com/auth/cloud-platform"}
	}
	req := &credentialspb.GenerateAccessTokenRequest{
		Name:     serviceAccountName(t.ServiceAccount),
		Scope:    scopes,
		Lifetime: durationpb.New(lifetime),
	}
	for _, d := range t.Delegates {
		req.Delegates = append(req.Delegates, serviceAccountName(d))
	}
	resp, err := client.GenerateAccessToken(ctx, req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("generateAccessToken for %s: %w", t.ServiceAccount, err)
	}
	if resp.GetAccessToken() == "" || resp.GetExpireTime() == nil {
		return "", time.Time{}, errors.New("generateAccessToken: response without a token")
	}
	exp := resp.GetExpireTime().AsTime()
	b.cfg.Logger.Info("minted gcp token", "target", t.Name, "service_account", t.ServiceAccount, "expires", exp.UTC())
	return resp.GetAccessToken(), exp, nil
}

// client returns the IAM Credentials client for an endpoint, created once: its base identity's
// token source caches the base token, which a per-mint client would fetch again every time.
func (b *GCPBroker) client(ctx context.Context, endpoint string) (*credentials.IamCredentialsClient, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[endpoint]; ok {
		return c, nil
	}
	opts := slices.Clone(b.cfg.ClientOptions)
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	// The client keeps ctx only for setting up its base credentials, not for later calls.
	c, err := credentials.NewIamCredentialsRESTClient(context.WithoutCancel(ctx), opts...)
	if err != nil {
		return nil, fmt.Errorf("iam credentials client: %w", err)
	}
	b.clients[endpoint] = c
	return c, nil
}

// serviceAccountName is the resource name the IAM Credentials API wants; "-" lets Google infer
// the project from the account.
func serviceAccountName(account string) string {
	if strings.HasPrefix(account, "projects/") {
		return account
	}
	return "projects/-/serviceAccounts/" + account
}
