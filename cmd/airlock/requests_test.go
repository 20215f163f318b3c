package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
	"github.com/airlockhq/airlock/config"
)

// fakeRequestsAPI answers like /api/v1/requests and records what it was asked.
type fakeRequestsAPI struct {
	t        *testing.T
	lastPath string
	lastBody string
	lastAuth string
}

func (f *fakeRequestsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.lastPath, f.lastBody, f.lastAuth = r.URL.RequestURI(), string(b), r.Header.Get("Authorization")
	req := &approval.Request{
		ID: "abc123", State: approval.StatePending,
		Requester: authn.Identity{Subject: "a", Email: "alice@example.com"},
		Action:    catalog.Action{Cloud: "aws", IAMAction: "s3:DeleteObject", Resource: "arn:aws:s3:::bucket/key", Risk: catalog.Destructive},
		Target:    "prod-aws", Approvers: approval.Approvers{Groups: []string{"sre-leads"}, Count: 2},
		Approvals: []approval.Approval{{By: approval.Person{Subject: "b", Email: "bob@example.com"}}},
		CreatedAt: time.Now().Add(-7 * time.Minute),
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/requests":
		_ = json.NewEncoder(w).Encode(map[string]any{"requests": []*approval.Request{req}})
	case strings.HasSuffix(r.URL.Path, "/self/approve"):
		w.WriteHeader(403)
		_, _ = io.WriteString(w, `{"error":"self_approval","message":"requesters may not approve their own request"}`)
	case strings.HasSuffix(r.URL.Path, "/stranger/approve"):
		w.WriteHeader(403)
		_, _ = io.WriteString(w, `{"error":"not_approver","message":"not in the approver groups of this request"}`)
	case strings.HasSuffix(r.URL.Path, "/done/deny"):
		w.WriteHeader(409)
		_, _ = io.WriteString(w, `{"error":"already_decided","message":"request is already decided: done is approved"}`)
	case strings.HasSuffix(r.URL.Path, "/abc123/approve"):
		_ = json.NewEncoder(w).Encode(req)
	case strings.HasSuffix(r.URL.Path, "/abc123/deny"):
		req.State, req.DeniedBy, req.Comment = approval.StateDenied, &approval.Person{Email: "bob@example.com"}, "no"
		_ = json.NewEncoder(w).Encode(req)
	default:
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":"not_found","message":"no such request (or you may not see it)"}`)
	}
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestRequestsCLI(t *testing.T) {
	api := &fakeRequestsAPI{t: t}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Setenv("AIRLOCK_SERVER", srv.URL)
	t.Setenv("AIRLOCK_TOKEN", "tok-123")

	out, errOut, code := runCLI(t, "requests")
	if code != 0 {
		t.Fatalf("requests: %d %s", code, errOut)
	}
	if api.lastPath != "/api/v1/requests?state=pending" || api.lastAuth != "Bearer tok-123" {
		t.Errorf("asked %s with %q", api.lastPath, api.lastAuth)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", out)
	}
	for _, want := range []string{"abc123", "7m", "alice@example.com", "s3:DeleteObject", "arn:aws:s3:::bucket/key", "prod-aws", "destructive", "1/2", "pending"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row lacks %q: %s", want, lines[1])
		}
	}
	if out, _, code := runCLI(t, "requests", "--state", "all", "--json"); code != 0 || api.lastPath != "/api/v1/requests" || !json.Valid([]byte(out)) {
		t.Errorf("--json --state all: %d %s %s", code, api.lastPath, out)
	}
	if _, errOut, code := runCLI(t, "requests", "--state", "bogus"); code != 1 || !strings.Contains(errOut, "--state must be") {
		t.Errorf("bad state: %d %s", code, errOut)
	}

	out, errOut, code = runCLI(t, "approve", "abc123", "--comment", "looks fine")
	if code != 0 || api.lastPath != "/api/v1/requests/abc123/approve" || api.lastBody != `{"comment":"looks fine"}` {
		t.Fatalf("approve: %d %s %s %s", code, errOut, api.lastPath, api.lastBody)
	}
	if !strings.Contains(out, "Approval recorded for abc123") || !strings.Contains(out, "1 more needed from sre-leads") {
		t.Errorf("approve output: %s", out)
	}
	// The ID may come after the flags, and the server from --server.
	out, errOut, code = runCLI(t, "deny", "--server", srv.URL, "--comment", "no", "abc123")
	if code != 0 || api.lastPath != "/api/v1/requests/abc123/deny" || !strings.Contains(out, "Denied abc123") {
		t.Fatalf("deny: %d %s %s", code, errOut, out)
	}

	// ... or between them, as the README's tour writes it.
	_, errOut, code = runCLI(t, "approve", "--server", srv.URL, "abc123", "--comment", "cleanup")
	if code != 0 || api.lastPath != "/api/v1/requests/abc123/approve" || api.lastBody != `{"comment":"cleanup"}` {
		t.Fatalf("approve with the ID between flags: %d %s %s %s", code, errOut, api.lastPath, api.lastBody)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"approve", "self"}, "refused: you cannot approve your own request"},
		{[]string{"approve", "stranger"}, "refused: you are not in the approver groups"},
		{[]string{"deny", "done"}, "refused: the request is already decided (request is already decided: done is approved (HTTP 409))"},
		{[]string{"approve", "nope"}, "no such request, or you may not see it"},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %d %q, want %q", c.args, code, errOut, c.want)
		}
	}
	if _, _, code := runCLI(t, "approve"); code != 2 {
		t.Errorf("approve without ID: exit %d, want 2", code)
	}
}

func TestShortenAndAge(t *testing.T) {
	if got := shorten("arn:aws:s3:::a-very-long-bucket-name/with/a/long/key.csv", 20); len([]rune(got)) != 20 ||
		!strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "long/key.csv") {
		t.Errorf("shorten = %q", got)
	}
	if got := shorten("short", 20); got != "short" {
		t.Errorf("shorten = %q", got)
	}
	for d, want := range map[time.Duration]string{30 * time.Second: "30s", 7 * time.Minute: "7m", 5 * time.Hour: "5h", 72 * time.Hour: "3d"} {
		if got := age(d); got != want {
			t.Errorf("age(%s) = %q, want %q", d, got, want)
		}
	}
}

// Without OIDC the pages explain that browser approval needs it, while the JSON API keeps
// working with the bootstrap token.
func TestServeWithoutOIDCExplainsPages(t *testing.T) {
	t.Setenv("AIRLOCK_PAGES_TEST_TOKEN", "pages-test-bootstrap-token-0123")
	t.Setenv("AIRLOCK_REDIS_URL", "")
	cfg, err := config.Parse([]byte(`
dev:
  bootstrap_token_env: AIRLOCK_PAGES_TEST_TOKEN
  bootstrap_identity: {subject: bob, email: bob@example.com, groups: [sre-leads]}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	w := httptest.NewRecorder()
	srv.handler.ServeHTTP(w, httptest.NewRequest("GET", "/requests/abc", nil))
	if w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "<code>oidc</code>") || !strings.Contains(w.Body.String(), "airlock approve abc") {
		t.Errorf("page without OIDC: %d\n%s", w.Code, w.Body)
	}
	r := httptest.NewRequest("GET", "/api/v1/requests", nil)
	r.Header.Set("Authorization", "Bearer pages-test-bootstrap-token-0123")
	w = httptest.NewRecorder()
	srv.handler.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"requests"`) {
		t.Errorf("API without OIDC: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	srv.handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/requests" {
		t.Errorf("/: %d %q", w.Code, w.Header().Get("Location"))
	}
}
