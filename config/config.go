// Package config owns Airlock's configuration file: one struct tree with yaml tags, defaults
// applied in one place, and a Validate that reports every problem at once with its path.
// Unknown keys are errors that name the key and its line.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file. See configs/example.yaml and the README.
type Config struct {
	Listen    string       `yaml:"listen"`
	PublicURL string       `yaml:"public_url"`
	TLS       TLS          `yaml:"tls"`
	Dev       Dev          `yaml:"dev"`
	OIDC      OIDC         `yaml:"oidc"`
	Redis     Redis        `yaml:"redis"`
	Targets   []Target     `yaml:"targets"`
	Policies  []Policy     `yaml:"policies"`
	Risk      []RiskRule   `yaml:"risk"`
	Hold      Hold         `yaml:"hold"`
	Audit     Audit        `yaml:"audit"`
	Notify    []Notify     `yaml:"notify"`
	Creds     Credentials  `yaml:"credentials"`
	Forward   ForwardProxy `yaml:"forward_proxy"`
	Log       Log          `yaml:"log"`

	// Source is where the config came from ("" for development defaults); not a YAML key.
	Source string `yaml:"-"`
}

// TLS serves Airlock over HTTPS when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Dev holds development-only switches. Each one logs a warning at start.
type Dev struct {
	// BootstrapTokenEnv names an environment variable holding a static token that may call the
	// credentials API in place of an OIDC ID token. For development and CI only.
	BootstrapTokenEnv string `yaml:"bootstrap_token_env"`
	// BootstrapIdentity is who the bootstrap token stands for.
	BootstrapIdentity BootstrapIdentity `yaml:"bootstrap_identity"`
}

// BootstrapIdentity is the identity behind the development bootstrap token.
type BootstrapIdentity struct {
	Subject string   `yaml:"subject"`
	Email   string   `yaml:"email"`
	Groups  []string `yaml:"groups"`
}

// OIDC is the company's identity provider.
type OIDC struct {
	Issuer              string   `yaml:"issuer"`
	ClientID            string   `yaml:"client_id"`
	ClientSecretEnv     string   `yaml:"client_secret_env"`
	Scopes              []string `yaml:"scopes"`
	GroupsClaim         string   `yaml:"groups_claim"`
	GroupsClaimFallback []string `yaml:"groups_claim_fallback"`
	AllowedDomains      []string `yaml:"allowed_domains"`
	// ExtraAudiences are further client IDs whose ID tokens the API accepts (e.g. a CLI client).
	ExtraAudiences []string `yaml:"extra_audiences"`
	// SessionTTL is how long a browser session (the approval pages) lasts. A session keeps the
	// groups it logged in with, so this bounds how long a group removed at the provider still
	// counts there (default 12h, between 5m and 24h).
	SessionTTL Duration `yaml:"session_ttl"`
	// GroupsRefresh is how old a browser session's groups may get before the next request
	// refreshes them at the provider with the login's refresh token; a user removed or disabled
	// there loses the session then (default 5m, between 1m and 1h, at most session_ttl).
	GroupsRefresh Duration `yaml:"groups_refresh"`
}

// Redis switches the store from the embedded memory store to Redis.
type Redis struct {
	URL              string `yaml:"url"`
	EncryptionKeyEnv string `yaml:"encryption_key_env"`
	KeyPrefix        string `yaml:"key_prefix"`
}

// Target is one cloud account/project/subscription that Airlock brokers credentials for.
type Target struct {
	Name  string `yaml:"name"`
	Cloud string `yaml:"cloud"`

	// AWS
	RoleARN         string          `yaml:"role_arn"`
	Regions         []string        `yaml:"regions"`
	Endpoint        string          `yaml:"endpoint"`
	STSEndpoint     string          `yaml:"sts_endpoint"`
	BaseCredentials *AWSCredentials `yaml:"base_credentials"`
	SessionPolicy   *bool           `yaml:"session_policy"`
	ExternalIDEnv   string          `yaml:"external_id_env"`
	Duration        Duration        `yaml:"duration"`

	// GCP
	ServiceAccount string   `yaml:"service_account"`
	Scopes         []string `yaml:"scopes"`
	Delegates      []string `yaml:"delegates"`
	IAMEndpoint    string   `yaml:"iam_endpoint"`
	APIEndpoint    string   `yaml:"api_endpoint"`

	// Azure
	TenantID        string `yaml:"tenant_id"`
	SubscriptionID  string `yaml:"subscription_id"`
	ClientID        string `yaml:"client_id"`
	ClientSecretEnv string `yaml:"client_secret_env"`
	AuthorityHost   string `yaml:"authority_host"`
	ARMEndpoint     string `yaml:"arm_endpoint"`
	Credential      string `yaml:"credential"` // client_secret (default when a secret is set), workload_identity, managed_identity
}

