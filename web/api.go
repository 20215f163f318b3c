// Package web serves the human side of Airlock: the approval pages (html/template with embedded
// assets, live updates by server-sent events) and the JSON API that approvers and the CLI use
// for held requests.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
)

// Workflow is what the pages and the API need from the approval workflow.
type Workflow interface {
	Get(ctx context.Context, id string) (*approval.Request, error)
	List(ctx context.Context, state string, viewer authn.Identity) ([]*approval.Request, error)
	Approve(ctx context.Context, id string, approver authn.Identity, comment string) (*approval.Request, error)
	Deny(ctx context.Context, id string, by authn.Identity, comment string) (*approval.Request, error)
	Wait(ctx context.Context, id string, max time.Duration) (*approval.Request, error)
}

// Authenticator says who calls the API (bearer ID token or session cookie with CSRF).
type Authenticator interface {
	Authenticate(r *http.Request) (authn.Identity, error)
}

// RequestsAPI serves /api/v1/requests.
type RequestsAPI struct {
	Workflow Workflow
	Auth     Authenticator
	Logger   *slog.Logger
}

// Register mounts the routes on mux.
func (a *RequestsAPI) Register(mux interface {
	HandleFunc(string, func(http.ResponseWriter, *http.Request))
}) {
	mux.HandleFunc("GET /api/v1/requests", a.list)
	mux.HandleFunc("GET /api/v1/requests/{id}", a.get)
	mux.HandleFunc("POST /api/v1/requests/{id}/approve", a.decide(true))
	mux.HandleFunc("POST /api/v1/requests/{id}/deny", a.decide(false))
}

func (a *RequestsAPI) list(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "", "pending", "approved", "denied", "expired":
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", "state must be pending, approved, denied or expired")
		return
	}
	reqs, err := a.Workflow.List(r.Context(), state, id)
	if err != nil {
		a.Logger.Error("list requests", "err", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "requests cannot be read right now")
		return
	}
	if reqs == nil {
		reqs = []*approval.Request{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": reqs})
}

func (a *RequestsAPI) get(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	req, err := a.Workflow.Get(r.Context(), r.PathValue("id"))
	if err != nil || !req.VisibleTo(id) {
		a.failed(w, err, "read")
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (a *RequestsAPI) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		comment, err := readComment(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		var req *approval.Request
		if approve {
			req, err = a.Workflow.Approve(r.Context(), r.PathValue("id"), id, comment)
		} else {
			req, err = a.Workflow.Deny(r.Context(), r.PathValue("id"), id, comment)
		}
		if err != nil {
			a.failed(w, err, "decide")
			return
		}
		writeJSON(w, http.StatusOK, req)
	}
}

// readComment reads the optional comment from a JSON body {"comment": TEXT} or, for HTML
// forms and curl -d, from a form field "comment".
func readComment(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var comment string
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mediaType == "application/x-www-form-urlencoded" || mediaType == "multipart/form-data":
		comment = r.PostFormValue("comment")
	case r.ContentLength != 0:
		var body struct {
			Comment string `json:"comment"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			return "", errors.New("body must be JSON {\"comment\": TEXT} or a form with a comment field")
		}
		comment = body.Comment
	}
	comment = strings.TrimSpace(comment)
	if utf8.RuneCountInString(comment) > maxComment {
		return "", fmt.Errorf("comment is limited to %d characters", maxComment)
	}
	return comment, nil
}

// failed maps workflow errors to API errors. Requests the caller may not see are "not found".
func (a *RequestsAPI) failed(w http.ResponseWriter, err error, what string) {
	switch {
	case err == nil, errors.Is(err, approval.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such request (or you may not see it)")
	case errors.Is(err, approval.ErrSelfApproval):
		writeError(w, http.StatusForbidden, "self_approval", err.Error())
	case errors.Is(err, approval.ErrNotApprover):
		writeError(w, http.StatusForbidden, "not_approver", err.Error())
	case errors.Is(err, approval.ErrAlreadyApproved):
		writeError(w, http.StatusConflict, "already_approved", err.Error())
	case errors.Is(err, approval.ErrAlreadyDecided):
		writeError(w, http.StatusConflict, "already_decided", err.Error())
	default:
		a.Logger.Error(what+" request", "err", err)
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the request cannot be "+what+" right now")
	}
}

func (a *RequestsAPI) authenticate(w http.ResponseWriter, r *http.Request) (authn.Identity, bool) {
	id, err := a.Auth.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "log in first (airlock login): "+err.Error())
		return authn.Identity{}, false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}
