package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/config"
)

// The API's collaborators, consumer-side.
type (
	apiAuthenticator interface {
		Authenticate(r *http.Request) (authn.Identity, error)
	}
	credentialIssuer interface {
		IssueAWS(id authn.Identity, target, reason string) (authn.AWSCredentials, error)
		IssueBearer(id authn.Identity, cloud, target, reason string) (string, time.Time, error)
	}
	auditReader interface {
		auditor
		Since(ctx context.Context, afterID string, limit int) ([]audit.Event, error)
		Subscribe(f audit.Filter) (<-chan audit.Event, func())
	}
	pinger interface {
		Ping(ctx context.Context) error
	}
)

// APIConfig wires the JSON API that is not cloud traffic: credentials, audit, health, metrics.
type APIConfig struct {
	Settings *config.Config
	Logger   *slog.Logger
	Auth     apiAuthenticator
	Issuer   credentialIssuer
	Audit    auditReader
	Store    pinger
	Registry *prometheus.Registry
	// Ready adds checks to /readyz (e.g. the audit webhook backlog); nil means none.
	Ready func(ctx context.Context) error
}

// API serves /healthz, /readyz, /metrics, /api/v1/credentials/{cloud} and /api/v1/audit*.
type API struct {
	cfg APIConfig
	mux *http.ServeMux
}

// NewAPI builds the API handler.
func NewAPI(cfg APIConfig) (*API, error) {
	if cfg.Settings == nil || cfg.Logger == nil || cfg.Auth == nil || cfg.Issuer == nil || cfg.Audit == nil || cfg.Store == nil || cfg.Registry == nil {
		return nil, errors.New("proxy: APIConfig is missing a collaborator")
	}
	a := &API{cfg: cfg, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.ready)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("POST /api/v1/credentials/{cloud}", a.credentials)
	a.mux.HandleFunc("GET /api/v1/audit", a.auditEvents)
	a.mux.HandleFunc("GET /api/v1/audit/stream", a.auditStream)
	return a, nil
}

// Handle mounts another handler (web pages, auth routes) on the API's mux.
func (a *API) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	if err := a.cfg.Store.Ping(ctx); err != nil {
		checks["store"] = "unreachable"
		status = http.StatusServiceUnavailable
		a.cfg.Logger.Warn("readiness: store unreachable", "err", err)
	} else {
		checks["store"] = "ok"
	}
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(ctx); err != nil {
			checks["audit"] = err.Error()
			status = http.StatusServiceUnavailable
		} else {
			checks["audit"] = "ok"
		}
	}
	writeJSON(w, status, checks)
}

type credentialsRequest struct {
	Target string `json:"target"`
	Reason string `json:"reason"`
}

// credentials issues the caller a credential bound to (identity, groups, target, reason).
func (a *API) credentials(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	cloud := r.PathValue("cloud")
	var req credentialsRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", "body must be JSON {\"target\": NAME, \"reason\": TEXT}")
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if len(req.Reason) > 512 {
		apiError(w, http.StatusBadRequest, "invalid_request", "reason is limited to 512 characters")
		return
	}
	t, found := a.cfg.Settings.Target(req.Target)
	if !found {
		apiError(w, http.StatusNotFound, "unknown_target", fmt.Sprintf("no target named %q (targets: %s)", req.Target, strings.Join(a.targetNames(cloud), ", ")))
		return
	}
	if t.Cloud != cloud {
		apiError(w, http.StatusBadRequest, "wrong_cloud", fmt.Sprintf("target %q is a %s target, not %s", t.Name, t.Cloud, cloud))
		return
	}
	ev := &audit.Event{Kind: audit.KindCredential, Step: "issued", Target: t.Name, Cloud: t.Cloud,
		Identity: audit.Identity{Subject: id.Subject, Email: id.Email, Groups: id.Groups},
		Reason:   req.Reason, ClientIP: clientIP(r), UserAgent: r.UserAgent()}
	// The issue is on the audit trail before the credential leaves, like every other decision.
	if err := a.cfg.Audit.Record(r.Context(), ev); err != nil {
		a.cfg.Logger.Error("audit unavailable: credential not issued", "err", err)
		apiError(w, http.StatusServiceUnavailable, "audit_unavailable", "the audit trail cannot be written, so no credential was issued")
		return
	}
	switch cloud {
	case "aws":
		creds, err := a.cfg.Issuer.IssueAWS(id, t.Name, req.Reason)
		if err != nil {
			a.cfg.Logger.Error("issue aws credentials", "err", err)
			apiError(w, http.StatusInternalServerError, "internal", "could not issue credentials")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"Version": 1, "AccessKeyId": creds.AccessKeyID, "SecretAccessKey": creds.SecretAccessKey,
			"SessionToken": creds.SessionToken, "Expiration": creds.Expiration.UTC().Format(time.RFC3339),
		})
	default:
		token, exp, err := a.cfg.Issuer.IssueBearer(id, cloud, t.Name, req.Reason)
		if err != nil {
			a.cfg.Logger.Error("issue bearer token", "err", err)
			apiError(w, http.StatusInternalServerError, "internal", "could not issue a token")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": token, "token_type": "Bearer", "expires_on": exp.Unix(),
			"expires_in": int(time.Until(exp).Seconds()), "expiration": exp.UTC().Format(time.RFC3339),
		})
	}
}

