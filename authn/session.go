package authn

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/airlockhq/airlock/store"
)

// Browser sessions for approvers and auditors.
//
// A session is a record in the store under the hash of a random session ID; the browser holds
// only the ID, in the airlock_session cookie. Logging out deletes the record, so a copied cookie
// stops working everywhere at once, on every replica.
//
// Group changes at the provider reach a session within GroupsRefresh (default 5m): the login
// keeps the provider's refresh token in the record, sealed with AES-GCM, and the first request
// that finds the session's groups older than that refreshes them with it (session_refresh.go).
// A refusal by the provider (user removed or disabled, grant revoked) ends the session; a
// provider that cannot be reached leaves the session unusable for that request but kept. A
// session whose provider gave no refresh token needs a new login once its groups are older than
// GroupsRefresh. Refreshing never extends a session: it lives for at most TTL (default 12h).
// API calls with bearer ID tokens are bounded by the token's own lifetime instead.

// Cookie names.
const (
	SessionCookie    = "airlock_session"
	loginStateCookie = "airlock_login"
)

// Routes served by Sessions.Handler.
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

const loginStateTTL = 10 * time.Minute

// SessionsConfig configures browser sessions.
type SessionsConfig struct {
	OIDC  *OIDC       // required
	Store store.Store // required
	// PublicURL is where browsers reach Airlock; cookies are Secure when it is https, and
	// state-changing requests must come from its origin.
	PublicURL string
	// TTL is how long a session lasts; default 12h. Refreshing groups never extends it.
	TTL time.Duration
	// GroupsRefresh is how old a session's groups may get before the next request refreshes them
	// at the provider; default 5m.
	GroupsRefresh time.Duration
	// Key signs login-state cookies and CSRF tokens. Empty: a random key is created once in the
	// store and shared by every replica.
	Key []byte
	// TokenKey, when set, is the key from which the one that seals the provider's refresh tokens
	// in session records is derived (pass the store's encryption key, so that a copy of the store
	// alone does not reveal them). Empty: derived from Key, which then may live in the store.
	TokenKey []byte
	// Auditor records every login and logout; a login that cannot be recorded is refused.
	Auditor Auditor
	Logger  *slog.Logger
	Now     func() time.Time
}

// Sessions runs the browser login and knows who holds a session cookie.
type Sessions struct {
	cfg      SessionsConfig
	oauth    *oauth2.Config
	secure   bool
	origin   string // scheme://host of PublicURL
	stateKey []byte
	csrfKey  []byte
	tokens   cipher.AEAD // seals refresh tokens in session records
	refresh  refreshFlight
}

