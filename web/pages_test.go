package web

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approval"
	"github.com/airlockhq/airlock/authn"
	"github.com/airlockhq/airlock/catalog"
)

var update = flag.Bool("update", false, "rewrite web/testdata/*.golden from the current output")

func newTestPages(t *testing.T, wf Workflow) http.Handler {
	t.Helper()
	p, err := NewPages(PagesConfig{Workflow: wf, Sessions: fakeSessions{}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return p.Handler()
}

// do sends one request as user ("" = no session) and returns the recorded answer.
func do(h http.Handler, user, method, target string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		r.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: user})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func withCSRF(user string, comment string) url.Values {
	return url.Values{authn.CSRFField: {"csrf-" + user}, "comment": {comment}}
}

// golden compares got with testdata/name.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./web -run %s -update to create it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendered page (go test ./web -update to accept):\n%s", path, diffLines(string(want), got))
	}
}

// diffLines shows the first differing line, enough to find what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return "(same lines, different line endings)"
}

// requestFixtures are the requests the golden pages show.
func requestFixtures() []*approval.Request {
	pending := heldRequest("req-pending")

	twoPerson := heldRequest("req-two")
	twoPerson.Action.IAMAction, twoPerson.Action.Operation = "ec2:TerminateInstances", "TerminateInstances"
	twoPerson.Action.Service, twoPerson.Action.Resource = "ec2", "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
	twoPerson.Approvers = approval.Approvers{Groups: []string{"sre-leads"}, Count: 2}
	twoPerson.Approvals = []approval.Approval{{By: approval.Person{Subject: bob.Subject, Email: bob.Email}, Comment: "ok by me", At: testNow.Add(-2 * time.Minute)}}
	twoPerson.CreatedAt = testNow.Add(-3 * time.Minute)

	approved := heldRequest("req-approved")
	approved.State, approved.DecidedAt, approved.GrantID = approval.StateApproved, testNow.Add(-50*time.Minute), "g1"
	approved.Approvals = []approval.Approval{{By: approval.Person{Subject: carol.Subject, Email: carol.Email}, At: testNow.Add(-50 * time.Minute)}}
	approved.CreatedAt = testNow.Add(-65 * time.Minute)

	denied := heldRequest("req-denied")
	denied.State, denied.DecidedAt = approval.StateDenied, testNow.Add(-26*time.Hour)
	denied.DeniedBy, denied.Comment = &approval.Person{Subject: bob.Subject, Email: bob.Email}, "not during the freeze <b>really</b>"
	denied.CreatedAt = testNow.Add(-27 * time.Hour)
	denied.Action.Risk = 4 // privilege
	denied.Action.IAMAction = "iam:AttachRolePolicy"

	hostile := heldRequest("req-hostile")
	hostile.Context.Reason = `<script>alert("x")</script>`
	hostile.Action.Resource = `"><img src=x onerror=alert(1)>`
	hostile.Requester.Email = "mallory+<i>@example.com"
	hostile.Requester.Subject = "sub-mallory"
	hostile.CreatedAt = testNow.Add(-30 * time.Second)

	pair := heldRequest("req-pair")
	pair.Approvers.Count = 2
	pair.Action.Resource = "arn:aws:s3:::billing-exports/2026/01/ledger.csv"
	pair.CreatedAt = testNow.Add(-5 * time.Minute)

	return []*approval.Request{pending, twoPerson, approved, denied, hostile, pair}
}

