package main

import (
	"net/http"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/proxy"
	"github.com/airlockhq/airlock/web"
)

// mountWeb adds the login routes, the requests API and the approval pages to the API mux.
// Without OIDC there are no browser sessions: the pages then say that browser approval needs
// oidc configured, while the JSON API and the CLI keep working (e.g. with the bootstrap token).
func (s *server) mountWeb(api *proxy.API, auth *authn.APIAuthenticator, sessions *authn.Sessions, oidc *authn.OIDC, wf *approval.Workflow) error {
	if sessions != nil {
		api.Handle("/auth/", sessions.Handler())
	}
	if oidc != nil {
		api.Handle("GET /api/v1/auth/config", authn.AuthConfigHandler(oidc, ""))
	}
	mux := http.NewServeMux()
	(&web.RequestsAPI{Workflow: wf, Auth: auth, Logger: s.logger}).Register(mux)
	api.Handle("/api/v1/requests", mux)
	api.Handle("/api/v1/requests/", mux)

	pages := web.NotConfigured()
	if sessions != nil {
		p, err := web.NewPages(web.PagesConfig{Workflow: wf, Sessions: sessions, Logger: s.logger})
		if err != nil {
			return err
		}
		pages = p.Handler()
	}
	for _, pattern := range []string{"/requests", "/requests/", "/static/"} {
		api.Handle(pattern, pages)
	}
	api.Handle("GET /{$}", http.RedirectHandler("/requests", http.StatusSeeOther))
	return nil
}
