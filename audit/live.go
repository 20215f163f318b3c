package audit

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
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
// and, with a shared store (Redis), the other replicas'. Delivery is best effort: a subscriber
// that does not keep up loses events (counted in the metrics) rather than slowing Record; use
// Since to fill gaps. Call the returned function to unsubscribe; the channel is then closed.
// The channel is also closed when the Log closes.
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