// The rendered pages, byte for byte, with a fixed clock and fixed requests.
func TestPagesGolden(t *testing.T) {
	cases := []struct {
		name, user, method, target string
		form                       url.Values
		status                     int
	}{
		{"request_pending_approver", "bob", "GET", "/requests/req-pending", nil, 200},
		{"request_pending_requester", "alice", "GET", "/requests/req-pending", nil, 200},
		{"request_two_person_after_first", "bob", "GET", "/requests/req-two", nil, 200},
		{"request_approved_flash", "carol", "GET", "/requests/req-approved?done=approved", nil, 200},
		{"request_denied", "alice", "GET", "/requests/req-denied", nil, 200},
		{"request_hostile_text", "bob", "GET", "/requests/req-hostile", nil, 200},
		{"refused_self_approval", "alice", "POST", "/requests/req-pending/approve", withCSRF("alice", "please"), 403},
		{"list_approver", "bob", "GET", "/requests", nil, 200},
		{"list_requester", "alice", "GET", "/requests", nil, 200},
		{"not_found", "dave", "GET", "/requests/req-pending", nil, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newTestPages(t, newFakeWorkflow(requestFixtures()...))
			w := do(h, c.user, c.method, c.target, c.form)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d\n%s", w.Code, c.status, w.Body)
			}
			golden(t, c.name, w.Body.String())
		})
	}
	t.Run("disabled", func(t *testing.T) {
		w := httptest.NewRecorder()
		NotConfigured().ServeHTTP(w, httptest.NewRequest("GET", "/requests/req-pending", nil))
		if w.Code != http.StatusNotImplemented {
			t.Fatalf("status %d", w.Code)
		}
		golden(t, "disabled", w.Body.String())
	})
}

func TestPagesSecurityHeaders(t *testing.T) {
	h := newTestPages(t, newFakeWorkflow(requestFixtures()...))
	for _, target := range []string{"/requests", "/requests/req-pending", "/static/airlock.css"} {
		w := do(h, "bob", "GET", target, nil)
		csp := w.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", target, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP allows unsafe sources: %q", target, csp)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", target, k, got, v)
			}
		}
	}
	// No inline script anywhere: every <script> has a src and an empty body.
	body := do(h, "bob", "GET", "/requests/req-pending", nil).Body.String()
	for _, m := range regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %s", m[0])
		}
	}
	if strings.Contains(body, " on") && regexp.MustCompile(`<[^>]+\son[a-z]+=`).MatchString(body) {
		t.Errorf("inline event handler in page")
	}
	if cc := do(h, "bob", "GET", "/requests/req-pending", nil).Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("page Cache-Control = %q", cc)
	}
}

func TestPagesStaticAssets(t *testing.T) {
	h := newTestPages(t, newFakeWorkflow())
	for name, ctype := range map[string]string{"airlock.css": "text/css", "request.js": "text/javascript"} {
		w := do(h, "", "GET", "/static/"+name+"?v="+staticVersion, nil)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) || w.Body.Len() == 0 {
			t.Errorf("%s: %d %q (%d bytes)", name, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		if !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("%s: versioned asset not cached: %q", name, w.Header().Get("Cache-Control"))
		}
	}
}

