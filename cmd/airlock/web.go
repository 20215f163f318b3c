package main

import (
	"net/http"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/proxy"
	"github.com/airlockhq/airlock/web"
)

// mountWeb adds the login routes, the requests API and the approval pages to the API mux.
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
	return nil
}
