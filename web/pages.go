package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxComment is the longest approval or denial comment, in characters (the API's limit too).
const maxComment = 1000

// Sessions is what the pages need from browser sessions; *authn.Sessions satisfies it.
type Sessions interface {
	// RequireLogin sends visitors without a session to the login and puts the identity of
	// those with one in the request context (authn.IdentityFrom).
	RequireLogin(next http.Handler) http.Handler
	CSRFToken(r *http.Request) string
	VerifyCSRF(r *http.Request) error
}

// ChangeSource tells the live page when a request may have changed; *approval.Workflow
// satisfies it. Without one the event stream falls back to Workflow.Wait, which reports only
// decisions promptly (partial approvals then show at the next keepalive).
type ChangeSource interface {
	Changes(ctx context.Context, id string) (<-chan struct{}, func(), error)
}

// PagesConfig wires the approval pages.
type PagesConfig struct {
	Workflow Workflow // required
	Sessions Sessions // required
	Logger   *slog.Logger
	// Now is the clock for relative times ("5 minutes ago"); default time.Now.
	Now func() time.Time
	// KeepAlive is the interval of the event stream's keepalive comment; default 15s.
	KeepAlive time.Duration
}

// CheckAndSetDefaults fills defaults and refuses what is missing.
func (c *PagesConfig) CheckAndSetDefaults() error {
	var errs []error
	if c.Workflow == nil {
		errs = append(errs, errors.New("web pages: Workflow is required"))
	}
	if c.Sessions == nil {
		errs = append(errs, errors.New("web pages: Sessions is required (browser approval needs oidc configured)"))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	return errors.Join(errs...)
}

// Pages serves the browser approval pages:
//
//	GET  /requests                  pending requests first, then recently decided ones
//	GET  /requests/{id}             one request, with approve and deny forms
//	POST /requests/{id}/approve     form post (comment, csrf_token), then 303 back
//	POST /requests/{id}/deny        the same for a denial (the requester withdraws)
//	GET  /requests/{id}/events      server-sent events while the request changes
//	GET  /static/...                embedded CSS and JS
type Pages struct {
	cfg  PagesConfig
	tmpl *templates
}

// NewPages checks the config and parses the embedded templates.
func NewPages(cfg PagesConfig) (*Pages, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &Pages{cfg: cfg, tmpl: t}, nil
}

// Handler returns the pages with their security headers. Mount it at /requests, /requests/
// and /static/.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	login := p.cfg.Sessions.RequireLogin
	mux.Handle("GET /requests", login(http.HandlerFunc(p.list)))
	mux.Handle("GET /requests/{id}", login(http.HandlerFunc(p.show)))
	mux.Handle("POST /requests/{id}/approve", login(p.decide(true)))
	mux.Handle("POST /requests/{id}/deny", login(p.decide(false)))
	mux.Handle("GET /requests/{id}/events", login(http.HandlerFunc(p.events)))
	mux.Handle("GET /static/", staticHandler())
	return secureHeaders(mux)
}

// NotConfigured answers every page route with a page saying that browser approval needs OIDC;
// the JSON API and the CLI keep working with the bootstrap token.
func NotConfigured() http.Handler {
	t, err := parseTemplates()
	if err != nil {
		panic(err) // the embedded templates are checked by the tests
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if rest, ok := strings.CutPrefix(r.URL.Path, "/requests/"); ok {
			id, _, _ = strings.Cut(rest, "/")
		}
		t.render(w, http.StatusNotImplemented, "disabled", &pageData{Title: "Browser approval is not configured", RequestID: id})
	})
	return secureHeaders(mux)
}

// contentSecurityPolicy allows only Airlock's own embedded assets: no inline script or style,
// no framing, forms post only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// staticVersion is a hash of the embedded assets: their URLs carry it, so browsers may cache
// them for long and still see a new release at once.
var staticVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

func staticHandler() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == staticVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}

// templates holds one parsed template set per page, each with the shared layout.
type templates struct {
	pages map[string]*template.Template
}

var templateFuncs = template.FuncMap{
	"asset": func(name string) string { return "/static/" + name + "?v=" + staticVersion },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}

