package audit

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health is the state of the sinks, for /readyz and operators. A failing secondary sink never
// blocks calls; it shows here and in the metrics.
type Health struct {
	Recorded uint64 `json:"recorded"`
	// StoreFailures and FileFailures count events refused because a primary sink failed.
	StoreFailures      uint64    `json:"store_failures"`
	FileFailures       uint64    `json:"file_failures"`
	LastPrimaryError   string    `json:"last_primary_error,omitempty"`
	LastPrimaryErrorAt time.Time `json:"last_primary_error_at,omitzero"`
	// AsyncDropped counts events the secondary sinks missed because their queue was full.
	AsyncDropped   uint64 `json:"async_dropped"`
	LiveDropped    uint64 `json:"live_dropped"`
	StdoutFailures uint64 `json:"stdout_failures"`
	// LiveReadFailures counts failed reads of the stream for live subscribers.
	LiveReadFailures uint64         `json:"live_read_failures"`
	Webhook          *WebhookHealth `json:"webhook,omitempty"`
}

// Health returns the current state of the sinks.
func (l *Log) Health() Health {
	h := Health{
		Recorded:         l.stats.recorded.Load(),
		StoreFailures:    l.stats.storeFailures.Load(),
		FileFailures:     l.stats.fileFailures.Load(),
		AsyncDropped:     l.stats.asyncDropped.Load(),
		LiveDropped:      l.stats.liveDropped.Load(),
		StdoutFailures:   l.stats.stdoutFailures.Load(),
		LiveReadFailures: l.stats.tailFailures.Load(),
	}
	l.stats.mu.Lock()
	h.LastPrimaryError, h.LastPrimaryErrorAt = l.stats.lastPrimaryErr, l.stats.lastPrimaryErrAt
	l.stats.mu.Unlock()
	if l.webhook != nil {
		wh := l.webhook.snapshot()
		h.Webhook = &wh
	}
	return h
}

// Problems lists what an operator should know about, for the body of /readyz: a primary sink
// failure in the last minute, a webhook that is failing or dropping events. Empty means healthy.
func (h Health) Problems(now time.Time) []string {
	var out []string
	if h.LastPrimaryError != "" && now.Sub(h.LastPrimaryErrorAt) < time.Minute {
		out = append(out, "audit primary sink: "+h.LastPrimaryError)
	}
	if w := h.Webhook; w != nil {
		if w.LastError != "" && w.LastErrorAt.After(w.LastSuccessAt) {
			out = append(out, fmt.Sprintf("audit webhook failing: %s (%d queued, %d dropped)", w.LastError, w.Queued, w.Dropped))
		} else if w.Dropped > 0 {
			out = append(out, fmt.Sprintf("audit webhook dropped %d events", w.Dropped))
		}
	}
	if h.AsyncDropped > 0 {
		out = append(out, fmt.Sprintf("audit secondary sinks dropped %d events (queue full)", h.AsyncDropped))
	}
	return out
}

type metrics struct {
	recordSeconds prometheus.Histogram
	all           []prometheus.Collector
}

func newMetrics(l *Log) *metrics {
	m := &metrics{
		recordSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "airlock_audit_record_seconds",
			Help:    "Time to write an audit event to the primary sinks (store stream and file).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
	counter := func(name, help string, labels prometheus.Labels, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	failures := "Audit events a sink failed to take."
	dropped := "Audit events a secondary sink dropped to keep calls flowing."
	m.all = []prometheus.Collector{
		m.recordSeconds,
		counter("airlock_audit_events_total", "Audit events recorded.", nil, l.stats.recorded.Load),
		counter("airlock_audit_sink_failures_total", failures, prometheus.Labels{"sink": "store"}, l.stats.storeFailures.Load),
		counter("airlock_audit_sink_failures_total", failures, prometheus.Labels{"sink": "file"}, l.stats.fileFailures.Load),
		counter("airlock_audit_sink_failures_total", failures, prometheus.Labels{"sink": "stdout"}, l.stats.stdoutFailures.Load),
		counter("airlock_audit_sink_failures_total", failures, prometheus.Labels{"sink": "live"}, l.stats.tailFailures.Load),
		counter("airlock_audit_sink_dropped_total", dropped, prometheus.Labels{"sink": "async"}, l.stats.asyncDropped.Load),
		counter("airlock_audit_sink_dropped_total", dropped, prometheus.Labels{"sink": "live"}, l.stats.liveDropped.Load),
	}
	if w := l.webhook; w != nil {
		m.all = append(m.all,
			counter("airlock_audit_sink_failures_total", failures, prometheus.Labels{"sink": "webhook"},
				func() uint64 { return w.snapshot().Failures }),
			counter("airlock_audit_sink_dropped_total", dropped, prometheus.Labels{"sink": "webhook"},
				func() uint64 { return w.snapshot().Dropped }),
			counter("airlock_audit_webhook_sent_total", "Audit events delivered to the webhook.", nil,
				func() uint64 { return w.snapshot().Sent }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "airlock_audit_sink_queue_length",
				Help: "Audit events waiting for a secondary sink.", ConstLabels: prometheus.Labels{"sink": "webhook"}},
				func() float64 { return float64(w.snapshot().Queued) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "airlock_audit_sink_lag_seconds",
				Help: "Age of the oldest audit event waiting for a secondary sink.", ConstLabels: prometheus.Labels{"sink": "webhook"}},
				func() float64 { return w.snapshot().Lag.Seconds() }),
		)
	}
	m.all = append(m.all, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "airlock_audit_sink_queue_length",
		Help: "Audit events waiting for a secondary sink.", ConstLabels: prometheus.Labels{"sink": "async"}},
		func() float64 { return float64(len(l.async)) }))
	return m
}

func (m *metrics) collectors() []prometheus.Collector { return m.all }
