package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestScheduleAtAndDue(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		rate float64
	}{{"500/s", 500}, {"300/s (a period that is not a whole number of ns)", 300}, {"7/s", 7}, {"0.5/s", 0.5}} {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule{start: start, rate: tt.rate}
			if !s.at(0).Equal(start) {
				t.Errorf("at(0) = %v, want the start", s.at(0))
			}
			// No drift: a whole number of seconds of calls ends exactly on the second.
			for _, secs := range []int64{1, 2, 600} {
				if float64(secs)*tt.rate != float64(int64(float64(secs)*tt.rate)) {
					continue
				}
				n := int64(float64(secs) * tt.rate)
				if got, want := s.at(n), start.Add(time.Duration(secs)*time.Second); !got.Equal(want) {
					t.Errorf("at(%d) = %v, want %v", n, got, want)
				}
			}
			if got := s.due(start.Add(-time.Nanosecond)); got != 0 {
				t.Errorf("due before the start = %d, want 0", got)
			}
			if got := s.due(start); got != 1 {
				t.Errorf("due at the start = %d, want 1 (call 0)", got)
			}
			// Around every one of the first calls' due times: due counts exactly the calls
			// whose time has come.
			for i := int64(1); i < 2000; i++ {
				at := s.at(i)
				if got := s.due(at); got != i+1 {
					t.Fatalf("due(at(%d)) = %d, want %d", i, got, i+1)
				}
				if got := s.due(at.Add(-time.Nanosecond)); got != i {
					t.Fatalf("due(just before at(%d)) = %d, want %d", i, got, i)
				}
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 1000; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	slices.Sort(lat)
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{.5, 500 * time.Millisecond}, {.99, 990 * time.Millisecond}, {.999, 999 * time.Millisecond}, {1, time.Second}, {0, time.Millisecond}} {
		if got := pctOf(lat, tt.p); got != tt.want {
			t.Errorf("p%v of 1..1000 ms = %v, want %v", tt.p*100, got, tt.want)
		}
	}
	if got := pctOf(nil, .99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
	// Merged turns are one sorted sample.
	a := rateResult{latencies: []time.Duration{1, 5, 9}, lags: []time.Duration{2}, scheduled: 3}
	b := rateResult{mode: "m", rate: 10, latencies: []time.Duration{2, 3}, lags: []time.Duration{1}, scheduled: 3, errors: 1}
	m := rateResult{}.merge(a).merge(b)
	if !slices.Equal(m.latencies, []time.Duration{1, 2, 3, 5, 9}) || !slices.Equal(m.lags, []time.Duration{1, 2}) ||
		m.scheduled != 6 || m.errors != 1 || m.mode != "m" {
		t.Errorf("merged = %+v", m)
	}
}

// A slow upstream does not slow the schedule: every due call is sent, many at once, and each
// latency counts from the due time, so it is at least the upstream's delay.
func TestRunRateIsOpenLoop(t *testing.T) {
	const delay = 40 * time.Millisecond
	var inFlight, maxInFlight, calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		n := inFlight.Add(1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		time.Sleep(delay)
		inFlight.Add(-1)
	}))
	defer srv.Close()
	c := &signedClient{http: newHTTPClient(64), base: srv.URL, signer: v4.NewSigner(),
		creds: aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}}

	const rate = 200
	r := runRate("test", c, rate, 100*time.Millisecond, 300*time.Millisecond, nil)
	s := schedule{rate: rate}
	warm, all := s.due(s.start.Add(100*time.Millisecond)), s.due(s.start.Add(400*time.Millisecond))
	if r.scheduled != all-warm || int64(len(r.latencies)) != r.scheduled || r.errors != 0 {
		t.Fatalf("scheduled %d, answered %d, errors %d (%s); want %d answered", r.scheduled, len(r.latencies), r.errors, r.firstErr, all-warm)
	}
	if calls.Load() != all {
		t.Errorf("upstream saw %d calls, want %d (warm-up included)", calls.Load(), all)
	}
	if maxInFlight.Load() < 2 {
		t.Errorf("at most %d call in flight: the schedule waited for answers", maxInFlight.Load())
	}
	if r.pct(0) < delay {
		t.Errorf("fastest latency %v is below the upstream's %v: not counted from the due time", r.pct(0), delay)
	}
	if len(r.lags) != int(r.scheduled) {
		t.Errorf("%d lateness samples for %d calls", len(r.lags), r.scheduled)
	}
}
