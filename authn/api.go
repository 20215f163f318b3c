package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/store"
)

// ErrUnauthenticated means the request carried no usable credential. The wrapped error, when
// there is one, says why (errors.Is(err, ErrTokenExpired) and so on).
var ErrUnauthenticated = errors.New("authentication required")

// ErrCSRF means a state-changing request authenticated by the session cookie failed the CSRF
// check (missing or wrong token, or a cross-site origin).
var ErrCSRF = errors.New("CSRF check failed")

// ErrAuditUnavailable means a login could not be recorded, so it was refused.
var ErrAuditUnavailable = errors.New("cannot record the login in the audit log")

// IDTokenVerifier checks an ID token; *OIDC satisfies it.
type IDTokenVerifier interface {
	VerifyIDToken(ctx context.Context, raw string) (Identity, error)
}

// APIAuthenticatorConfig wires the API's ways in. Every field is optional; a missing one turns
// that way in off.
type APIAuthenticatorConfig struct {
	// Verifier checks "Authorization: Bearer <ID token>".
	Verifier IDTokenVerifier
	// Sessions accepts the browser session cookie (with CSRF checks on unsafe methods).
	Sessions *Sessions
	// Dev enables the development bootstrap token when BootstrapTokenEnv is set.
	Dev config.Dev
	// Store and Auditor record a "login" event the first time each ID token is presented, which
	// is how CLI logins (made directly against the provider) reach the audit log.
	Store   store.Store
	Auditor Auditor
	Logger  *slog.Logger
	Now     func() time.Time
}

// APIAuthenticator says who is calling the JSON API.
type APIAuthenticator struct {
	cfg               APIAuthenticatorConfig
	bootstrapHash     []byte // sha256 of the bootstrap token; nil when disabled
	bootstrapIdentity Identity
}

// BootstrapEnabled reports whether the config turns on the development bootstrap token. The
// server logs a warning at start when it does.
func BootstrapEnabled(dev config.Dev) bool { return dev.BootstrapTokenEnv != "" }

// NewAPIAuthenticator checks the config and reads the bootstrap token when it is enabled.
func NewAPIAuthenticator(cfg APIAuthenticatorConfig) (*APIAuthenticator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &APIAuthenticator{cfg: cfg}
	if BootstrapEnabled(cfg.Dev) {
		tok, err := config.Secret(cfg.Dev.BootstrapTokenEnv)
		if err != nil {
			return nil, fmt.Errorf("dev.bootstrap_token_env: %w", err)
		}
		if len(tok) < 16 {
			return nil, fmt.Errorf("dev.bootstrap_token_env: the token in %s is shorter than 16 characters", cfg.Dev.BootstrapTokenEnv)
		}
		b := cfg.Dev.BootstrapIdentity
		if b.Subject == "" && b.Email == "" {
			return nil, errors.New("dev.bootstrap_identity: subject or email required when bootstrap_token_env is set")
		}
		sum := sha256.Sum256([]byte(tok))
		a.bootstrapHash = sum[:]
		a.bootstrapIdentity = Identity{Subject: b.Subject, Email: b.Email, Groups: slices.Clone(b.Groups)}
		if a.bootstrapIdentity.Subject == "" {
			a.bootstrapIdentity.Subject = b.Email
		}
	}
	return a, nil
}

// BootstrapEnabled reports whether the development bootstrap token is accepted.
func (a *APIAuthenticator) BootstrapEnabled() bool { return a.bootstrapHash != nil }

// Authenticate returns the caller's identity from, in order: an Authorization bearer token
// (the bootstrap token when enabled, else an OIDC ID token), or the browser session cookie.
// Failures wrap ErrUnauthenticated, except ErrCSRF and ErrAuditUnavailable.
func (a *APIAuthenticator) Authenticate(r *http.Request) (Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, raw, ok := strings.Cut(h, " ")
		raw = strings.TrimSpace(raw)
		if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
			return Identity{}, fmt.Errorf("%w: Authorization header must be \"Bearer <ID token>\"", ErrUnauthenticated)
		}
		return a.bearer(r, raw)
	}
	if a.cfg.Sessions != nil {
		if id, ok := a.cfg.Sessions.Identity(r); ok {
			if !safeMethod(r.Method) {
				if err := a.cfg.Sessions.VerifyCSRF(r); err != nil {
					return Identity{}, err
				}
			}
			return id, nil
		}
	}
	return Identity{}, fmt.Errorf("%w: no bearer token or session; run airlock login", ErrUnauthenticated)
}

func (a *APIAuthenticator) bearer(r *http.Request, raw string) (Identity, error) {
	if a.bootstrapHash != nil {
		sum := sha256.Sum256([]byte(raw))
		if subtle.ConstantTimeCompare(sum[:], a.bootstrapHash) == 1 {
			return a.bootstrapIdentity, nil
		}
	}
	if a.cfg.Verifier == nil {
		return Identity{}, fmt.Errorf("%w: bearer tokens are not accepted (no oidc issuer configured)", ErrUnauthenticated)
	}
	id, err := a.cfg.Verifier.VerifyIDToken(r.Context(), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if err := a.recordFirstUse(r, raw, id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// recordFirstUse writes a login event the first time an ID token is seen (across replicas,
// through the store). A token is named in the store only by a hash.
func (a *APIAuthenticator) recordFirstUse(r *http.Request, raw string, id Identity) error {
	if a.cfg.Store == nil || a.cfg.Auditor == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(raw))
	key := "authn:token-seen:" + hex.EncodeToString(sum[:16])
	ttl := id.ExpiresAt.Sub(a.cfg.Now())
	if ttl < time.Minute {
		ttl = time.Minute
	}
	first, err := a.cfg.Store.SetNX(r.Context(), key, []byte{1}, ttl)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	if !first {
		return nil
	}
	if err := a.cfg.Auditor.Record(r.Context(), loginEvent(r, id, StepTokenFirstUse, a.cfg.Now())); err != nil {
		// Forget the token so that the next call tries to record it again.
		_ = a.cfg.Store.Delete(context.WithoutCancel(r.Context()), key)
		a.cfg.Logger.Error("record login", "err", err, "identity", id)
		return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	return nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity that Require or RequireLogin put in the context.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Require lets only authenticated requests through, with the identity in the context
// (IdentityFrom). Others get a JSON error: 401, 403 for CSRF, 503 when the audit log is down.
func (a *APIAuthenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if err != nil {
			WriteAuthError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// WriteAuthError writes an authentication failure as JSON {"error": "..."} with its status.
func WriteAuthError(w http.ResponseWriter, err error) {
	status := http.StatusUnauthorized
	switch {
	case errors.Is(err, ErrCSRF):
		status = http.StatusForbidden
	case errors.Is(err, ErrAuditUnavailable):
		status = http.StatusServiceUnavailable
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock", error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// AuthConfig is what GET /api/v1/auth/config returns: all that `airlock login --server URL`
// needs to log in against the company's provider.
type AuthConfig struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"` // the CLI's public client
	Scopes   []string `json:"scopes"`
}

// AuthConfigHandler serves GET /api/v1/auth/config (no authentication). cliClientID "" means
// the first extra audience, else airlock-cli; it must be an audience the API accepts.
func AuthConfigHandler(o *OIDC, cliClientID string) http.Handler {
	if cliClientID == "" {
		cliClientID = CLIClientIDDefault
		if len(o.cfg.ExtraAudiences) > 0 {
			cliClientID = o.cfg.ExtraAudiences[0]
		}
	}
	body, _ := json.Marshal(AuthConfig{Issuer: o.Issuer(), ClientID: cliClientID, Scopes: o.Scopes()})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}
