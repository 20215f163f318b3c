package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/authn"
)

// bearerUsers authenticates "Bearer <user>" as that test user.
type bearerUsers struct{}

func (bearerUsers) Authenticate(r *http.Request) (authn.Identity, error) {
	if id, ok := users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]; ok {
		return id, nil
	}
	return authn.Identity{}, errors.New("who are you")
}

// The decision endpoints take the comment as JSON or as a form field, and map refusals to
// the documented codes.
func TestRequestsAPIDecide(t *testing.T) {
	cases := []struct {
		name, user, path, ctype, body string
		status                        int
		want                          string
	}{
		{"json comment", "bob", "/api/v1/requests/req-pending/approve", "application/json", `{"comment":"json ok"}`, 200, `"comment":"json ok"`},
		{"form comment", "bob", "/api/v1/requests/req-pending/deny", "application/x-www-form-urlencoded", "comment=form+ok", 200, `"comment":"form ok"`},
		{"no body", "bob", "/api/v1/requests/req-pending/approve", "", "", 200, `"state":"approved"`},
		{"bad json", "bob", "/api/v1/requests/req-pending/approve", "application/json", `{`, 400, `"invalid_request"`},
		{"too long", "bob", "/api/v1/requests/req-pending/approve", "application/json", `{"comment":"` + strings.Repeat("x", maxComment+1) + `"}`, 400, "limited to 1000"},
		{"self approval", "alice", "/api/v1/requests/req-pending/approve", "", "", 403, `"self_approval"`},
		{"not approver", "dave", "/api/v1/requests/req-pending/approve", "", "", 403, `"not_approver"`},
		{"already approved", "bob", "/api/v1/requests/req-two/approve", "", "", 409, `"already_approved"`},
		{"already decided", "carol", "/api/v1/requests/req-approved/approve", "", "", 409, `"already_decided"`},
		{"unknown", "bob", "/api/v1/requests/nope/approve", "", "", 404, `"not_found"`},
		{"anonymous", "", "/api/v1/requests/req-pending/approve", "", "", 401, `"unauthenticated"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			(&RequestsAPI{Workflow: newFakeWorkflow(requestFixtures()...), Auth: bearerUsers{}, Logger: slog.New(slog.DiscardHandler)}).Register(mux)
			r := httptest.NewRequestWithContext(context.Background(), "POST", c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			r.Header.Set("Authorization", "Bearer "+c.user)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, c.status, c.want)
			}
		})
	}
}