func (a *API) targetNames(cloud string) []string {
	var names []string
	for _, t := range a.cfg.Settings.Targets {
		if t.Cloud == cloud {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return []string{"none for " + cloud}
	}
	return names
}

// mayReadAudit: audit.readers groups, or every authenticated identity when none are set.
func (a *API) mayReadAudit(id authn.Identity) bool {
	return len(a.cfg.Settings.Audit.Readers) == 0 || id.InGroup(a.cfg.Settings.Audit.Readers...)
}

func (a *API) auditEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if !a.mayReadAudit(id) {
		apiError(w, http.StatusForbidden, "forbidden", "reading the audit trail needs one of the groups in audit.readers")
		return
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			apiError(w, http.StatusBadRequest, "invalid_request", "limit must be 1..10000")
			return
		}
		limit = n
	}
	events, err := a.cfg.Audit.Since(r.Context(), r.URL.Query().Get("since"), limit)
	if err != nil {
		a.cfg.Logger.Error("read audit", "err", err)
		apiError(w, http.StatusServiceUnavailable, "store_unavailable", "the audit stream cannot be read right now")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for i := range events {
		_ = enc.Encode(&events[i])
	}
}

func (a *API) auditStream(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if !a.mayReadAudit(id) {
		apiError(w, http.StatusForbidden, "forbidden", "reading the audit trail needs one of the groups in audit.readers")
		return
	}
	q := r.URL.Query()
	ch, cancel := a.cfg.Audit.Subscribe(audit.Filter{Identity: q.Get("identity"), Action: q.Get("action"),
		Decision: q.Get("decision"), Kind: q.Get("kind")})
	defer cancel()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": airlock audit stream\n\n")
	if flusher != nil {
		flusher.Flush()
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			_, _ = io.WriteString(w, ": keepalive\n\n")
		case e, open := <-ch:
			if !open {
				return
			}
			b, _ := json.Marshal(&e)
			fmt.Fprintf(w, "id: %s\nevent: audit\ndata: %s\n\n", e.ID, b)
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// authenticate answers 401 itself when the caller is unknown.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (authn.Identity, bool) {
	id, err := a.cfg.Auth.Authenticate(r)
	switch {
	case err == nil:
	case errors.Is(err, authn.ErrCSRF):
		apiError(w, http.StatusForbidden, "csrf", err.Error())
		return authn.Identity{}, false
	case errors.Is(err, authn.ErrAuditUnavailable):
		apiError(w, http.StatusServiceUnavailable, "audit_unavailable", err.Error())
		return authn.Identity{}, false
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "unauthenticated", "log in first: airlock login --server "+a.cfg.Settings.PublicURL+" ("+err.Error()+")")
		return authn.Identity{}, false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}
