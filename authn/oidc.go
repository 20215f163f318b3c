package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/airlockhq/airlock/config"
)

// OIDCConfig configures the company's OpenID Connect provider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes requested at login; default openid, email, profile, groups, offline_access.
	Scopes []string
	// GroupsClaim names the claim that lists the user's groups; default "groups".
	GroupsClaim string
	// GroupsFallback are further claims tried in order when GroupsClaim is absent: plain names
	// ("cognito:groups", "roles") or dotted paths into nested objects ("realm_access.roles").
	GroupsFallback []string
	// AllowedDomains, when set, restricts logins to verified emails in these domains.
	AllowedDomains []string
	// ExtraAudiences are further client IDs (e.g. the CLI's public client) whose ID tokens are
	// accepted as well as ClientID's.
	ExtraAudiences []string
	// RedirectURL is the browser login callback (PUBLIC_URL/auth/callback).
	RedirectURL string
	// HTTPClient reaches the provider; default a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for expiry checks; default time.Now.
	Now func() time.Time
}

// CLIClientIDDefault is the public OIDC client the CLI uses unless configured otherwise.
const CLIClientIDDefault = "airlock-cli"

// OIDCConfigFrom builds an OIDCConfig from the config file's oidc section, reading the client
// secret through its env indirection. When extra_audiences is empty, the default CLI client
// (airlock-cli) is accepted too, so that `airlock login` tokens work without further config.
func OIDCConfigFrom(c config.OIDC, publicURL string) (OIDCConfig, error) {
	secret, err := config.Secret(c.ClientSecretEnv)
	if err != nil {
		return OIDCConfig{}, fmt.Errorf("oidc.client_secret_env: %w", err)
	}
	extra := slices.Clone(c.ExtraAudiences)
	if len(extra) == 0 {
		extra = []string{CLIClientIDDefault}
	}
	return OIDCConfig{
		Issuer:         c.Issuer,
		ClientID:       c.ClientID,
		ClientSecret:   secret,
		Scopes:         slices.Clone(c.Scopes),
		GroupsClaim:    c.GroupsClaim,
		GroupsFallback: slices.Clone(c.GroupsClaimFallback),
		AllowedDomains: slices.Clone(c.AllowedDomains),
		ExtraAudiences: extra,
		RedirectURL:    strings.TrimRight(publicURL, "/") + "/auth/callback",
	}, nil
}

// CheckAndSetDefaults fills defaults and refuses what is missing.
func (c *OIDCConfig) CheckAndSetDefaults() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("oidc: issuer is required"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("oidc: client_id is required"))
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "email", "profile", "groups", oidc.ScopeOfflineAccess}
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for i, d := range c.AllowedDomains {
		c.AllowedDomains[i] = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
	}
	return errors.Join(errs...)
}

// OIDC verifies ID tokens from the company's provider and runs its OAuth 2.0 flows. Discovery
// happens once at start; signing keys are fetched on demand and refetched when a token names a
// key ID not seen before, so the provider can rotate keys without restarting Airlock.
type OIDC struct {
	cfg       OIDCConfig
	provider  *oidc.Provider
	verifier  *oidc.IDTokenVerifier
	endpoints providerEndpoints
}

// providerEndpoints are the optional discovery fields go-oidc does not surface.
type providerEndpoints struct {
	EndSession string `json:"end_session_endpoint"`
	Revocation string `json:"revocation_endpoint"`
}

// NewOIDC discovers the provider. It fails when the issuer is unreachable or its discovery
// document names another issuer.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery at %s: %w", cfg.Issuer, err)
	}
	o := &OIDC{cfg: cfg, provider: provider}
	if err := provider.Claims(&o.endpoints); err != nil {
		return nil, fmt.Errorf("oidc discovery at %s: %w", cfg.Issuer, err)
	}
	// Audience and expiry are checked by VerifyIDToken itself: several audiences are accepted
	// and the clock is injected, and each failure gets its own typed error.
	o.verifier = provider.Verifier(&oidc.Config{SkipClientIDCheck: true, SkipExpiryCheck: true})
	return o, nil
}

// Issuer is the provider's issuer URL.
func (o *OIDC) Issuer() string { return o.cfg.Issuer }

// ClientID is the confidential client that browser logins use.
func (o *OIDC) ClientID() string { return o.cfg.ClientID }

// Scopes are the scopes requested at login.
func (o *OIDC) Scopes() []string { return slices.Clone(o.cfg.Scopes) }

// EndSessionURL is the provider's RP-initiated logout endpoint, or "" when it has none.
func (o *OIDC) EndSessionURL() string { return o.endpoints.EndSession }

// OAuth2Config is the authorization-code configuration for browser logins.
func (o *OIDC) OAuth2Config() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret,
		Endpoint:     o.provider.Endpoint(),
		RedirectURL:  o.cfg.RedirectURL,
		Scopes:       slices.Clone(o.cfg.Scopes),
	}
}

// httpContext makes x/oauth2 and go-oidc use the configured client.
func (o *OIDC) httpContext(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, o.cfg.HTTPClient), oauth2.HTTPClient, o.cfg.HTTPClient)
}

// Sentinel errors of ID-token verification; a *TokenError wraps exactly one of them.
var (
	ErrTokenMalformed    = errors.New("malformed ID token")
	ErrTokenExpired      = errors.New("ID token expired")
	ErrTokenNotYetValid  = errors.New("ID token not valid yet")
	ErrWrongAudience     = errors.New("ID token issued for another client")
	ErrWrongIssuer       = errors.New("ID token issued by another provider")
	ErrBadSignature      = errors.New("token signed by an unknown key")
	ErrEmailNotVerified  = errors.New("email address not verified")
	ErrDomainNotAllowed  = errors.New("email domain not allowed")
	ErrNonceMismatch     = errors.New("ID token nonce does not match the login")
	ErrTokenMissingClaim = errors.New("ID token lacks a required claim")
)

