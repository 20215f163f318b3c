package audit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// siem is a webhook receiver that can be told to fail.
type siem struct {
	failing  atomic.Bool
	requests atomic.Int64
	mu       sync.Mutex
	batches  [][]Event
	auth     string
}

func (s *siem) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.failing.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var batch []Event
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.batches = append(s.batches, batch)
	s.auth = r.Header.Get("Authorization")
	s.mu.Unlock()
}

func (s *siem) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookBatchesAndRetries(t *testing.T) {
	s := &siem{}
	s.failing.Store(true)
	srv := httptest.NewServer(s)
	defer srv.Close()
	l := newTestLog(t, LogConfig{Webhook: WebhookConfig{URL: srv.URL, Token: "siem-token", BatchSize: 10,
		Interval: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond}})
	for i := range 35 {
		if err := l.Record(context.Background(), sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "retries", func() bool { return s.requests.Load() >= 3 })
	h := l.Health()
	if h.Webhook == nil || h.Webhook.Failures == 0 || h.Webhook.Queued != 35 || len(h.Problems(time.Now())) == 0 {
		t.Fatalf("health while the SIEM is down: %+v", h.Webhook)
	}
	s.failing.Store(false)
	waitUntil(t, "delivery", func() bool { return len(s.events()) == 35 })
	got := s.events()
	for i, e := range got {
		if e.RequestID != sampleEvent(i).RequestID {
			t.Fatalf("event %d out of order: %s", i, e.RequestID)
		}
	}
	s.mu.Lock()
	for _, b := range s.batches {
		if len(b) > 10 {
			t.Fatalf("batch of %d events, BatchSize 10", len(b))
		}
	}
	if s.auth != "Bearer siem-token" {
		t.Fatalf("Authorization %q", s.auth)
	}
	s.mu.Unlock()
	waitUntil(t, "healthy", func() bool { return len(l.Health().Problems(time.Now())) == 0 })
}

func TestWebhookOutageDropsOldestNeverBlocks(t *testing.T) {
	s := &siem{}
	s.failing.Store(true)
	srv := httptest.NewServer(s)
	defer srv.Close()
	l := newTestLog(t, LogConfig{Webhook: WebhookConfig{URL: srv.URL, BatchSize: 10, MaxBuffer: 50,
		Interval: 10 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}})
	start := time.Now()
	const n = 2000
	for i := range n {
		if err := l.Record(context.Background(), sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Record took %v with the SIEM down", d)
	}
	waitUntil(t, "queue drained into the webhook", func() bool { return len(l.async) == 0 })
	time.Sleep(50 * time.Millisecond)
	h := l.Health().Webhook
	if h.Queued > 50+10 || h.Dropped == 0 || h.Lag <= 0 {
		t.Fatalf("bounded buffer: %+v", h)
	}
	// The metrics show it.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(l.Collectors()...)
	if c, err := testutil.GatherAndCount(reg, "airlock_audit_sink_dropped_total", "airlock_audit_sink_queue_length"); err != nil || c == 0 {
		t.Fatalf("metrics: %d %v", c, err)
	}
	s.failing.Store(false)
	waitUntil(t, "recovery", func() bool { return l.Health().Webhook.Queued == 0 })
	got := s.events()
	if uint64(len(got))+l.Health().Webhook.Dropped+l.Health().AsyncDropped != n {
		t.Fatalf("delivered %d + dropped %d != %d", len(got), l.Health().Webhook.Dropped, n)
	}
	// Drop-oldest: the newest event made it.
	if got[len(got)-1].RequestID != sampleEvent(n-1).RequestID {
		t.Fatalf("newest event not delivered: %s", got[len(got)-1].RequestID)
	}
}