func TestPagesRequireLogin(t *testing.T) {
	h := newTestPages(t, newFakeWorkflow(requestFixtures()...))
	w := do(h, "", "GET", "/requests/req-pending", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/auth/login?next=%2Frequests%2Freq-pending" {
		t.Fatalf("no session: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestPagesEscapeEverything(t *testing.T) {
	h := newTestPages(t, newFakeWorkflow(requestFixtures()...))
	body := do(h, "bob", "GET", "/requests/req-hostile", nil).Body.String()
	for _, bad := range []string{`<script>alert`, `<img src=x`, `<i>@example.com`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("reason not shown escaped")
	}
}

// A held copy shows what it reads and what else it needs, escaped like every other field.
func TestPagesShowWhatACopyReads(t *testing.T) {
	copyReq := heldRequest("req-copy")
	copyReq.Action.IAMAction, copyReq.Action.Operation = "s3:PutObject", "CopyObject"
	copyReq.Action.Resource = "arn:aws:s3:::scratch/ledger.csv"
	copyReq.Action.Source = `arn:aws:s3:::billing-exports/<b>ledger</b>.csv`
	copyReq.Action.Also = []catalog.Permission{{Action: "s3:GetObject", Resource: copyReq.Action.Source}, {Action: "s3:PutObjectAcl", Resource: copyReq.Action.Resource}}
	h := newTestPages(t, newFakeWorkflow(copyReq))
	body := do(h, "bob", "GET", "/requests/req-copy", nil).Body.String()
	for _, want := range []string{"<dt>Reads</dt>", "arn:aws:s3:::billing-exports/&lt;b&gt;ledger&lt;/b&gt;.csv",
		"<dt>Also needs</dt>", "s3:PutObjectAcl on arn:aws:s3:::scratch/ledger.csv"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>ledger</b>") {
		t.Error("the source is not escaped")
	}
	// A request without a source shows neither row.
	plain := do(newTestPages(t, newFakeWorkflow(heldRequest("req-plain"))), "bob", "GET", "/requests/req-plain", nil).Body.String()
	if strings.Contains(plain, "<dt>Reads</dt>") || strings.Contains(plain, "<dt>Also needs</dt>") {
		t.Error("a plain request shows the copy rows")
	}
}

func TestPagesRequesterSeesNoApproveButton(t *testing.T) {
	h := newTestPages(t, newFakeWorkflow(requestFixtures()...))
	body := do(h, "alice", "GET", "/requests/req-pending", nil).Body.String()
	if strings.Contains(body, `id="approve"`) {
		t.Error("the requester sees an approve button")
	}
	if !strings.Contains(body, "you cannot approve it") {
		t.Error("the requester is not told why there is no approve button")
	}
	if !strings.Contains(body, `>Withdraw request</button>`) {
		t.Error("the requester cannot withdraw")
	}
	// An approver sees both buttons; one who already approved sees no approve button.
	body = do(h, "bob", "GET", "/requests/req-pending", nil).Body.String()
	if !strings.Contains(body, `id="approve"`) || !strings.Contains(body, `id="deny"`) {
		t.Error("the approver has no approve and deny buttons")
	}
	body = do(h, "bob", "GET", "/requests/req-two", nil).Body.String()
	if strings.Contains(body, `id="approve"`) || !strings.Contains(body, "You have approved this request. It needs 1 more approval") {
		t.Error("bob, who approved already, still gets an approve button or no explanation")
	}
	// A decided request has no form at all.
	body = do(h, "carol", "GET", "/requests/req-approved", nil).Body.String()
	if strings.Contains(body, "<form method=\"post\" action=\"/requests/") {
		t.Error("a decided request still has a decision form")
	}
}

func TestPagesDecideCSRF(t *testing.T) {
	for name, form := range map[string]url.Values{
		"missing": {"comment": {"ok"}},
		"wrong":   {"comment": {"ok"}, authn.CSRFField: {"csrf-alice"}},
	} {
		t.Run(name, func(t *testing.T) {
			wf := newFakeWorkflow(requestFixtures()...)
			h := newTestPages(t, wf)
			w := do(h, "bob", "POST", "/requests/req-pending/approve", form)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d", w.Code)
			}
			if !strings.Contains(w.Body.String(), "Nothing was changed: the form was not accepted") {
				t.Errorf("no clear message:\n%s", w.Body)
			}
			if wf.calls != 0 {
				t.Error("the workflow was called despite the failed CSRF check")
			}
			if r, _ := wf.Get(context.Background(), "req-pending"); r.State != approval.StatePending || len(r.Approvals) != 0 {
				t.Errorf("request changed: %+v", r)
			}
		})
	}
}

func TestPagesDecide(t *testing.T) {
	cases := []struct {
		name, user, target, comment string
		status                      int
		location, message           string
		state                       approval.State
	}{
		{"approve", "bob", "/requests/req-pending/approve", "go ahead", 303, "/requests/req-pending?done=approved", "", approval.StateApproved},
		{"second approver", "carol", "/requests/req-two/approve", "", 303, "/requests/req-two?done=approved", "", approval.StateApproved},
		{"first of two", "carol", "/requests/req-pair/approve", "", 303, "/requests/req-pair?done=approval_added", "", approval.StatePending},
		{"deny", "bob", "/requests/req-pending/deny", "not now", 303, "/requests/req-pending?done=denied", "", approval.StateDenied},
		{"withdraw", "alice", "/requests/req-pending/deny", "", 303, "/requests/req-pending?done=withdrawn", "", approval.StateDenied},
		{"self approval", "alice", "/requests/req-pending/approve", "", 403, "", "you cannot approve your own request", approval.StatePending},
		{"already approved", "bob", "/requests/req-two/approve", "", 409, "", "You have already approved this request", approval.StatePending},
		{"already decided", "carol", "/requests/req-approved/deny", "", 409, "", "this request is already approved", approval.StateApproved},
		{"not an approver", "dave", "/requests/req-pending/approve", "", 404, "", "no such request, or you may not see it", approval.StatePending},
		{"too long", "bob", "/requests/req-pending/approve", strings.Repeat("é", maxComment+1), 400, "", "limited to 1000 characters", approval.StatePending},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wf := newFakeWorkflow(requestFixtures()...)
			h := newTestPages(t, wf)
			w := do(h, c.user, "POST", c.target, withCSRF(c.user, c.comment))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d\n%s", w.Code, c.status, w.Body)
			}
			if got := w.Header().Get("Location"); got != c.location {
				t.Errorf("Location %q, want %q", got, c.location)
			}
			if c.message != "" && !strings.Contains(w.Body.String(), c.message) {
				t.Errorf("page lacks %q:\n%s", c.message, w.Body)
			}
			id := strings.Split(c.target, "/")[2]
			if r, _ := wf.Get(context.Background(), id); r.State != c.state {
				t.Errorf("state %s, want %s", r.State, c.state)
			}
			if c.status >= 400 && c.status != 404 && c.comment != "" && !strings.Contains(w.Body.String(), ">"+c.comment[:4]) {
				t.Errorf("the refused comment is not kept in the form")
			}
			if c.status == 303 {
				// The page the redirect leads to shows the flash.
				page := do(h, c.user, "GET", c.location, nil)
				if page.Code != 200 || !strings.Contains(page.Body.String(), `class="notice ok" role="status"`) {
					t.Errorf("no flash after redirect: %d", page.Code)
				}
			}
		})
	}
}

