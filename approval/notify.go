package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/config"
)

// WebhookOptions tunes delivery; the zero value is fine for production.
type WebhookOptions struct {
	Client *http.Client
	Logger *slog.Logger
	// QueueSize bounds the notifications waiting to be sent (default 1000); beyond it new
	// ones are dropped and logged, never waited for.
	QueueSize int
	// Workers send in parallel (default 4), so one slow endpoint does not hold up the others.
	Workers int
	// Attempts per notification (default 5), the first retry after Backoff (default 1s), then
	// doubling up to MaxBackoff (default 1m), each with ±50% jitter.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
}

func (o *WebhookOptions) setDefaults() {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
}

// webhook is one configured endpoint. Its URL is a secret (Slack's is a bearer capability):
// it is never logged, only the name.
type webhook struct {
	name   string
	url    string
	format string // generic or slack
}

type delivery struct {
	hook      *webhook
	body      []byte
	event     string
	requestID string
	attempt   int // attempts made so far
}

// Webhooks is the Notifier for config.Notify: generic JSON webhooks and Slack incoming
// webhooks. Sending is asynchronous through a bounded queue with retries; a notification that
// cannot be sent is logged and dropped, and never blocks or changes the request.
type Webhooks struct {
	hooks []*webhook
	opts  WebhookOptions
	log   *slog.Logger
	queue chan delivery

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Notifier = (*Webhooks)(nil)

// NewWebhooks resolves the webhook URLs (url, or url_env) and starts the senders; Close
// stops them. No webhooks configured gives a Notifier that does nothing.
func NewWebhooks(cfg []config.Notify, opts WebhookOptions) (*Webhooks, error) {
	opts.setDefaults()
	n := &Webhooks{opts: opts, log: opts.Logger, queue: make(chan delivery, opts.QueueSize)}
	var errs []error
	for i, c := range cfg {
		h := &webhook{name: c.Name, url: c.URL, format: c.Format}
		if h.name == "" {
			h.name = fmt.Sprintf("notify[%d]", i)
		}
		if h.format == "" {
			h.format = "generic"
		}
		if c.URLEnv != "" {
			v, err := config.Secret(c.URLEnv)
			if err != nil {
				errs = append(errs, fmt.Errorf("notify %s: %w", h.name, err))
				continue
			}
			h.url = v
		}
		if u, err := url.Parse(h.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The value may be a secret: say what is wrong, not what it is.
			errs = append(errs, fmt.Errorf("notify %s: url must be an absolute http(s) URL", h.name))
			continue
		}
		if h.format != "generic" && h.format != "slack" {
			errs = append(errs, fmt.Errorf("notify %s: format must be generic or slack", h.name))
			continue
		}
		n.hooks = append(n.hooks, h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for range opts.Workers {
		n.wg.Add(1)
		go n.work()
	}
	return n, nil
}

// Close stops sending; queued and retrying notifications are dropped.
func (n *Webhooks) Close() error {
	n.cancel()
	n.wg.Wait()
	return nil
}

// Notify queues the event for every webhook and returns at once. The payload is built here,
// so r is not kept.
func (n *Webhooks) Notify(event string, r *Request) {
	for _, h := range n.hooks {
		body, err := payload(h.format, event, r)
		if err != nil {
			n.log.Error("build notification", "notifier", h.name, "event", event, "request_id", r.ID, "error", err)
			continue
		}
		n.enqueue(delivery{hook: h, body: body, event: event, requestID: r.ID})
	}
}

func (n *Webhooks) enqueue(d delivery) {
	if n.ctx.Err() != nil {
		return
	}
	select {
	case n.queue <- d:
	default:
		n.log.Error("notification queue full, notification dropped", "notifier", d.hook.name, "event", d.event, "request_id", d.requestID)
	}
}

func (n *Webhooks) work() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case d := <-n.queue:
			n.send(d)
		}
	}
}

