package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Filter selects events for a live subscriber. Empty fields match everything.
type Filter struct {
	// Identity matches the subject or the email (case-insensitive).
	Identity string
	// Action is a glob over the IAM action name, case-insensitive: "*" is any run of
	// characters (including ':' and '/'), "?" one character. E.g. "ec2:*", "*Delete*".
	Action   string
	Decision string
	Kind     string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Event) bool {
	if f.Kind != "" && !strings.EqualFold(f.Kind, e.Kind) {
		return false
	}
	if f.Decision != "" && !strings.EqualFold(f.Decision, e.Decision) {
		return false
	}
	if f.Identity != "" && !strings.EqualFold(f.Identity, e.Identity.Subject) &&
		!strings.EqualFold(f.Identity, e.Identity.Email) {
		return false
	}
	if f.Action != "" && !MatchGlob(f.Action, e.Action) {
		return false
	}
	return true
}

// MatchGlob matches s against pattern ("*" any run, "?" one byte), ignoring ASCII case.
func MatchGlob(pattern, s string) bool {
	// Iterative matcher with backtracking to the last star: linear in practice, no recursion.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || lower(pattern[p]) == lower(s[i])):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

type subscriber struct {
	filter  Filter
	ch      chan Event
	once    sync.Once
	dropped atomic.Uint64
}

// Subscribe returns a channel of the events recorded from now on that pass f: this replica's
// and, with a shared store (Redis), the other replicas', in the order of the store stream (the
// chain's order). While a Log has subscribers, one goroutine reads the stream as it grows (a
// blocking read that the store answers as soon as any replica appends) and hands each event to
// them; with no subscriber, nothing is read or sent. Delivery is best effort: a subscriber that
// does not keep up loses events (counted in the metrics) rather than slowing anyone; use Since
// to fill gaps. Call the returned function to unsubscribe; the channel is then closed. The
// channel is also closed when the Log closes.
func (l *Log) Subscribe(f Filter) (<-chan Event, func()) {
	s := &subscriber{filter: f, ch: make(chan Event, l.liveBuffer)}
	l.subsMu.Lock()
	if l.subs == nil { // closed
		l.subsMu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	l.subs[s] = struct{}{}
	l.nsubs.Add(1)
	l.subsMu.Unlock()
	if l.tailer != nil {
		l.startTail()
	}
	return s.ch, func() {
		l.subsMu.Lock()
		if _, ok := l.subs[s]; ok {
			delete(l.subs, s)
			l.nsubs.Add(-1)
			s.once.Do(func() { close(s.ch) })
		}
		l.subsMu.Unlock()
	}
}

// startTail starts the goroutine that reads the stream for the subscribers, unless it runs. It
// finds the stream's end first, before Subscribe returns, so that what is recorded after
// Subscribe returns, on any replica, reaches the new subscriber.
func (l *Log) startTail() {
	l.tailMu.Lock()
	defer l.tailMu.Unlock()
	if l.tailing || l.bg.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(l.bg, tailRetry)
	_, cursor, err := l.tailer.Tail(ctx, l.cfg.Stream, "$", 1, 0)
	cancel()
	if err != nil {
		l.tailFailed(err)
		cursor = "$" // the tailer resolves it when the store is back
	}
	l.tailing = true
	go l.tail(cursor)
}

// tail reads the stream after cursor and fans each event out to the subscribers, until the Log
// closes or has no subscriber left (checked under tailMu, so that a Subscribe racing with the
// exit starts a new tailer).
func (l *Log) tail(cursor string) {
	for {
		l.tailMu.Lock()
		if l.nsubs.Load() == 0 || l.bg.Err() != nil {
			l.tailing = false
			l.tailMu.Unlock()
			return
		}
		l.tailMu.Unlock()

		entries, next, err := l.tailer.Tail(l.bg, l.cfg.Stream, cursor, tailBatch, tailBlock)
		if err != nil {
			if l.bg.Err() != nil {
				continue // closed: the check above ends the loop
			}
			l.tailFailed(err)
			select {
			case <-time.After(tailRetry):
			case <-l.bg.Done():
			}
			continue
		}
		cursor = next
		for _, entry := range entries {
			var e Event
			if err := unmarshalEvent(entry.Value, &e); err != nil {
				l.tailFailed(fmt.Errorf("stream entry %s: %w", entry.ID, err))
				continue
			}
			l.fanOut(&e)
		}
	}
}

// tailFailed counts a failed read of the stream for live subscribers and logs it (they miss
// events until the store answers again; the stream itself has them).
func (l *Log) tailFailed(err error) {
	if l.stats.tailFailures.Add(1)%100 == 1 { // the first, then every hundredth
		l.logger.Warn("audit: reading the stream for live subscribers failed", "error", err,
			"failures", l.stats.tailFailures.Load())
	}
}

func (l *Log) fanOut(e *Event) {
	if l.nsubs.Load() == 0 {
		return
	}
	l.subsMu.RLock()
	defer l.subsMu.RUnlock()
	for s := range l.subs {
		if !s.filter.Match(e) {
			continue
		}
		select {
		case s.ch <- *e:
		default:
			s.dropped.Add(1)
			l.stats.liveDropped.Add(1)
		}
	}
}

func (l *Log) closeSubscribers() {
	l.subsMu.Lock()
	defer l.subsMu.Unlock()
	for s := range l.subs {
		s.once.Do(func() { close(s.ch) })
	}
	l.subs = nil
	l.nsubs.Store(0)
}

// unmarshalEvent decodes one JSON line.
func unmarshalEvent(line []byte, e *Event) error { return json.Unmarshal(line, e) }