// readEvent reads one server-sent event (skipping comments and retry lines) and returns its
// name and data.
func readEvent(t *testing.T, r *bufio.Reader) (string, string, error) {
	t.Helper()
	var name, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

type liveState struct {
	State     string `json:"state"`
	Have      int    `json:"have"`
	Needed    int    `json:"needed"`
	Summary   string `json:"summary"`
	Approvals []struct {
		By      string `json:"by"`
		Comment string `json:"comment"`
	} `json:"approvals"`
	DeniedBy    string `json:"denied_by"`
	DenyComment string `json:"deny_comment"`
}

// The event stream sends the request at once, again after each change (a partial approval
// too), and ends when the request is decided. No timing: the fake's Changes channel says when
// the page is watching, and each read blocks until the next event.
func TestPagesEventsStream(t *testing.T) {
	for name, wrap := range map[string]func(*fakeWorkflow) Workflow{
		"changes": func(f *fakeWorkflow) Workflow { return f },
		"wait":    func(f *fakeWorkflow) Workflow { return waitOnly{f} },
	} {
		t.Run(name, func(t *testing.T) {
			wf := newFakeWorkflow(requestFixtures()...)
			srv := httptest.NewServer(newTestPages(t, wrap(wf)))
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/requests/req-two/events", nil)
			req.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: "alice"})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events := bufio.NewReader(resp.Body)
			next := func() liveState {
				t.Helper()
				name, data, err := readEvent(t, events)
				if err != nil {
					t.Fatalf("read event: %v", err)
				}
				var s liveState
				if name != "request" || json.Unmarshal([]byte(data), &s) != nil {
					t.Fatalf("event %q %q", name, data)
				}
				return s
			}
			if s := next(); s.State != "pending" || s.Have != 1 || s.Needed != 1 {
				t.Fatalf("first event: %+v", s)
			}
			<-wf.watching // the stream is subscribed: a change now cannot be missed

			// A change that leaves the request pending (another deny attempt refused does not
			// count): carol's approval completes the two-person rule.
			if _, err := wf.Approve(ctx, "req-two", carol, "second"); err != nil {
				t.Fatal(err)
			}
			s := next()
			if s.State != "approved" || s.Have != 2 || len(s.Approvals) != 2 || s.Approvals[1].By != "carol@example.com" ||
				!strings.Contains(s.Summary, "bob@example.com, carol@example.com") {
				t.Fatalf("after approval: %+v", s)
			}
			if _, _, err := readEvent(t, events); err != io.EOF {
				t.Fatalf("stream did not end after the decision: %v", err)
			}
		})
	}
}