// NewSessions checks the config and loads (or creates) the signing key.
func NewSessions(ctx context.Context, cfg SessionsConfig) (*Sessions, error) {
	var errs []error
	if cfg.OIDC == nil {
		errs = append(errs, errors.New("sessions: OIDC is required"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("sessions: Store is required"))
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("sessions: PublicURL must be an absolute http(s) URL, got %q", cfg.PublicURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	if cfg.GroupsRefresh <= 0 {
		cfg.GroupsRefresh = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := cfg.Key
	if len(key) == 0 {
		if key, err = sharedKey(ctx, cfg.Store); err != nil {
			return nil, fmt.Errorf("sessions: signing key: %w", err)
		}
	}
	tokenKey := key
	if len(cfg.TokenKey) > 0 {
		tokenKey = cfg.TokenKey
	}
	tokens, err := newGCM(derive(tokenKey, "airlock session refresh token"))
	if err != nil {
		return nil, fmt.Errorf("sessions: refresh token key: %w", err)
	}
	s := &Sessions{
		cfg:      cfg,
		oauth:    cfg.OIDC.OAuth2Config(),
		secure:   u.Scheme == "https",
		origin:   u.Scheme + "://" + u.Host,
		stateKey: derive(key, "airlock login state"),
		csrfKey:  derive(key, "airlock csrf"),
		tokens:   tokens,
	}
	s.oauth.RedirectURL = strings.TrimRight(cfg.PublicURL, "/") + CallbackPath
	return s, nil
}

// sharedKey returns the session signing key kept in the store, creating it on first use.
func sharedKey(ctx context.Context, st store.Store) ([]byte, error) {
	const name = "authn:session-key"
	if _, err := st.SetNX(ctx, name, randomBytes(32), 0); err != nil {
		return nil, err
	}
	k, err := st.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(k) < 32 {
		return nil, fmt.Errorf("stored key %s is too short", name)
	}
	return k, nil
}

func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

func randomString() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// Handler serves /auth/login, /auth/callback and /auth/logout; mount it at "/auth/".
func (s *Sessions) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, s.login)
	mux.HandleFunc("GET "+CallbackPath, s.callback)
	mux.HandleFunc("POST "+LogoutPath, s.logout)
	return mux
}

// sessionRecord is what the store keeps for a session.
type sessionRecord struct {
	Subject string    `json:"sub"`
	Email   string    `json:"email,omitempty"`
	Groups  []string  `json:"groups,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Checked is when the provider last vouched for Email and Groups (the login, then each
	// refresh); zero in records written before refreshes existed, which then count from Created.
	Checked time.Time `json:"checked,omitzero"`
	// Refresh is the provider's refresh token sealed with AES-GCM (sealRefresh), or empty when
	// the provider gave none.
	Refresh []byte `json:"refresh,omitempty"`
}

func (rec *sessionRecord) identity() Identity {
	return Identity{Subject: rec.Subject, Email: rec.Email, Groups: slices.Clone(rec.Groups), ExpiresAt: rec.Expires}
}

// checked is when the record's groups were last confirmed by the provider.
func (rec *sessionRecord) checked() time.Time {
	if rec.Checked.IsZero() {
		return rec.Created
	}
	return rec.Checked
}

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "authn:session:" + hex.EncodeToString(sum[:])
}

// Identity returns who holds the request's session cookie. When the session's groups are older
// than GroupsRefresh it first refreshes them at the provider (see refreshSession), and says no
// when that is not possible for this request.
func (s *Sessions) Identity(r *http.Request) (Identity, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return Identity{}, false
	}
	key := sessionKey(c.Value)
	rec, ok := s.read(r.Context(), key)
	if !ok {
		return Identity{}, false
	}
	if !s.stale(rec) {
		return rec.identity(), true
	}
	if rec, ok = s.refreshSession(r, key, rec); !ok {
		return Identity{}, false
	}
	return rec.identity(), true
}

// read returns the live session record under key.
func (s *Sessions) read(ctx context.Context, key string) (sessionRecord, bool) {
	var rec sessionRecord
	data, err := s.cfg.Store.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.cfg.Logger.Error("read session", "err", err)
		}
		return rec, false
	}
	if err := json.Unmarshal(data, &rec); err != nil || !s.cfg.Now().Before(rec.Expires) {
		return rec, false
	}
	return rec, true
}

// stale reports whether rec's groups are too old to be trusted without asking the provider.
func (s *Sessions) stale(rec sessionRecord) bool {
	return !s.cfg.Now().Before(rec.checked().Add(s.cfg.GroupsRefresh))
}

// RequireLogin lets through requests with a session, the identity in the context
// (IdentityFrom). Page loads without one are sent to the login, which returns to the same page.
func (s *Sessions) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.Identity(r)
		if !ok {
			if !safeMethod(r.Method) {
				http.Error(w, "login required", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// loginState travels in the signed, short-lived airlock_login cookie from /auth/login to
// /auth/callback.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
	Expires  int64  `json:"exp"`
}

func (s *Sessions) login(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if _, ok := s.Identity(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	st := loginState{
		State:    randomString(),
		Nonce:    randomString(),
		Verifier: oauth2.GenerateVerifier(),
		Next:     next,
		Expires:  s.cfg.Now().Add(loginStateTTL).Unix(),
	}
	http.SetCookie(w, s.cookie(loginStateCookie, s.sign(st), "/auth/", loginStateTTL))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

func (s *Sessions) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.cfg.Logger.Warn("login refused by the provider", "error", e, "description", q.Get("error_description"))
		http.Error(w, "login failed at the identity provider: "+e, http.StatusForbidden)
		return
	}
	st, ok := s.readState(r)
	if !ok || subtle.ConstantTimeCompare([]byte(st.State), []byte(q.Get("state"))) != 1 {
		http.Error(w, "login expired or started in another browser: start again at "+LoginPath, http.StatusBadRequest)
		return
	}
	http.SetCookie(w, s.cookie(loginStateCookie, "", "/auth/", -1))
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := s.oauth.Exchange(s.cfg.OIDC.httpContext(ctx), q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.cfg.Logger.Warn("login code exchange failed", "err", err)
		http.Error(w, "login failed: the identity provider refused the code", http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		http.Error(w, "login failed: the identity provider returned no ID token", http.StatusBadGateway)
		return
	}
	id, nonce, err := s.cfg.OIDC.verify(ctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(nonce), []byte(st.Nonce)) != 1 {
		err = &TokenError{Kind: ErrNonceMismatch}
	}
	if err != nil {
		s.cfg.Logger.Warn("login refused", "err", err)
		http.Error(w, "login refused: "+err.Error(), http.StatusForbidden)
		return
	}
	if err := s.record(r, id, StepBrowserLogin); err != nil {
		http.Error(w, "login refused: "+ErrAuditUnavailable.Error(), http.StatusServiceUnavailable)
		return
	}
	sid, err := s.startSession(r.Context(), id, tok.RefreshToken)
	if err != nil {
		s.cfg.Logger.Error("create session", "err", err)
		http.Error(w, "login failed: cannot store the session", http.StatusServiceUnavailable)
		return
	}
	s.cfg.Logger.Info("browser login", "identity", id)
	http.SetCookie(w, s.cookie(SessionCookie, sid, "/", s.cfg.TTL))
	http.Redirect(w, r, localPath(st.Next), http.StatusSeeOther)
}

// create stores a new session for id without a refresh token, as after a login at a provider
// that gives none, and returns the session ID for the cookie.
func (s *Sessions) create(ctx context.Context, id Identity) (string, error) {
	return s.startSession(ctx, id, "")
}

// startSession stores a new session for id, keeping the provider's refresh token (if any)
// sealed, and returns the session ID for the cookie.
func (s *Sessions) startSession(ctx context.Context, id Identity, refreshToken string) (string, error) {
	now := s.cfg.Now()
	sid := randomString()
	key := sessionKey(sid)
	rec := sessionRecord{Subject: id.Subject, Email: id.Email, Groups: slices.Clone(id.Groups),
		Created: now.UTC(), Expires: now.Add(s.cfg.TTL).UTC(), Checked: now.UTC()}
	if refreshToken != "" {
		rec.Refresh = s.sealRefresh(key, refreshToken)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if err := s.cfg.Store.Set(ctx, key, data, s.cfg.TTL); err != nil {
		return "", err
	}
	return sid, nil
}

func (s *Sessions) logout(w http.ResponseWriter, r *http.Request) {
	// Without a live session there is nothing to protect: just clear the cookie.
	if id, ok := s.Identity(r); ok {
		if err := s.VerifyCSRF(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_ = s.record(r, id, StepLogout)
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.cfg.Store.Delete(r.Context(), sessionKey(c.Value)); err != nil {
			s.cfg.Logger.Error("delete session", "err", err)
			http.Error(w, "logout failed: cannot reach the store", http.StatusServiceUnavailable)
			return
		}
	}
	http.SetCookie(w, s.cookie(SessionCookie, "", "/", -1))
	target := "/"
	if end := s.cfg.OIDC.EndSessionURL(); end != "" {
		if u, err := url.Parse(end); err == nil {
			v := u.Query()
			v.Set("client_id", s.cfg.OIDC.ClientID())
			v.Set("post_logout_redirect_uri", strings.TrimRight(s.cfg.PublicURL, "/")+"/")
			u.RawQuery = v.Encode()
			target = u.String()
		}
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *Sessions) record(r *http.Request, id Identity, step string) error {
	return s.recordWithReason(r.Context(), r, id, step, "")
}

// recordWithReason records a login event that says why in its reason field; ctx may outlive r's.
func (s *Sessions) recordWithReason(ctx context.Context, r *http.Request, id Identity, step, reason string) error {
	if s.cfg.Auditor == nil {
		return nil
	}
	e := loginEvent(r, id, step, s.cfg.Now())
	e.Reason = reason
	if err := s.cfg.Auditor.Record(ctx, e); err != nil {
		s.cfg.Logger.Error("record login", "err", err, "identity", id)
		return err
	}
	return nil
}

// cookie builds a first-party cookie; maxAge < 0 deletes it.
func (s *Sessions) cookie(name, value, path string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// sign encodes the login state as base64url(JSON) "." base64url(HMAC).
func (s *Sessions) sign(st loginState) string {
	data, _ := json.Marshal(st)
	payload := base64.RawURLEncoding.EncodeToString(data)
	m := hmac.New(sha256.New, s.stateKey)
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Sessions) readState(r *http.Request) (loginState, bool) {
	var st loginState
	c, err := r.Cookie(loginStateCookie)
	if err != nil {
		return st, false
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return st, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return st, false
	}
	m := hmac.New(sha256.New, s.stateKey)
	m.Write([]byte(payload))
	if !hmac.Equal(got, m.Sum(nil)) {
		return st, false
	}
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(data, &st) != nil {
		return st, false
	}
	if s.cfg.Now().Unix() > st.Expires {
		return st, false
	}
	return st, true
}

// localPath returns next when it is a path on this site, else "/": no scheme, no host, no
// protocol-relative "//host", no backslashes that browsers turn into slashes.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\") {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