// AWSCredentials are the base credentials that call STS; secrets only by env indirection.
type AWSCredentials struct {
	AccessKeyIDEnv     string `yaml:"access_key_id_env"`
	SecretAccessKeyEnv string `yaml:"secret_access_key_env"`
}

// Policy is one rule; the first rule that matches decides.
type Policy struct {
	Name      string    `yaml:"name"`
	Clouds    []string  `yaml:"clouds"`
	Targets   []string  `yaml:"targets"`
	Actions   []string  `yaml:"actions"`
	Risk      []string  `yaml:"risk"`
	Groups    []string  `yaml:"groups"`
	When      string    `yaml:"when"`
	Decision  string    `yaml:"decision"`
	Message   string    `yaml:"message"`
	Approvers Approvers `yaml:"approvers"`
	Grant     Grant     `yaml:"grant"`
}

// Approvers says who may approve a held call and how many must.
type Approvers struct {
	Groups    []string `yaml:"groups"`
	Count     int      `yaml:"count"`
	AllowSelf bool     `yaml:"allow_self"`
}

// Grant is what an approval creates.
type Grant struct {
	TTL   Duration `yaml:"ttl"`
	Uses  int      `yaml:"uses"`
	Scope string   `yaml:"scope"` // "resource" (default) or "action"
}

// RiskRule overrides the default tier for actions matching a pattern.
type RiskRule struct {
	Actions []string `yaml:"actions"`
	Tier    string   `yaml:"tier"`
}

// Hold tunes how long held calls wait.
type Hold struct {
	Wait       Duration `yaml:"wait"`
	RequestTTL Duration `yaml:"request_ttl"`
}

// Audit lists the sinks.
type Audit struct {
	File         string       `yaml:"file"`
	FileMaxBytes int64        `yaml:"file_max_bytes"`
	RedisStream  string       `yaml:"redis_stream"`
	StreamMaxLen int64        `yaml:"stream_max_len"`
	Stdout       bool         `yaml:"stdout"`
	Webhook      AuditWebhook `yaml:"webhook"`
	// Readers are the groups that may read the audit API; empty means every signed-in user.
	Readers []string `yaml:"readers"`
	// Fsync makes the file sink fsync after each event (power-loss durability; kill -9 is
	// covered without it because written data is in the OS page cache).
	Fsync bool `yaml:"fsync"`
}

// AuditWebhook ships batches of events to a SIEM.
type AuditWebhook struct {
	URL       string   `yaml:"url"`
	TokenEnv  string   `yaml:"token_env"`
	BatchSize int      `yaml:"batch_size"`
	Interval  Duration `yaml:"interval"`
	MaxBuffer int      `yaml:"max_buffer"`
}

// Notify is one notification webhook.
type Notify struct {
	Name   string `yaml:"name"`
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	Format string `yaml:"format"` // generic (default) or slack
}

// Credentials tunes the credentials Airlock issues to clients.
type Credentials struct {
	// SigningKeyEnv names the env var holding base64 of 32 bytes from which client credential
	// secrets are derived. Absent: a random key per process (clients must re-fetch after restart).
	SigningKeyEnv string   `yaml:"signing_key_env"`
	TTL           Duration `yaml:"ttl"`
}

// ForwardProxy tunes HTTPS_PROXY mode.
type ForwardProxy struct {
	Enabled    bool   `yaml:"enabled"`
	Listen     string `yaml:"listen"`
	OtherHosts string `yaml:"other_hosts"` // refuse (default) or passthrough
}

// Log selects the log format.
type Log struct {
	Format string `yaml:"format"` // json (default with a config file) or text
	Level  string `yaml:"level"`
}

// Duration is a time.Duration written as "25s", "1h".
type Duration time.Duration

// UnmarshalYAML parses Go duration strings, plus "d" for days.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if s == "" {
		*d = 0
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration accepts time.ParseDuration syntax plus a whole-day suffix ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		var days int
		if _, err := fmt.Sscanf(s, "%dd", &days); err == nil && fmt.Sprintf("%dd", days) == s {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 25s, 15m, 1h, 30d)", s)
	}
	return v, nil
}

