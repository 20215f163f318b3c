package signer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store"
)

// Defaults for AWS minting.
const (
	// DefaultAWSDuration is the STS session length when the target sets none (the STS minimum).
	DefaultAWSDuration = 15 * time.Minute
	// DefaultCallTimeout bounds each call to a cloud's credential API.
	DefaultCallTimeout = 10 * time.Second
	// defaultAWSRegion signs the STS call when the target names no region.
	defaultAWSRegion = "us-east-1"
	// sharedSessionName is the STS session name when sessions are shared between identities.
	sharedSessionName = "airlock"
)

// BrokerConfig is what every credential broker shares: the store and key of its encrypted
// cache, the clock, and the timeout of each call to the cloud.
type BrokerConfig struct {
	Store store.Store
	// Key is the 32-byte key that cached credentials are encrypted with.
	Key    []byte
	Logger *slog.Logger
	Now    func() time.Time
	// RefreshMargin: cached credentials are not handed out this close to expiry (default 2m).
	RefreshMargin time.Duration
	// CallTimeout bounds each call that mints, credential lookups included (default 10s).
	CallTimeout time.Duration
}

// CheckAndSetDefaults refuses what is missing and fills the defaults.
func (c *BrokerConfig) CheckAndSetDefaults() error {
	cc := c.cacheConfig()
	if err := cc.CheckAndSetDefaults(); err != nil {
		return err
	}
	c.Logger, c.Now, c.RefreshMargin = cc.Logger, cc.Now, cc.RefreshMargin
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	return nil
}

func (c *BrokerConfig) cacheConfig() CacheConfig {
	return CacheConfig{Store: c.Store, Key: c.Key, Logger: c.Logger, Now: c.Now, RefreshMargin: c.RefreshMargin}
}

// newFlight checks c and returns the single-flight, encrypted cache a broker mints through.
func (c *BrokerConfig) newFlight() (*flight, error) {
	if err := c.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	cache, err := NewCache(c.cacheConfig())
	if err != nil {
		return nil, err
	}
	return newFlight(cache), nil
}

// AWSBrokerConfig configures an AWSBroker.
type AWSBrokerConfig struct {
	BrokerConfig
	// HTTPClient calls STS; nil uses the AWS SDK's default client.
	HTTPClient *http.Client

	// SharedSessions trades per-identity STS sessions for fewer mints. By default (false) every
	// identity gets its own STS session, named after it (MintRequest.SessionName), and the cache
	// key includes that name: CloudTrail then shows who acted, at the cost of one AssumeRole per
	// (identity, target, policy). With SharedSessions the cache is keyed by (target, role,
	// policy) only, identities share one session named "airlock", and who acted is recorded only
	// in Airlock's own audit stream.
	SharedSessions bool
}

// MintRequest says what the credentials are for.
type MintRequest struct {
	// SessionName is the caller's identity (email or subject); it becomes the STS session name,
	// sanitised, unless the broker shares sessions.
	SessionName string
	// Policy is a session policy JSON (see SessionPolicy) or "" for the role's full permissions.
	Policy string
}

// AWSBroker mints STS credentials for AWS targets and caches them encrypted in the store.
type AWSBroker struct {
	cfg    AWSBrokerConfig
	flight *flight
	// opened keeps credentials this process has already read from the cache (or minted),
	// decrypted and decoded, by what was asked for (the flight's own in-process layer, shared
	// with the GCP and Azure brokers, is keyed by the hashed cache key and still needs the key
	// built and the JSON decoded): a hit then costs no store round trip
	// (Redis), no AES-GCM, no JSON and, because the key is the request itself rather than the
	// hashed cache key, no allocation. Entries obey the same refresh margin as the store's.
	openedMu sync.RWMutex
	opened   map[openedKey]aws.Credentials
}

// openedKey is a MintRequest for one target, comparable so that looking it up allocates
// nothing. It is finer than the store's cache key (the raw identity rather than the sanitised
// session name), which can only cost an extra store read, never a wrong credential.
type openedKey struct {
	target, role, sts, identity, policy string
}

// mintWait bounds how long a caller waits for credentials that are not open in this process:
// the store read, a mint by this replica or another one holding the mint lock, and STS.
const mintWait = 30 * time.Second

// maxOpened bounds opened; past it, it starts again empty.
const maxOpened = 4096

func (b *AWSBroker) lookupOpened(k openedKey) (aws.Credentials, bool) {
	b.openedMu.RLock()
	c, ok := b.opened[k]
	b.openedMu.RUnlock()
	return c, ok
}

