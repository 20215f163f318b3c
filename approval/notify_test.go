package approval

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/config"
)

// logRecords is a slog handler that hands every record to the test.
type logRecords struct {
	mu  sync.Mutex
	all []string
	ch  chan string
}

func newLogRecords() *logRecords { return &logRecords{ch: make(chan string, 1000)} }

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.all = append(l.all, b.String())
	l.mu.Unlock()
	select {
	case l.ch <- b.String():
	default:
	}
	return nil
}

// waitFor returns the first record starting with msg.
func (l *logRecords) waitFor(t *testing.T, msg string) string {
	t.Helper()
	for rec := range l.ch {
		if strings.HasPrefix(rec, msg) {
			return rec
		}
	}
	t.Fatalf("log channel closed before %q", msg)
	return ""
}

func testRequest() *Request {
	in := terminateInput(alice, "i-1")
	return &Request{
		ID: "abc123", State: StatePending, Requester: in.Identity, Action: in.Action, Target: in.Target,
		Context: RequestContext{Reason: "<!channel> kill it & go", Ticket: "OPS-1"}, Rule: "prod-destructive",
		Approvers: Approvers{Groups: []string{"sre-leads"}, Count: 1}, Grant: GrantTerms{TTL: time.Hour, Uses: 1, Scope: ScopeResource},
		URL: "https://airlock.example/requests/abc123",
	}
}

func fastOptions(log *logRecords) WebhookOptions {
	return WebhookOptions{Logger: slog.New(log), Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 50 * time.Millisecond}
}

func TestWebhookGenericAndSlackPayloads(t *testing.T) {
	bodies := make(chan []byte, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		bodies <- b
	}))
	defer srv.Close()
	t.Setenv("TEST_SLACK_URL", srv.URL+"/services/T000/B000/SECRET")
	n, err := NewWebhooks([]config.Notify{
		{Name: "siem", URL: srv.URL + "/generic"},
		{Name: "slack", URLEnv: "TEST_SLACK_URL", Format: "slack"},
	}, fastOptions(newLogRecords()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Notify(EventHeld, testRequest())

	var generic struct {
		Event   string   `json:"event"`
		Request *Request `json:"request"`
		URL     string   `json:"url"`
	}
	var slack struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	for range 2 {
		b := <-bodies
		if strings.Contains(string(b), `"blocks"`) {
			if err := json.Unmarshal(b, &slack); err != nil {
				t.Fatal(err)
			}
		} else if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
	}
	if generic.Event != "held" || generic.Request.ID != "abc123" || generic.URL != "https://airlock.example/requests/abc123" ||
		generic.Request.Action.IAMAction != "ec2:TerminateInstances" {
		t.Errorf("generic = %+v", generic)
	}
	if !strings.Contains(slack.Text, "<https://airlock.example/requests/abc123|Open request abc123>") ||
		!strings.Contains(slack.Text, "ec2:TerminateInstances") || len(slack.Blocks) != 2 {
		t.Errorf("slack = %+v", slack)
	}
	if strings.Contains(slack.Text, "<!channel>") || !strings.Contains(slack.Text, "&lt;!channel&gt; kill it &amp; go") {
		t.Errorf("slack text not escaped: %q", slack.Text)
	}
}

func TestWebhookRetriesUntilDelivered(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	delivered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		close(delivered)
	}))
	defer srv.Close()
	logs := newLogRecords()
	n, err := NewWebhooks([]config.Notify{{Name: "flaky", URL: srv.URL + "/hook"}}, fastOptions(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Notify(EventApproved, testRequest())
	<-delivered
	rec := logs.waitFor(t, "notification attempt failed")
	if !strings.Contains(rec, "notifier=flaky") || strings.Contains(rec, srv.URL) {
		t.Errorf("log record %q", rec)
	}
	n.Close()
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("%d calls, want 3", calls)
	}
}

func TestWebhookHangingEndpointNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	hung := make(chan struct{}, 100)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	got := make(chan string, 100)
	fine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Event string `json:"event"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		got <- p.Event
	}))
	defer fine.Close()
	logs := newLogRecords()
	opts := fastOptions(logs)
	opts.Attempts = 2
	n, err := NewWebhooks([]config.Notify{
		{Name: "hangs", URL: slow.URL + "/services/SECRET"},
		{Name: "fine", URL: fine.URL},
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Notify returns at once even though the first endpoint never answers.
	n.Notify(EventHeld, testRequest())
	n.Notify(EventDenied, testRequest())
	if e1, e2 := <-got, <-got; e1+e2 != "helddenied" && e1+e2 != "deniedheld" {
		t.Errorf("healthy webhook got %s, %s", e1, e2)
	}
	<-hung
	rec := logs.waitFor(t, "notification failed")
	if !strings.Contains(rec, "notifier=hangs") || !strings.Contains(rec, "attempts=2") || strings.Contains(rec, "SECRET") {
		t.Errorf("log record %q", rec)
	}
}

func TestWebhookQueueFullDropsInsteadOfBlocking(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	logs := newLogRecords()
	opts := fastOptions(logs)
	opts.QueueSize, opts.Workers, opts.Timeout = 1, 1, time.Hour
	n, err := NewWebhooks([]config.Notify{{Name: "hangs", URL: srv.URL}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for range 10 {
		n.Notify(EventHeld, testRequest())
	}
	if rec := logs.waitFor(t, "notification queue full"); !strings.Contains(rec, "notifier=hangs") {
		t.Errorf("log record %q", rec)
	}
}

func TestWebhookPermanentRefusalIsNotRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	logs := newLogRecords()
	n, err := NewWebhooks([]config.Notify{{Name: "gone", URL: srv.URL}}, fastOptions(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Notify(EventExpired, testRequest())
	if rec := logs.waitFor(t, "notification failed"); !strings.Contains(rec, "attempts=1") || !strings.Contains(rec, "HTTP 403") {
		t.Errorf("log record %q", rec)
	}
}

func TestNewWebhooksConfigErrors(t *testing.T) {
	_, err := NewWebhooks([]config.Notify{
		{Name: "a", URLEnv: "AIRLOCK_TEST_UNSET_WEBHOOK"},
		{Name: "b", URL: "not a url"},
	}, WebhookOptions{})
	if err == nil || !strings.Contains(err.Error(), "notify a: environment variable AIRLOCK_TEST_UNSET_WEBHOOK") ||
		!strings.Contains(err.Error(), "notify b: url must be") || strings.Contains(err.Error(), "not a url") {
		t.Errorf("err = %v", err)
	}
}
