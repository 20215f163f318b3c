package main

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The local token servers of airlock exec: tools that only know how to get tokens from their
// platform's metadata service (gcloud and the Google libraries from GCE's, the Azure SDKs from
// App Service's managed identity) get the Airlock-issued token there, and never a cloud one.

const gcpScope = "https://www.googleapis.com/auth/cloud-platform"

func gcpEnv(e *envList, o execOptions, tokens *tokenSource, dir string) (func(), error) {
	account := o.account
	if account == "" {
		account = "airlock-" + o.target + "@airlock.invalid"
	}
	number := o.projectNumber
	if number == "" {
		number = "0"
	}
	if strings.Trim(number, "0123456789") != "" {
		return nil, fmt.Errorf("--project-number %q: want the project's number (digits only)", number)
	}
	addr, stop, err := serveLocal(gceMetadata(tokens, account, o.project, number))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"} {
		e.set(k, addr)
	}
	for _, k := range []string{"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"} {
		e.unset(k)
	}
	gcloudDir := filepath.Join(dir, "gcloud")
	if err := os.Mkdir(gcloudDir, 0o700); err != nil {
		stop()
		return nil, err
	}
	e.set("CLOUDSDK_CONFIG", gcloudDir)
	if o.project != "" {
		e.set("GOOGLE_CLOUD_PROJECT", o.project)
		e.set("CLOUDSDK_CORE_PROJECT", o.project)
	}
	return stop, nil
}

// gceMetadata emulates the parts of the GCE metadata server that token clients read.
func gceMetadata(tokens *tokenSource, account, project, projectNumber string) http.Handler {
	const v1 = "/computeMetadata/v1/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		w.Header().Set("Server", "Metadata Server for VM")
		// As on GCE: only requests that say they mean the metadata server, never forwarded ones.
		if r.Header.Get("Metadata-Flavor") != "Google" || r.Header.Get("X-Forwarded-For") != "" {
			http.Error(w, "Missing Metadata-Flavor:Google header.", http.StatusForbidden)
			return
		}
		p := r.URL.Path
		if p == "/" || p == v1 || p == strings.TrimSuffix(v1, "/") {
			w.Header().Set("Content-Type", "application/text")
			_, _ = w.Write([]byte("computeMetadata/\n"))
			return
		}
		rest, ok := strings.CutPrefix(p, v1)
		if !ok {
			http.NotFound(w, r)
			return
		}
		text := func(s string) {
			w.Header().Set("Content-Type", "application/text")
			_, _ = w.Write([]byte(s))
		}
		saInfo := map[string]any{"aliases": []string{"default"}, "email": account, "scopes": []string{gcpScope}}
		switch rest {
		case "project/project-id":
			if project == "" {
				http.Error(w, "no project: pass airlock exec --project", http.StatusNotFound)
				return
			}
			text(project)
			return
		case "project/numeric-project-id":
			// gcloud decides it runs on GCE (and so asks this server for tokens) only when this
			// answers with digits. Airlock does not know the project's number; nothing it forwards
			// depends on it.
			text(projectNumber)
			return
		case "universe/universe-domain":
			// Airlock forwards to the googleapis.com universe only.
			text("googleapis.com")
			return
		case "instance/service-accounts", "instance/service-accounts/":
			if r.URL.Query().Get("recursive") == "true" {
				writeJSONBody(w, map[string]any{"default": saInfo, account: saInfo})
				return
			}
			text("default/\n" + account + "/\n")
			return
		}
		sa, leaf, _ := strings.Cut(strings.TrimPrefix(rest, "instance/service-accounts/"), "/")
		if !strings.HasPrefix(rest, "instance/service-accounts/") || (sa != "default" && sa != account) {
			http.NotFound(w, r)
			return
		}
		switch leaf {
		case "":
			if r.URL.Query().Get("recursive") == "true" {
				writeJSONBody(w, saInfo)
				return
			}
			text("aliases\nemail\nidentity\nscopes\ntoken\n")
		case "email":
			text(account)
		case "aliases":
			text("default")
		case "scopes":
			text(gcpScope + "\n")
		case "token":
			tok, exp, err := tokens.Token(r.Context())
			if err != nil {
				http.Error(w, "airlock: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			writeJSONBody(w, map[string]any{"access_token": tok, "expires_in": int(time.Until(exp).Seconds()), "token_type": "Bearer"})
		default:
			// identity (ID tokens) and the rest: Airlock issues access tokens only.
			http.NotFound(w, r)
		}
	})
}

func azureEnv(e *envList, tokens *tokenSource) (func(), error) {
	secret := randomHex(24)
	addr, stop, err := serveLocal(managedIdentity(tokens, secret))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_PASSWORD",
		"IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"} {
		e.unset(k)
	}
	endpoint := "http://" + addr + "/msi/token"
	e.set("IDENTITY_ENDPOINT", endpoint)
	e.set("IDENTITY_HEADER", secret)
	e.set("MSI_ENDPOINT", endpoint)
	e.set("MSI_SECRET", secret)
	return stop, nil
}

// managedIdentity emulates App Service's managed identity endpoint: 2019-08-01 (header
// X-IDENTITY-HEADER) and 2017-09-01 (header Secret).
func managedIdentity(tokens *tokenSource, secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		given := r.Header.Get("X-IDENTITY-HEADER")
		if q.Get("api-version") == "2017-09-01" {
			given = r.Header.Get("Secret")
		}
		if r.URL.Path != "/msi/token" || subtle.ConstantTimeCompare([]byte(given), []byte(secret)) != 1 {
			writeJSONStatus(w, http.StatusUnauthorized, map[string]any{"error": "invalid_request", "error_description": "missing or wrong identity header"})
			return
		}
		resource := q.Get("resource")
		if resource == "" {
			writeJSONStatus(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "resource is required"})
			return
		}
		tok, exp, err := tokens.Token(r.Context())
		if err != nil {
			writeJSONStatus(w, http.StatusServiceUnavailable, map[string]any{"error": "temporarily_unavailable", "error_description": "airlock: " + err.Error()})
			return
		}
		body := map[string]any{"access_token": tok, "expires_on": strconv.FormatInt(exp.Unix(), 10),
			"resource": resource, "token_type": "Bearer", "client_id": q.Get("client_id")}
		if q.Get("api-version") == "2017-09-01" {
			body["expires_on"] = exp.UTC().Format("01/02/2006 15:04:05 +00:00")
		}
		writeJSONBody(w, body)
	})
}

func writeJSONBody(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		fmt.Fprintln(w)
	}
}