func (b *AWSBroker) remember(k openedKey, c aws.Credentials) {
	b.openedMu.Lock()
	if len(b.opened) >= maxOpened {
		clear(b.opened)
	}
	b.opened[k] = c
	b.openedMu.Unlock()
}

func (b *AWSBroker) forget(k openedKey) {
	b.openedMu.Lock()
	delete(b.opened, k)
	b.openedMu.Unlock()
}

// NewAWSBroker returns a broker; cfg is checked and defaulted.
func NewAWSBroker(cfg AWSBrokerConfig) (*AWSBroker, error) {
	f, err := cfg.newFlight()
	if err != nil {
		return nil, err
	}
	return &AWSBroker{cfg: cfg, flight: f, opened: map[openedKey]aws.Credentials{}}, nil
}

// Stats reports how many credentials this broker minted and how many requests it answered
// without minting (from the cache, or by sharing a mint in flight).
func (b *AWSBroker) Stats() (mints, hits uint64) { return b.flight.stats() }

// cachedAWSCredentials is what the cache seals.
type cachedAWSCredentials struct {
	AccessKeyID     string    `json:"a"`
	SecretAccessKey string    `json:"s"`
	SessionToken    string    `json:"t"`
	Expires         time.Time `json:"e"`
}

// Credentials returns short-lived credentials for target t: from the cache when a usable entry
// exists, otherwise minted by STS AssumeRole, once across concurrent callers and replicas.
func (b *AWSBroker) Credentials(ctx context.Context, t *config.Target, m MintRequest) (aws.Credentials, error) {
	if t == nil || t.Cloud != "aws" {
		return aws.Credentials{}, errors.New("mint aws credentials: not an aws target")
	}
	ask := openedKey{target: t.Name, role: t.RoleARN, sts: t.STSEndpoint, identity: m.SessionName, policy: m.Policy}
	if b.cfg.SharedSessions {
		ask.identity = ""
	}
	if c, hit := b.lookupOpened(ask); hit {
		if b.cfg.Now().Add(b.cfg.RefreshMargin).Before(c.Expires) {
			b.flight.hits.Add(1)
			return c, nil
		}
		b.forget(ask)
	}
	// Past here the store, and maybe STS, is asked: bound the whole wait.
	ctx, cancel := context.WithTimeout(ctx, mintWait)
	defer cancel()
	session := sharedSessionName
	if !b.cfg.SharedSessions {
		session = SessionName(m.SessionName)
	}
	key := b.cacheKey(t, session, m.Policy)
	raw, err := b.flight.get(ctx, key, func(ctx context.Context) ([]byte, time.Time, error) {
		c, err := b.assumeRole(ctx, t, session, m.Policy)
		if err != nil {
			return nil, time.Time{}, err
		}
		v, err := json.Marshal(cachedAWSCredentials{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expires})
		return v, c.Expires, err
	})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("mint aws credentials for target %s: %w", t.Name, err)
	}
	var c cachedAWSCredentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return aws.Credentials{}, fmt.Errorf("mint aws credentials for target %s: decode cached credentials: %w", t.Name, err)
	}
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: "airlock", CanExpire: true, Expires: c.Expires}
	b.remember(ask, creds)
	return creds, nil
}

// cacheKey hashes what makes two credentials interchangeable. The session name is in it because
// it is part of what STS issued (and of what CloudTrail shows); with shared sessions it is the
// same constant for everyone.
func (b *AWSBroker) cacheKey(t *config.Target, session, policy string) string {
	return CacheKey("aws", t.Name, t.RoleARN, t.STSEndpoint, session, policy)
}

func (b *AWSBroker) assumeRole(ctx context.Context, t *config.Target, session, policy string) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
	defer cancel()
	client, err := b.stsClient(ctx, t)
	if err != nil {
		return aws.Credentials{}, err
	}
	duration := t.Duration.D()
	if duration == 0 {
		duration = DefaultAWSDuration
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(t.RoleARN),
		RoleSessionName: aws.String(session),
		DurationSeconds: aws.Int32(int32(duration / time.Second)),
	}
	if policy != "" {
		in.Policy = aws.String(policy)
	}
	if t.ExternalIDEnv != "" {
		id, err := config.Secret(t.ExternalIDEnv)
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("external id: %w", err)
		}
		in.ExternalId = aws.String(id)
	}
	out, err := client.AssumeRole(ctx, in)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("sts AssumeRole: %w", err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return aws.Credentials{}, errors.New("sts AssumeRole: response without credentials")
	}
	b.cfg.Logger.Info("minted aws credentials", "target", t.Name, "session", session,
		"access_key_id", *c.AccessKeyId, "expires", c.Expiration.UTC())
	return aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey,
		SessionToken: *c.SessionToken, CanExpire: true, Expires: *c.Expiration}, nil
}