// TokenError says why an ID token was refused. Its message never contains the token.
type TokenError struct {
	Kind   error  // one of the Err* sentinels above
	Detail string // e.g. "expired at 2026-01-02T03:04:05Z"
}

func (e *TokenError) Error() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

func (e *TokenError) Unwrap() error { return e.Kind }

func tokenErr(kind error, format string, args ...any) error {
	return &TokenError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// VerifyIDToken checks an ID token's signature, issuer, audience (the client ID or one of the
// extra audiences), expiry, email verification and domain, and returns who it names.
func (o *OIDC) VerifyIDToken(ctx context.Context, raw string) (Identity, error) {
	id, _, err := o.verify(ctx, raw)
	return id, err
}

// verify is VerifyIDToken that also returns the nonce, for the browser login callback.
func (o *OIDC) verify(ctx context.Context, raw string) (Identity, string, error) {
	// The unverified issuer is read first only to say "wrong issuer" rather than "unknown key"
	// for a token from another provider; nothing unverified is trusted.
	unverified, err := unverifiedClaims(raw)
	if err != nil {
		return Identity{}, "", err
	}
	if unverified.Issuer != o.cfg.Issuer {
		return Identity{}, "", tokenErr(ErrWrongIssuer, "issuer %q, expected %q", unverified.Issuer, o.cfg.Issuer)
	}
	tok, err := o.verifier.Verify(o.httpContext(ctx), raw)
	if err != nil {
		// The issuer matched, so what remains is the signature (or a token that go-oidc
		// cannot parse, which was not signed by the provider either).
		return Identity{}, "", tokenErr(ErrBadSignature, "signature does not verify against the provider's keys")
	}
	now := o.cfg.Now()
	if tok.Expiry.IsZero() {
		return Identity{}, "", tokenErr(ErrTokenMissingClaim, "no exp claim")
	}
	if !now.Before(tok.Expiry) {
		return Identity{}, "", tokenErr(ErrTokenExpired, "expired at %s; log in again", tok.Expiry.UTC().Format(time.RFC3339))
	}
	if !o.audienceAllowed(tok.Audience) {
		return Identity{}, "", tokenErr(ErrWrongAudience, "audience %q, expected %q", tok.Audience, o.audiences())
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, "", tokenErr(ErrTokenMalformed, "claims: %v", err)
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(5*time.Minute).Before(time.Unix(int64(nbf), 0)) {
		return Identity{}, "", tokenErr(ErrTokenNotYetValid, "not before %s", time.Unix(int64(nbf), 0).UTC().Format(time.RFC3339))
	}
	if tok.Subject == "" {
		return Identity{}, "", tokenErr(ErrTokenMissingClaim, "no sub claim")
	}
	id := Identity{Subject: tok.Subject, ExpiresAt: tok.Expiry}
	id.Email, _ = claims["email"].(string)
	if v, present := claims["email_verified"]; present && id.Email != "" && !truthy(v) {
		return Identity{}, "", tokenErr(ErrEmailNotVerified, "the provider says %s is not verified", id.Email)
	}
	if len(o.cfg.AllowedDomains) > 0 {
		domain := ""
		if at := strings.LastIndexByte(id.Email, '@'); at >= 0 {
			domain = strings.ToLower(id.Email[at+1:])
		}
		if domain == "" || !slices.Contains(o.cfg.AllowedDomains, domain) {
			return Identity{}, "", tokenErr(ErrDomainNotAllowed, "email %q is not in %v", id.Email, o.cfg.AllowedDomains)
		}
	}
	id.Groups = groupsFrom(claims, append([]string{o.cfg.GroupsClaim}, o.cfg.GroupsFallback...))
	return id, tok.Nonce, nil
}

func (o *OIDC) audiences() []string {
	return append([]string{o.cfg.ClientID}, o.cfg.ExtraAudiences...)
}

func (o *OIDC) audienceAllowed(aud []string) bool {
	for _, a := range o.audiences() {
		if slices.Contains(aud, a) {
			return true
		}
	}
	return false
}

// truthy reads email_verified, which some providers send as the string "true".
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

type jwtClaimsPeek struct {
	Issuer string `json:"iss"`
}

// unverifiedClaims decodes a JWT's payload without checking anything.
func unverifiedClaims(raw string) (jwtClaimsPeek, error) {
	var c jwtClaimsPeek
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return c, tokenErr(ErrTokenMalformed, "not a JWT (want 3 dot-separated parts, got %d)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, tokenErr(ErrTokenMalformed, "payload is not base64url")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, tokenErr(ErrTokenMalformed, "payload is not a JSON object")
	}
	return c, nil
}

// groupsFrom returns the first of the named claims that is present. A name is tried as a
// top-level claim first ("cognito:groups"), then as a dotted path ("realm_access.roles").
func groupsFrom(claims map[string]any, names []string) []string {
	for _, name := range names {
		if name == "" {
			continue
		}
		v, ok := claims[name]
		if !ok && strings.Contains(name, ".") {
			v, ok = claimPath(claims, strings.Split(name, "."))
		}
		if !ok {
			continue
		}
		switch g := v.(type) {
		case []any:
			out := make([]string, 0, len(g))
			for _, e := range g {
				if s, ok := e.(string); ok && s != "" {
					out = append(out, s)
				}
			}
			return out
		case string:
			if g == "" {
				return nil
			}
			return []string{g}
		}
	}
	return nil
}

func claimPath(claims map[string]any, path []string) (any, bool) {
	var cur any = claims
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}