// A partial approval (one of two) is sent at once too, then the denial ends the stream.
func TestPagesEventsPartialThenDeny(t *testing.T) {
	r := heldRequest("req-3")
	r.Approvers.Count = 2
	wf := newFakeWorkflow(r)
	srv := httptest.NewServer(newTestPages(t, wf))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/requests/req-3/events", nil)
	req.AddCookie(&http.Cookie{Name: authn.SessionCookie, Value: "bob"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := bufio.NewReader(resp.Body)
	read := func() liveState {
		t.Helper()
		_, data, err := readEvent(t, events)
		if err != nil {
			t.Fatal(err)
		}
		var s liveState
		_ = json.Unmarshal([]byte(data), &s)
		return s
	}
	if s := read(); s.Have != 0 || s.Needed != 2 {
		t.Fatalf("first: %+v", s)
	}
	<-wf.watching
	if _, err := wf.Approve(ctx, "req-3", carol, ""); err != nil {
		t.Fatal(err)
	}
	if s := read(); s.State != "pending" || s.Have != 1 || s.Needed != 1 {
		t.Fatalf("after one approval: %+v", s)
	}
	if _, err := wf.Deny(ctx, "req-3", bob, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if s := read(); s.State != "denied" || s.DeniedBy != "bob@example.com" || s.DenyComment != "changed my mind" {
		t.Fatalf("after deny: %+v", s)
	}
	if _, _, err := readEvent(t, events); err != io.EOF {
		t.Fatalf("stream did not end: %v", err)
	}
}

func TestPagesEventsNotVisible(t *testing.T) {
	h := newTestPages(t, newFakeWorkflow(requestFixtures()...))
	if w := do(h, "dave", "GET", "/requests/req-pending/events", nil); w.Code != http.StatusNotFound {
		t.Fatalf("dave's events: %d", w.Code)
	}
}

func TestNotConfigured(t *testing.T) {
	for _, target := range []string{"/requests", "/requests/abc", "/requests/abc/approve"} {
		w := httptest.NewRecorder()
		NotConfigured().ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "needs a login") || !strings.Contains(w.Body.String(), "<code>oidc</code>") {
			t.Errorf("%s: %d\n%s", target, w.Code, w.Body)
		}
		if w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: no security headers", target)
		}
	}
}

func TestRelativeTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-10 * time.Second: "just now", -7 * time.Minute: "7 minutes ago", -65 * time.Minute: "65 minutes ago",
		-26 * time.Hour: "26 hours ago", -72 * time.Hour: "3 days ago", 24*time.Hour - 7*time.Minute: "in 24 hours",
		time.Minute: "in 1 minute",
	} {
		if got := relative(testNow.Add(d), testNow); got != want {
			t.Errorf("relative(%s) = %q, want %q", d, got, want)
		}
	}
}
