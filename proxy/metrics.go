package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus collectors. Other packages contribute their own
// collectors (audit sinks, credential cache) and the server registers them all together.
type Metrics struct {
	calls          *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	holdSeconds    *prometheus.HistogramVec
	upstreamSecs   *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
}

// NewMetrics creates the collectors (unregistered).
func NewMetrics() *Metrics {
	return &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_calls_total", Help: "Cloud calls decided, by cloud, decision and risk tier.",
		}, []string{"cloud", "decision", "risk"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_refusals_total", Help: "Calls refused, by cloud and error code.",
		}, []string{"cloud", "code"}),
		holdSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "airlock_hold_seconds", Help: "How long held calls waited, by outcome.",
			Buckets: []float64{.05, .1, .5, 1, 2, 5, 10, 15, 20, 25, 30, 60},
		}, []string{"outcome"}),
		upstreamSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "airlock_upstream_seconds", Help: "Time from receiving a call to the end of the upstream response, by cloud and status class.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"cloud", "status"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_upstream_errors_total", Help: "Upstream calls that failed without a response.",
		}, []string{"cloud"}),
	}
}

// Collectors lists the collectors for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.calls, m.refusals, m.holdSeconds, m.upstreamSecs, m.upstreamErrors}
}

func (m *Metrics) decided(cloud, decision, risk string) {
	m.calls.WithLabelValues(cloud, decision, risk).Inc()
}

func (m *Metrics) refused(cloud, code string) {
	if cloud == "" {
		cloud = "unknown"
	}
	m.refusals.WithLabelValues(cloud, code).Inc()
}

func (m *Metrics) observeHold(d time.Duration, outcome string) {
	if outcome == "" {
		outcome = "pending"
	}
	m.holdSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}

func (m *Metrics) forwarded(cloud string, status int, d time.Duration) {
	m.upstreamSecs.WithLabelValues(cloud, strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

func (m *Metrics) upstreamError(cloud string) {
	m.upstreamErrors.WithLabelValues(cloud).Inc()
}