// send makes one attempt; a failure that may pass is retried later from a timer, so that a
// worker never sleeps through a backoff while other notifications wait.
func (n *Webhooks) send(d delivery) {
	d.attempt++
	err := n.post(d)
	if err == nil {
		n.log.Debug("notification sent", "notifier", d.hook.name, "event", d.event, "request_id", d.requestID, "attempt", d.attempt)
		return
	}
	var perm permanentError
	if errors.As(err, &perm) || d.attempt >= n.opts.Attempts || n.ctx.Err() != nil {
		n.log.Error("notification failed", "notifier", d.hook.name, "event", d.event, "request_id", d.requestID,
			"attempts", d.attempt, "error", err)
		return
	}
	delay := n.backoff(d.attempt)
	n.log.Warn("notification attempt failed, will retry", "notifier", d.hook.name, "event", d.event,
		"request_id", d.requestID, "attempt", d.attempt, "retry_in", delay, "error", err)
	time.AfterFunc(delay, func() { n.enqueue(d) })
}

// backoff is Backoff·2^(attempt-1), capped, with ±50% jitter so that many retries spread out.
func (n *Webhooks) backoff(attempt int) time.Duration {
	d := n.opts.Backoff << min(attempt-1, 20)
	if d <= 0 || d > n.opts.MaxBackoff {
		d = n.opts.MaxBackoff
	}
	return d/2 + rand.N(d+1)
}

// permanentError is a refusal that retrying will not change (4xx other than 408/429).
type permanentError struct{ status int }

func (e permanentError) Error() string {
	return fmt.Sprintf("webhook refused the notification: HTTP %d", e.status)
}

func (n *Webhooks) post(d delivery) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.hook.url, bytes.NewReader(d.body))
	if err != nil {
		return errors.New("bad webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "airlock")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return withoutURL(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	default:
		return permanentError{resp.StatusCode}
	}
}

// withoutURL strips the URL that net/http puts in its errors: webhook URLs carry secrets.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// payload renders one notification in the webhook's format.
func payload(format, event string, r *Request) ([]byte, error) {
	if format == "slack" {
		return slackPayload(event, r)
	}
	return json.Marshal(struct {
		Event   string   `json:"event"`
		Request *Request `json:"request"`
		URL     string   `json:"url"`
	}{event, r, r.URL})
}

// slackPayload is an incoming-webhook message: text (for notifications and old clients) and
// blocks with a button to the request page.
func slackPayload(event string, r *Request) ([]byte, error) {
	what := fmt.Sprintf("*%s* wants `%s` on `%s`", slackEscape(r.Requester.Name()), slackEscape(r.Action.IAMAction), slackEscape(r.Target))
	if r.Action.Resource != "" {
		what += fmt.Sprintf(" (`%s`)", slackEscape(r.Action.Resource))
	}
	what += fmt.Sprintf(", risk %s", r.Action.Risk)
	var head string
	switch event {
	case EventHeld:
		head = fmt.Sprintf(":hourglass: Approval needed: %d from %s", r.Approvers.Count, slackEscape(strings.Join(r.Approvers.Groups, ", ")))
	case EventApproved:
		var names []string
		for _, a := range r.Approvals {
			names = append(names, a.By.Name())
		}
		head = ":white_check_mark: Approved by " + slackEscape(strings.Join(names, ", "))
	case EventDenied:
		by := ""
		if r.DeniedBy != nil {
			by = r.DeniedBy.Name()
		}
		head = ":no_entry: Denied by " + slackEscape(by)
		if r.Comment != "" {
			head += ": " + slackEscape(r.Comment)
		}
	case EventExpired:
		head = ":alarm_clock: Expired without a decision"
	default:
		head = slackEscape(event)
	}
	lines := []string{head, what}
	if r.Context.Reason != "" || r.Context.Ticket != "" {
		lines = append(lines, fmt.Sprintf("Reason: %s %s", slackEscape(r.Context.Ticket), slackEscape(r.Context.Reason)))
	}
	body := strings.Join(lines, "\n")
	text := fmt.Sprintf("%s\n<%s|Open request %s>", body, r.URL, r.ID)
	msg := map[string]any{
		"text": text,
		"blocks": []any{
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": body}},
			map[string]any{"type": "actions", "elements": []any{map[string]any{
				"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open request"}, "url": r.URL,
			}}},
		},
	}
	return json.Marshal(msg)
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters, so
// that a reason cannot inject links or mentions.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