// Load reads a config file; path "" gives the development defaults.
func Load(path string) (*Config, error) {
	if path == "" {
		c := &Config{}
		c.SetDefaults()
		return c, c.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(data, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly (unknown keys are errors with their line), applies defaults and
// validates.
func Parse(data []byte) (*Config, error) { return parse(data, "(inline)") }

func parse(data []byte, source string) (*Config, error) {
	c := &Config{Source: source}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// SetDefaults fills every unset value. Environment overrides (AIRLOCK_LISTEN,
// AIRLOCK_REDIS_URL) are applied here too, so that they win over the file.
func (c *Config) SetDefaults() {
	if v := os.Getenv("AIRLOCK_LISTEN"); v != "" {
		c.Listen = v
	}
	if v := os.Getenv("AIRLOCK_REDIS_URL"); v != "" {
		c.Redis.URL = v
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLS.CertFile != "" {
			scheme = "https"
		}
		c.PublicURL = scheme + "://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Redis.KeyPrefix == "" {
		c.Redis.KeyPrefix = "airlock:"
	}
	if c.OIDC.GroupsClaim == "" {
		c.OIDC.GroupsClaim = "groups"
	}
	if len(c.OIDC.Scopes) == 0 {
		c.OIDC.Scopes = []string{"openid", "email", "profile", "groups", "offline_access"}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Cloud == "aws" && t.Duration == 0 {
			t.Duration = Duration(15 * time.Minute)
		}
		if t.Cloud == "gcp" && len(t.Scopes) == 0 {
			t.Scopes = []string{"https://www.googleapis.com/auth/cloud-platform"}
		}
		if t.Cloud == "gcp" && t.Duration == 0 {
			t.Duration = Duration(15 * time.Minute)
		}
	}
	for i := range c.Policies {
		p := &c.Policies[i]
		if p.Decision == "hold" {
			if p.Approvers.Count == 0 {
				p.Approvers.Count = 1
			}
			if p.Grant.TTL == 0 {
				p.Grant.TTL = Duration(time.Hour)
			}
			if p.Grant.Uses == 0 {
				p.Grant.Uses = 1
			}
			if p.Grant.Scope == "" {
				p.Grant.Scope = "resource"
			}
		}
	}
	if c.Hold.Wait == 0 {
		c.Hold.Wait = Duration(25 * time.Second)
	}
	if c.Hold.RequestTTL == 0 {
		c.Hold.RequestTTL = Duration(24 * time.Hour)
	}
	if c.Audit.RedisStream == "" && c.Redis.URL != "" {
		c.Audit.RedisStream = "airlock:audit"
	}
	if c.Audit.FileMaxBytes == 0 {
		c.Audit.FileMaxBytes = 100 << 20
	}
	if c.Creds.TTL == 0 {
		c.Creds.TTL = Duration(time.Hour)
	}
	if c.OIDC.SessionTTL == 0 {
		c.OIDC.SessionTTL = Duration(12 * time.Hour)
	}
	if c.OIDC.GroupsRefresh == 0 {
		c.OIDC.GroupsRefresh = Duration(5 * time.Minute)
	}
	if c.Forward.OtherHosts == "" {
		c.Forward.OtherHosts = "refuse"
	}
	if c.Forward.Enabled && c.Forward.Listen == "" {
		c.Forward.Listen = "127.0.0.1:8443"
	}
	if c.Log.Format == "" {
		if c.Source == "" {
			c.Log.Format = "text"
		} else {
			c.Log.Format = "json"
		}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

// Validate returns every problem at once, each prefixed with its path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("public_url", "must be an absolute http(s) URL, got %q", c.PublicURL)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	if c.OIDC.Issuer != "" {
		if c.OIDC.ClientID == "" {
			bad("oidc.client_id", "required when oidc.issuer is set")
		}
	}
	if d := c.OIDC.SessionTTL.D(); d != 0 && (d < 5*time.Minute || d > 24*time.Hour) {
		bad("oidc.session_ttl", "must be between 5m and 24h, got %s", d)
	}
	if d := c.OIDC.GroupsRefresh.D(); d != 0 {
		if d < time.Minute || d > time.Hour {
			bad("oidc.groups_refresh", "must be between 1m and 1h, got %s", d)
		} else if ttl := c.OIDC.SessionTTL.D(); ttl != 0 && d > ttl {
			bad("oidc.groups_refresh", "must not exceed oidc.session_ttl (%s), got %s", ttl, d)
		}
	}
	if c.Redis.URL != "" {
		if _, err := url.Parse(c.Redis.URL); err != nil || !strings.HasPrefix(c.Redis.URL, "redis") {
			bad("redis.url", "must be a redis:// or rediss:// URL")
		}
	}
	seen := map[string]bool{}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if t.Name == "" {
			bad(p+".name", "required")
		} else if seen[t.Name] {
			bad(p+".name", "duplicate target %q", t.Name)
		}
		seen[t.Name] = true
		switch t.Cloud {
		case "aws":
			if t.RoleARN == "" {
				bad(p+".role_arn", "required for an aws target")
			} else if !strings.HasPrefix(t.RoleARN, "arn:") {
				bad(p+".role_arn", "must be an ARN (arn:aws:iam::ACCOUNT:role/NAME)")
			}
			if d := t.Duration.D(); d < 15*time.Minute || d > 12*time.Hour {
				bad(p+".duration", "must be between 15m and 12h (STS limits)")
			}
			for _, k := range []struct{ key, v string }{{"endpoint", t.Endpoint}, {"sts_endpoint", t.STSEndpoint}} {
				if k.v == "" {
					continue
				}
				if u, err := url.Parse(k.v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
					bad(p+"."+k.key, "must be an absolute http(s) URL")
				}
			}
			if b := t.BaseCredentials; b != nil && (b.AccessKeyIDEnv == "" || b.SecretAccessKeyEnv == "") {
				bad(p+".base_credentials", "access_key_id_env and secret_access_key_env go together")
			}
		case "gcp":
			if t.ServiceAccount == "" {
				bad(p+".service_account", "required for a gcp target")
			}
		case "azure":
			if t.TenantID == "" {
				bad(p+".tenant_id", "required for an azure target")
			}
			if t.SubscriptionID == "" {
				bad(p+".subscription_id", "required for an azure target")
			}
		case "":
			bad(p+".cloud", "required (aws, gcp or azure)")
		default:
			bad(p+".cloud", "unknown cloud %q (aws, gcp or azure)", t.Cloud)
		}
	}
	names := map[string]bool{}
	for i, p := range c.Policies {
		path := fmt.Sprintf("policies[%d]", i)
		if p.Name == "" {
			bad(path+".name", "required")
		} else if names[p.Name] {
			bad(path+".name", "duplicate policy %q", p.Name)
		}
		names[p.Name] = true
		switch p.Decision {
		case "allow", "deny", "hold":
		case "":
			bad(path+".decision", "required (allow, hold or deny)")
		default:
			bad(path+".decision", "unknown decision %q (allow, hold or deny)", p.Decision)
		}
		for _, t := range p.Targets {
			if !seen[t] {
				bad(path+".targets", "unknown target %q", t)
			}
		}
		for _, r := range p.Risk {
			if !validTier(r) {
				bad(path+".risk", "unknown tier %q (read, write, destructive, privilege)", r)
			}
		}
		for _, cl := range p.Clouds {
			if cl != "aws" && cl != "gcp" && cl != "azure" {
				bad(path+".clouds", "unknown cloud %q", cl)
			}
		}
		if p.Decision == "hold" {
			if len(p.Approvers.Groups) == 0 {
				bad(path+".approvers.groups", "required for a hold rule")
			}
			if p.Approvers.Count < 1 {
				bad(path+".approvers.count", "must be at least 1")
			}
			if p.Grant.Uses < 1 {
				bad(path+".grant.uses", "must be at least 1")
			}
			if p.Grant.Scope != "resource" && p.Grant.Scope != "action" {
				bad(path+".grant.scope", "must be resource or action")
			}
		}
	}
	for i, r := range c.Risk {
		if !validTier(r.Tier) {
			bad(fmt.Sprintf("risk[%d].tier", i), "unknown tier %q (read, write, destructive, privilege)", r.Tier)
		}
		if len(r.Actions) == 0 {
			bad(fmt.Sprintf("risk[%d].actions", i), "required")
		}
	}
	if c.Hold.Wait.D() < 0 || c.Hold.Wait.D() > 5*time.Minute {
		bad("hold.wait", "must be between 0 and 5m (SDK read timeouts are about 60s)")
	}
	for i, n := range c.Notify {
		if n.URL == "" && n.URLEnv == "" {
			bad(fmt.Sprintf("notify[%d].url", i), "url or url_env required")
		}
		if n.Format != "" && n.Format != "generic" && n.Format != "slack" {
			bad(fmt.Sprintf("notify[%d].format", i), "must be generic or slack")
		}
	}
	if c.Forward.OtherHosts != "refuse" && c.Forward.OtherHosts != "passthrough" {
		bad("forward_proxy.other_hosts", "must be refuse or passthrough")
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "must be json or text")
	}
	return errors.Join(errs...)
}

func validTier(s string) bool {
	switch s {
	case "read", "write", "destructive", "privilege":
		return true
	}
	return false
}

// Target returns the named target.
func (c *Config) Target(name string) (*Target, bool) {
	for i := range c.Targets {
		if c.Targets[i].Name == name {
			return &c.Targets[i], true
		}
	}
	return nil, false
}

// Secret reads a secret through env indirection; it never appears in config files.
func Secret(envName string) (string, error) {
	if envName == "" {
		return "", nil
	}
	v, ok := os.LookupEnv(envName)
	if !ok || v == "" {
		return "", fmt.Errorf("environment variable %s is not set", envName)
	}
	return v, nil
}

// Key32 reads a base64-encoded 32-byte key through env indirection.
func Key32(envName string) ([]byte, error) {
	v, err := Secret(envName)
	if err != nil {
		return nil, err
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("environment variable %s must hold base64 of 32 bytes (openssl rand -base64 32)", envName)
	}
	return k, nil
}
