package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// WebhookConfig ships events to a SIEM: batches POSTed as a JSON array of events.
type WebhookConfig struct {
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>" (the caller resolves it from
	// the config's token_env; it is never logged).
	Token string
	// BatchSize is the most events in one POST (default 100).
	BatchSize int
	// Interval is how long a partial batch waits before it is sent (default 1s).
	Interval time.Duration
	// MaxBuffer bounds the events held while the SIEM is slow or down (default 10,000); beyond
	// it the oldest are dropped and counted.
	MaxBuffer int
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between failed attempts
	// (defaults 500ms and 30s). A failed batch is retried until it is delivered or dropped.
	RetryMin, RetryMax time.Duration
	// Client defaults to a client with Timeout.
	Client *http.Client
}

// CheckAndSetDefaults fills defaults.
func (c *WebhookConfig) CheckAndSetDefaults() error {
	if c.URL == "" {
		return errors.New("audit: webhook URL is required")
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = 10_000
	}
	if c.MaxBuffer < c.BatchSize {
		c.MaxBuffer = c.BatchSize
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 500 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(30*time.Second, c.RetryMin)
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	return nil
}

// WebhookHealth is the state of the webhook sink.
type WebhookHealth struct {
	Queued        int           `json:"queued"`   // events waiting, including the batch in flight
	Dropped       uint64        `json:"dropped"`  // events dropped because the buffer was full
	Sent          uint64        `json:"sent"`     // events delivered
	Failures      uint64        `json:"failures"` // failed POSTs
	Lag           time.Duration `json:"lag"`      // age of the oldest event waiting
	LastError     string        `json:"last_error,omitempty"`
	LastErrorAt   time.Time     `json:"last_error_at,omitzero"`
	LastSuccessAt time.Time     `json:"last_success_at,omitzero"`
}

type queuedLine struct {
	line []byte
	at   time.Time
}

// webhookSink owns one goroutine that batches, posts and retries. enqueue never blocks.
type webhookSink struct {
	cfg    WebhookConfig
	now    func() time.Time
	logger *slog.Logger

	mu       sync.Mutex
	queue    []queuedLine // ring buffer of MaxBuffer
	head, n  int
	inFlight []queuedLine
	health   WebhookHealth
	wake     chan struct{}
	done     chan struct{}
	stop     context.CancelFunc
}

func newWebhookSink(ctx context.Context, cfg WebhookConfig, now func() time.Time, logger *slog.Logger) *webhookSink {
	ctx, stop := context.WithCancel(ctx)
	w := &webhookSink{
		cfg: cfg, now: now, logger: logger,
		queue: make([]queuedLine, cfg.MaxBuffer),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		stop:  stop,
	}
	go w.run(ctx)
	return w
}

// enqueue copies nothing: line must not be modified afterwards.
func (w *webhookSink) enqueue(line []byte) {
	w.mu.Lock()
	if w.n == len(w.queue) { // full: drop the oldest
		w.queue[w.head] = queuedLine{}
		w.head = (w.head + 1) % len(w.queue)
		w.n--
		w.health.Dropped++
	}
	w.queue[(w.head+w.n)%len(w.queue)] = queuedLine{line: line, at: w.now()}
	w.n++
	full := w.n >= w.cfg.BatchSize
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// take moves up to BatchSize events from the queue to the in-flight batch.
func (w *webhookSink) take() []queuedLine {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := min(w.n, w.cfg.BatchSize)
	batch := make([]queuedLine, k)
	for i := range k {
		batch[i] = w.queue[(w.head+i)%len(w.queue)]
		w.queue[(w.head+i)%len(w.queue)] = queuedLine{}
	}
	w.head = (w.head + k) % len(w.queue)
	w.n -= k
	w.inFlight = batch
	return batch
}

func (w *webhookSink) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *webhookSink) run(ctx context.Context) {
	defer close(w.done)
	ticker := time.NewTicker(w.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-ticker.C:
		}
		for w.queued() > 0 {
			batch := w.take()
			if !w.deliver(ctx, batch) {
				return
			}
			if w.queued() < w.cfg.BatchSize {
				break // wait for the interval for a fuller batch
			}
		}
	}
}

// deliver posts batch until it succeeds; it returns false when ctx ends first.
func (w *webhookSink) deliver(ctx context.Context, batch []queuedLine) bool {
	body := encodeBatch(batch)
	backoff := w.cfg.RetryMin
	for {
		err := w.post(ctx, body)
		w.mu.Lock()
		if err == nil {
			w.health.Sent += uint64(len(batch))
			w.health.LastSuccessAt = w.now()
			w.inFlight = nil
			w.mu.Unlock()
			return true
		}
		w.health.Failures++
		w.health.LastError = err.Error()
		w.health.LastErrorAt = w.now()
		w.mu.Unlock()
		w.logger.Warn("audit: webhook delivery failed; retrying", "error", err, "events", len(batch), "retry_in", backoff)
		// full jitter in [backoff/2, backoff)
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, w.cfg.RetryMax)
	}
}

func encodeBatch(batch []queuedLine) []byte {
	size := 2
	for _, q := range batch {
		size += len(q.line) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, q := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, q.line...)
	}
	return append(body, ']')
}

func (w *webhookSink) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "airlock-audit")
	if w.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.cfg.Token)
	}
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // drop the URL: it may carry a secret
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post: status %d", resp.StatusCode)
	}
	return nil
}

// close tries to deliver what is queued until ctx ends, then stops.
func (w *webhookSink) close(ctx context.Context) {
	w.mu.Lock()
	inFlight := w.inFlight
	w.mu.Unlock()
	// Stop the background loop (it may be in a backoff wait), then flush here.
	w.stop()
	<-w.done
	if len(inFlight) > 0 {
		w.mu.Lock()
		w.inFlight = nil
		w.mu.Unlock()
		if !w.flushOnce(ctx, inFlight) {
			return
		}
	}
	for w.queued() > 0 {
		if !w.flushOnce(ctx, w.take()) {
			return
		}
	}
}

func (w *webhookSink) flushOnce(ctx context.Context, batch []queuedLine) bool {
	err := w.post(ctx, encodeBatch(batch))
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.health.Failures++
		w.health.LastError = err.Error()
		w.health.LastErrorAt = w.now()
		w.logger.Warn("audit: webhook events not delivered before close", "events", len(batch)+w.n, "error", err)
		return false
	}
	w.health.Sent += uint64(len(batch))
	w.health.LastSuccessAt = w.now()
	w.inFlight = nil
	return true
}

func (w *webhookSink) snapshot() WebhookHealth {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.health
	h.Queued = w.n + len(w.inFlight)
	var oldest time.Time
	if len(w.inFlight) > 0 {
		oldest = w.inFlight[0].at
	} else if w.n > 0 {
		oldest = w.queue[w.head].at
	}
	if !oldest.IsZero() {
		h.Lag = w.now().Sub(oldest)
	}
	return h
}