func parseTemplates() (*templates, error) {
	t := &templates{pages: map[string]*template.Template{}}
	for _, page := range []string{"list", "request", "message", "disabled"} {
		tt, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse %s template: %w", page, err)
		}
		t.pages[page] = tt
	}
	return t, nil
}

// render writes a page; it renders into a buffer first so that a template error never leaves
// half a page behind a 200.
func (t *templates) render(w http.ResponseWriter, status int, page string, data *pageData) {
	var buf bytes.Buffer
	if err := t.pages[page].Execute(&buf, data); err != nil {
		http.Error(w, "the page cannot be shown: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageData is what every template sees.
type pageData struct {
	Title  string
	Viewer *authn.Identity
	CSRF   string
	// Flash confirms what the viewer just did; Error says why it was refused.
	Flash string
	Error string
	// Request is the request of the detail page; Pending and Decided fill the list.
	Request *requestView
	Pending []*requestView
	Decided []*requestView
	// RequestID is the ID a message page is about; Comment is kept after a refused post.
	RequestID string
	Comment   string
	Status    int
}

func (p *Pages) page(r *http.Request, title string) *pageData {
	d := &pageData{Title: title, CSRF: p.cfg.Sessions.CSRFToken(r)}
	if id, ok := authn.IdentityFrom(r.Context()); ok {
		d.Viewer = &id
	}
	return d
}

// maxDecided is how many decided requests the list shows below the pending ones.
const maxDecided = 50

func (p *Pages) list(w http.ResponseWriter, r *http.Request) {
	viewer, _ := authn.IdentityFrom(r.Context())
	reqs, err := p.cfg.Workflow.List(r.Context(), "", viewer)
	if err != nil {
		p.cfg.Logger.Error("list requests for page", "err", err)
		p.message(w, r, http.StatusServiceUnavailable, "Requests cannot be read right now", "", "The store did not answer. Reload the page in a moment.")
		return
	}
	d := p.page(r, "Requests")
	now := p.cfg.Now()
	for _, req := range reqs {
		v := newRequestView(req, viewer, now)
		if req.State == approval.StatePending {
			d.Pending = append(d.Pending, v)
		} else if len(d.Decided) < maxDecided {
			d.Decided = append(d.Decided, v)
		}
	}
	p.tmpl.render(w, http.StatusOK, "list", d)
}

// flashes are the confirmations after a successful post; the redirect carries only the key,
// so nobody can put words on the page through a link.
var flashes = map[string]string{
	"approved":       "You approved this request. The held call is released and the grant is in place.",
	"approval_added": "Your approval is recorded. The request still needs approval from someone else.",
	"denied":         "You denied this request. The held call is refused with your comment.",
	"withdrawn":      "You withdrew your request. The held call is refused.",
}

func (p *Pages) show(w http.ResponseWriter, r *http.Request) {
	req, ok := p.visible(w, r)
	if !ok {
		return
	}
	d := p.detail(r, req)
	d.Flash = flashes[r.URL.Query().Get("done")]
	p.tmpl.render(w, http.StatusOK, "request", d)
}

// visible reads the request named in the path and answers 404 itself when the viewer may not
// see it (requests of others are "not found", as in the API).
func (p *Pages) visible(w http.ResponseWriter, r *http.Request) (*approval.Request, bool) {
	viewer, _ := authn.IdentityFrom(r.Context())
	id := r.PathValue("id")
	req, err := p.cfg.Workflow.Get(r.Context(), id)
	switch {
	case err == nil && req.VisibleTo(viewer):
		return req, true
	case err == nil, errors.Is(err, approval.ErrNotFound):
		p.message(w, r, http.StatusNotFound, "Request not found", id,
			"There is no such request, or you may not see it: only the requester and the approver groups of a request see it.")
	default:
		p.cfg.Logger.Error("read request for page", "request_id", id, "err", err)
		p.message(w, r, http.StatusServiceUnavailable, "Request cannot be read right now", id, "The store did not answer. Reload the page in a moment.")
	}
	return nil, false
}

func (p *Pages) detail(r *http.Request, req *approval.Request) *pageData {
	viewer, _ := authn.IdentityFrom(r.Context())
	d := p.page(r, req.Action.IAMAction+" on "+req.Target)
	d.Request = newRequestView(req, viewer, p.cfg.Now())
	return d
}

func (p *Pages) message(w http.ResponseWriter, r *http.Request, status int, title, id, text string) {
	d := p.page(r, title)
	d.RequestID, d.Error, d.Status = id, text, status
	p.tmpl.render(w, status, "message", d)
}

// decide handles the approve and deny forms. Success redirects back (303) with a flash;
// a refusal shows the page again with the reason and the comment kept.
func (p *Pages) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		viewer, _ := authn.IdentityFrom(r.Context())
		id := r.PathValue("id")
		if err := p.cfg.Sessions.VerifyCSRF(r); err != nil {
			p.cfg.Logger.Warn("approval form refused", "request_id", id, "identity", viewer, "err", err)
			p.refuse(w, r, http.StatusForbidden, "Nothing was changed: the form was not accepted because it did not come from this page "+
				"(missing or stale security token, or another site). Reload the page and try again.", "")
			return
		}
		comment := strings.TrimSpace(r.PostFormValue("comment"))
		if utf8.RuneCountInString(comment) > maxComment {
			p.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("Nothing was changed: the comment is limited to %d characters.", maxComment), comment)
			return
		}
		var req *approval.Request
		var err error
		if approve {
			req, err = p.cfg.Workflow.Approve(r.Context(), id, viewer, comment)
		} else {
			req, err = p.cfg.Workflow.Deny(r.Context(), id, viewer, comment)
		}
		if err != nil {
			status, msg := p.refusal(err, req, viewer)
			p.refuse(w, r, status, msg, comment)
			return
		}
		done := "denied"
		switch {
		case approve && req.State == approval.StateApproved:
			done = "approved"
		case approve:
			done = "approval_added"
		case req.Requester.Subject == viewer.Subject:
			done = "withdrawn"
		}
		http.Redirect(w, r, "/requests/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	}
}

// refusal turns a workflow error into a status and a sentence for the page.
func (p *Pages) refusal(err error, req *approval.Request, viewer authn.Identity) (int, string) {
	groups := "the approver groups"
	if req != nil && len(req.Approvers.Groups) > 0 {
		groups = strings.Join(req.Approvers.Groups, ", ")
	}
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return http.StatusNotFound, "There is no such request, or you may not see it."
	case errors.Is(err, approval.ErrSelfApproval):
		return http.StatusForbidden, "Not approved: you cannot approve your own request. Someone else in " + groups + " must approve it."
	case errors.Is(err, approval.ErrNotApprover):
		return http.StatusForbidden, "Not approved: you (" + viewer.Name() + ") are not in the approver groups of this request (" + groups + ")."
	case errors.Is(err, approval.ErrAlreadyApproved):
		return http.StatusConflict, "You have already approved this request; it needs an approval from someone else."
	case errors.Is(err, approval.ErrAlreadyDecided):
		state := "decided"
		if req != nil {
			state = string(req.State)
		}
		return http.StatusConflict, "Nothing was changed: this request is already " + state + "."
	default:
		p.cfg.Logger.Error("decide request from page", "err", err)
		return http.StatusServiceUnavailable, "Nothing was changed: the request cannot be updated right now. Try again in a moment."
	}
}

// refuse shows the request again with the reason, or a message page when it cannot be read.
func (p *Pages) refuse(w http.ResponseWriter, r *http.Request, status int, msg, comment string) {
	viewer, _ := authn.IdentityFrom(r.Context())
	req, err := p.cfg.Workflow.Get(r.Context(), r.PathValue("id"))
	if err != nil || !req.VisibleTo(viewer) {
		if status != http.StatusNotFound && (err == nil || errors.Is(err, approval.ErrNotFound)) {
			status, msg = http.StatusNotFound, "There is no such request, or you may not see it."
		}
		p.message(w, r, status, "Not changed", r.PathValue("id"), msg)
		return
	}
	d := p.detail(r, req)
	d.Error, d.Comment = msg, comment
	p.tmpl.render(w, status, "request", d)
}

// requestPath is the page of a request.
func requestPath(id string) string { return path.Join("/requests", url.PathEscape(id)) }
