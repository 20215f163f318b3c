package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestGCEMetadataEmulation checks the answers that gcloud and the Google libraries read before
// they ask for a token: gcloud uses a metadata server only when project/numeric-project-id is
// a number, and reads the universe domain.
func TestGCEMetadataEmulation(t *testing.T) {
	tokens := &tokenSource{cloud: "gcp", token: "airlock-v1.test", expires: time.Now().Add(time.Hour),
		fetch: func(context.Context, string) ([]byte, error) { t.Fatal("no fetch expected"); return nil, nil }}
	srv := httptest.NewServer(gceMetadata(tokens, "airlock-t@airlock.invalid", "p1", "1234"))
	defer srv.Close()
	get := func(path string, flavor bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if flavor {
			req.Header.Set("Metadata-Flavor", "Google")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{
		"/computeMetadata/v1/project/project-id":                                        "p1",
		"/computeMetadata/v1/project/numeric-project-id":                                "1234",
		"/computeMetadata/v1/universe/universe-domain":                                  "googleapis.com",
		"/computeMetadata/v1/instance/service-accounts/default/email":                   "airlock-t@airlock.invalid",
		"/computeMetadata/v1/instance/service-accounts/default/token":                   `"access_token":"airlock-v1.test"`,
		"/computeMetadata/v1/instance/service-accounts/airlock-t@airlock.invalid/token": `"token_type":"Bearer"`,
	} {
		if code, body := get(path, true); code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s = %d %q, want 200 with %q", path, code, body, want)
		}
		if code, _ := get(path, false); code != http.StatusForbidden {
			t.Errorf("%s without Metadata-Flavor = %d, want 403", path, code)
		}
	}
	if code, _ := get("/computeMetadata/v1/instance/service-accounts/other@x.iam.gserviceaccount.com/token", true); code != 404 {
		t.Errorf("another account's token = %d, want 404", code)
	}
}

func TestGCPEnvRefusesABadProjectNumber(t *testing.T) {
	e := newEnvList(nil)
	_, err := gcpEnv(e, execOptions{target: "t", projectNumber: "my-project"}, &tokenSource{}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--project-number") {
		t.Errorf("gcpEnv with a project ID as the number = %v, want an error naming --project-number", err)
	}
}
