package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The fixed-rate pass is open-loop: calls start on a fixed schedule whatever the answers do,
// each in its own goroutine, so a slow answer never delays the next call, and each latency
// counts from the moment its call was due, not from when it was sent. A closed loop (the load
// pass) hides queueing: a stalled worker sends nothing while it waits, so the calls that would
// have waited behind the stall are never measured (coordinated omission).

// schedule is a fixed-rate arrival schedule: call i is due at start + i/rate. Times are
// computed from i, not accumulated, so that the schedule does not drift.
type schedule struct {
	start time.Time
	rate  float64 // calls per second, > 0
}

// at is when call i is due.
func (s schedule) at(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
}

// due is how many calls are due by t (calls 0 .. due-1).
func (s schedule) due(t time.Time) int64 {
	if t.Before(s.start) {
		return 0
	}
	n := int64(t.Sub(s.start).Seconds()*s.rate) + 1
	// Guard the float rounding at the boundaries: call n-1 must be due, call n must not.
	for n > 0 && s.at(n-1).After(t) {
		n--
	}
	for !s.at(n).After(t) {
		n++
	}
	return n
}

// rateResult is one mode's fixed-rate measurement.
type rateResult struct {
	mode      string
	rate      float64 // scheduled calls/s
	scheduled int64   // measured calls (after the warm-up)
	errors    int64
	firstErr  string
	elapsed   time.Duration   // from the first measured call's due time to the last answer
	latencies []time.Duration // from due time to answer, sorted
	lags      []time.Duration // from due time to the call's start (the client's own lateness), sorted
	commits   []time.Duration // Airlock modes: each decision event's Record, sorted
}

func (r rateResult) merge(o rateResult) rateResult {
	r.mode, r.rate = o.mode, o.rate
	r.scheduled += o.scheduled
	r.errors += o.errors
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.latencies = mergeSorted(r.latencies, o.latencies)
	r.lags = mergeSorted(r.lags, o.lags)
	r.commits = mergeSorted(r.commits, o.commits)
	return r
}

func (r rateResult) pct(p float64) time.Duration    { return pctOf(r.latencies, p) }
func (r rateResult) achieved() float64              { return float64(len(r.latencies)) / r.elapsed.Seconds() }
func (r rateResult) lagPct(p float64) time.Duration { return pctOf(r.lags, p) }

// runRate sends the workload at rate calls/s for warm (not measured) and then d. measured, if
// not nil, is called when the first measured call is due.
func runRate(mode string, c *signedClient, rate float64, warm, d time.Duration, measured func()) rateResult {
	ctx := context.Background()
	s := schedule{start: time.Now().Add(10 * time.Millisecond), rate: rate}
	first := s.due(s.start.Add(warm))
	total := s.due(s.start.Add(warm + d))
	lat := make([]time.Duration, total)
	lag := make([]time.Duration, total)
	failed := make([]bool, total)
	var firstErr sync.Once
	res := rateResult{mode: mode, rate: rate, scheduled: total - first}
	var wg sync.WaitGroup
	for i := range total {
		at := s.at(i)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		if i == first && measured != nil {
			measured()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lag[i] = time.Since(at)
			o := &workload[int(i)%len(workload)]
			req, err := c.request(ctx, o, nil, 0, "")
			if err != nil {
				panic(err)
			}
			status, _, err := c.do(req)
			lat[i] = time.Since(at)
			if err != nil || status >= 300 {
				failed[i] = true
				if err == nil {
					err = fmt.Errorf("%s: HTTP %d", o.name, status)
				}
				if i >= first {
					firstErr.Do(func() { res.firstErr = err.Error() })
				}
			}
		}()
	}
	wg.Wait()
	var end time.Time
	for i := first; i < total; i++ {
		if done := s.at(i).Add(lat[i]); done.After(end) {
			end = done
		}
		res.lags = append(res.lags, lag[i])
		if failed[i] {
			res.errors++
			continue
		}
		res.latencies = append(res.latencies, lat[i])
	}
	res.elapsed = end.Sub(s.at(first))
	slices.Sort(res.latencies)
	slices.Sort(res.lags)
	return res
}

func printRate(o options, rs []rateResult, capacity map[string]float64) {
	fmt.Printf("### Fixed-rate (open-loop) control-plane calls: %.0f calls/s on a fixed schedule, %s per mode in %d interleaved turns\n\n", o.rate, o.duration, max(o.rounds, 1))
	fmt.Println("| mode | calls | errors | achieved calls/s | utilisation (rate ÷ closed-loop calls/s) | p50 ms | p99 ms | p99.9 ms | max ms | client lateness p99 ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		util := "–"
		if c := capacity[r.mode]; c > 0 {
			util = fmt.Sprintf("%.2f", r.rate/c)
		}
		fmt.Printf("| %s | %d | %d | %.0f | %s | %s | %s | %s | %s | %s |\n", r.mode, r.scheduled, r.errors, r.achieved(), util,
			ms(r.pct(.5)), ms(r.pct(.99)), ms(r.pct(.999)), ms(r.pct(1)), ms(r.lagPct(.99)))
	}
	for _, r := range rs {
		if r.firstErr != "" {
			fmt.Printf("\nfirst error in %s: %s\n", r.mode, r.firstErr)
		}
	}
	direct, plain := rs[0], rs[1]
	fmt.Println()
	fmt.Println("| run | p50 added over direct ms | p99 added over direct ms | p99.9 added over direct ms | p50 added over plain proxy ms | p99 added over plain proxy ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, r := range rs[1:] {
		overPlain50, overPlain99 := "–", "–"
		if r.mode != plain.mode {
			overPlain50, overPlain99 = ms(r.pct(.5)-plain.pct(.5)), ms(r.pct(.99)-plain.pct(.99))
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.mode, ms(r.pct(.5)-direct.pct(.5)), ms(r.pct(.99)-direct.pct(.99)),
			ms(r.pct(.999)-direct.pct(.999)), overPlain50, overPlain99)
	}
	fmt.Println()
	fmt.Println("Decision event commit: the time Airlock's audit Record takes for each call's decision event (written durably to the store stream and the file before the call is forwarded), during the measured part of this pass.")
	fmt.Println()
	fmt.Println("| run | decision events | p50 ms | p99 ms | p99.9 ms | max ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		if len(r.commits) == 0 {
			continue
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s |\n", r.mode, len(r.commits), ms(pctOf(r.commits, .5)), ms(pctOf(r.commits, .99)),
			ms(pctOf(r.commits, .999)), ms(pctOf(r.commits, 1)))
	}
	fmt.Println()
	fmt.Println("Latency counts from the moment each call was due on the schedule (so a stall delays every call due during it, as it would for real clients), to the end of its answer; it includes the client's signing, the same in every mode. Client lateness is how late the call's goroutine started against its due time (the machine's own scheduling delay, in every mode). Utilisation is the rate over the mode's calls/s in the closed-loop pass of this run (– when that pass was skipped).")
	fmt.Println()
}