// stsClient is built per mint: mints are minutes apart, and building it fresh picks up rotated
// base credentials and config without a restart.
func (b *AWSBroker) stsClient(ctx context.Context, t *config.Target) (*sts.Client, error) {
	region := defaultAWSRegion
	if len(t.Regions) > 0 && t.Regions[0] != "" {
		region = t.Regions[0]
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if b.cfg.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(b.cfg.HTTPClient))
	}
	if bc := t.BaseCredentials; bc != nil {
		id, err := config.Secret(bc.AccessKeyIDEnv)
		if err != nil {
			return nil, fmt.Errorf("base credentials: %w", err)
		}
		secret, err := config.Secret(bc.SecretAccessKeyEnv)
		if err != nil {
			return nil, fmt.Errorf("base credentials: %w", err)
		}
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if t.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(t.STSEndpoint)
		}
	}), nil
}

// SessionName turns an identity into a valid STS RoleSessionName: characters outside
// [A-Za-z0-9_+=,.@-] become '-', at most 64 characters, at least 2 ("airlock" when too short).
func SessionName(identity string) string {
	var b strings.Builder
	for _, r := range identity {
		if b.Len() == 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_+=,.@-", r):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() < 2 {
		return sharedSessionName
	}
	return b.String()
}

// SessionPolicy returns an IAM session policy that allows only iamAction on resource, and each
// permission in also (what the call needs besides, which AWS checks apart: a copy's read of its
// source, the ACL an upload sets). A resource that is not an ARN becomes "*". The effective
// permissions are the intersection with the role's, so this can only narrow them. The output
// is deterministic, so it is usable in cache keys.
//
// Calls repeat the same few actions and resources, so the documents are kept (up to
// maxPolicies of them): a repeat costs a map lookup and no allocation.
func SessionPolicy(iamAction, resource string, also ...catalog.Permission) string {
	k := policyKey{iamAction, arnOrAny(resource), ""}
	if len(also) > 0 {
		var b strings.Builder
		for _, p := range also {
			b.WriteString(p.Action)
			b.WriteByte(0)
			b.WriteString(statementResource(p))
			b.WriteByte(0)
		}
		k.also = b.String()
	}
	policies.RLock()
	doc, ok := policies.m[k]
	policies.RUnlock()
	if ok {
		return doc
	}
	doc = sessionPolicy(iamAction, k.resource, also)
	policies.Lock()
	if len(policies.m) >= maxPolicies {
		clear(policies.m)
	}
	policies.m[k] = doc
	policies.Unlock()
	return doc
}

// statementResource is the Resource of an extra permission's statement. iam:PassRole is
// checked against the role's ARN; a call that names an instance profile instead (RunInstances)
// does not say which role that holds, so the statement allows passing any role, as far as the
// target role's own policy lets it pass roles at all.
func statementResource(p catalog.Permission) string {
	if p.Action == "iam:PassRole" && !strings.Contains(p.Resource, ":role/") {
		return "*"
	}
	return arnOrAny(p.Resource)
}

func arnOrAny(resource string) string {
	if !strings.HasPrefix(resource, "arn:") {
		return "*"
	}
	return resource
}

// policyKey is a document's inputs; also is the extra permissions, NUL-separated.
type policyKey struct{ action, resource, also string }

// policies memoises SessionPolicy.
var policies = struct {
	sync.RWMutex
	m map[policyKey]string
}{m: map[policyKey]string{}}

const maxPolicies = 4096

func sessionPolicy(iamAction, resource string, also []catalog.Permission) string {
	type statement struct {
		Effect   string
		Action   string
		Resource string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{{"Allow", iamAction, resource}}}
	for _, p := range also {
		doc.Statement = append(doc.Statement, statement{"Allow", p.Action, statementResource(p)})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc) // strings only: cannot fail
	return strings.TrimSuffix(buf.String(), "\n")
}

// SessionPolicyEnabled reports whether the target wants session policies (on unless turned off).
func SessionPolicyEnabled(t *config.Target) bool {
	return t.SessionPolicy == nil || *t.SessionPolicy
}
