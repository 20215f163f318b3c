// Package memory is the embedded in-memory store: Airlock's default when no Redis is set. It is
// the same contract as store/redis for a single replica; state is lost on restart.
package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/store"
)

type item struct {
	value   []byte
	expires time.Time // zero: never
}

type streamEntry struct {
	id    streamID
	value []byte
}

type stream struct {
	entries []streamEntry // ordered by id
	last    streamID      // the last id handed out, even if trimmed since
	head    []byte
	// appended is closed (and cleared) by the next append; Tail creates it to wait for one.
	appended chan struct{}
}

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	items     map[string]item
	sets      map[string]map[string]struct{}
	streams   map[string]*stream
	subs      map[string]map[*subscription]struct{}
	closed    bool
	lastSweep time.Time
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.BatchAppender = (*Store)(nil)
	_ store.Tailer        = (*Store)(nil)
)

// New returns an empty store. now may be nil (time.Now); tests pass a fake clock.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:       now,
		items:     map[string]item{},
		sets:      map[string]map[string]struct{}{},
		streams:   map[string]*stream{},
		subs:      map[string]map[*subscription]struct{}{},
		lastSweep: now(),
	}
}

func (s *Store) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return s.now().Add(ttl)
}

// getLocked returns a live item, dropping it if expired.
func (s *Store) getLocked(key string) (item, bool) {
	it, ok := s.items[key]
	if !ok {
		return item{}, false
	}
	if it.expired(s.now()) {
		delete(s.items, key)
		return item{}, false
	}
	return it, true
}

func (it item) expired(now time.Time) bool {
	return !it.expires.IsZero() && !now.Before(it.expires)
}

// sweepInterval is how often (in store time) writes also drop expired keys that nobody reads
// again; without it a long-running replica would keep every expired grant and cached
// credential until restart.
const sweepInterval = time.Minute

// putLocked stores a value and, at most once per sweepInterval, drops expired keys.
func (s *Store) putLocked(key string, value []byte, ttl time.Duration) {
	now := s.now()
	if now.Sub(s.lastSweep) >= sweepInterval {
		s.lastSweep = now
		for k, it := range s.items {
			if it.expired(now) {
				delete(s.items, k)
			}
		}
	}
	s.items[key] = item{value: cloneValue(value), expires: s.expiry(ttl)}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// cloneValue copies a stored value. A stored value is never nil, even when set from nil, so
// that an existing empty value is told apart from an absent one (as with Redis, which stores
// "").
func cloneValue(b []byte) []byte {
	return append([]byte{}, b...)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.getLocked(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneValue(it.value), nil
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(key, value, ttl)
	return nil
}

// SetNX implements store.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.getLocked(key); ok {
		return false, nil
	}
	s.putLocked(key, value, ttl)
	return true, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, key)
	delete(s.sets, key)
	return nil
}

// Update implements store.Store. fn runs under the store's lock, so it must be quick.
func (s *Store) Update(ctx context.Context, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []byte
	if it, ok := s.getLocked(key); ok {
		old = cloneValue(it.value)
	}
	v, ttl, err := fn(old)
	if err != nil {
		return err
	}
	if v == nil {
		delete(s.items, key)
		return nil
	}
	s.putLocked(key, v, ttl)
	return nil
}

// errOverflow matches Redis, which refuses an INCRBY that would wrap around.
var errOverflow = errors.New("increment or decrement would overflow")

// IncrBy implements store.Store.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.getLocked(key)
	var n int64
	if ok {
		var err error
		n, err = strconv.ParseInt(string(it.value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("store: %s is not a counter", key)
		}
	} else {
		it.expires = s.expiry(ttl)
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, fmt.Errorf("store: incr %s: %w", key, errOverflow)
	}
	n += delta
	it.value = strconv.AppendInt(nil, n, 10)
	s.items[key] = it
	return n, nil
}

// SAdd implements store.Store.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(members) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[key]
	if set == nil {
		set = map[string]struct{}{}
		s.sets[key] = set
	}
	for _, m := range members {
		set[m] = struct{}{}
	}
	return nil
}

// SRem implements store.Store.
func (s *Store) SRem(ctx context.Context, key string, members ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[key]
	for _, m := range members {
		delete(set, m)
	}
	if set != nil && len(set) == 0 {
		delete(s.sets, key) // as Redis drops an empty set
	}
	return nil
}

// SMembers implements store.Store.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sets[key]))
	for m := range s.sets[key] {
		out = append(out, m)
	}
	return out, nil
}

type subscription struct {
	s       *Store
	channel string
	ch      chan []byte
	once    sync.Once
	done    chan struct{}
	wake    chan struct{} // capacity 1: "the queue has something"

	qmu     sync.Mutex
	queue   [][]byte
	dropped uint64
}

func (sub *subscription) C() <-chan []byte { return sub.ch }

func (sub *subscription) Close() error {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	sub.closeLocked()
	return nil
}

func (sub *subscription) closeLocked() {
	sub.once.Do(func() {
		delete(sub.s.subs[sub.channel], sub)
		if len(sub.s.subs[sub.channel]) == 0 {
			delete(sub.s.subs, sub.channel)
		}
		close(sub.done)
	})
}

// maxQueued bounds what a subscriber that stopped reading may hold in memory. Up to it no
// message is lost: Publish never blocks (it runs under the store's lock) and never drops a
// wake-up that thousands of held calls may be waiting for, as a fixed channel buffer would.
const maxQueued = 1 << 20

func (sub *subscription) enqueue(msg []byte) {
	sub.qmu.Lock()
	if len(sub.queue) < maxQueued {
		sub.queue = append(sub.queue, msg)
	} else {
		sub.dropped++
	}
	sub.qmu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// pump moves queued messages to C in order until Close; it then closes C.
func (sub *subscription) pump() {
	defer close(sub.ch)
	for {
		select {
		case <-sub.done:
			return
		case <-sub.wake:
		}
		for {
			sub.qmu.Lock()
			if len(sub.queue) == 0 {
				sub.queue = nil // let a drained burst's backing array go
				sub.qmu.Unlock()
				break
			}
			msg := sub.queue[0]
			sub.queue[0] = nil
			sub.queue = sub.queue[1:]
			sub.qmu.Unlock()
			select {
			case sub.ch <- msg:
			case <-sub.done:
				return
			}
		}
	}
}

// Publish implements store.Store.
func (s *Store) Publish(ctx context.Context, channel string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs[channel] {
		sub.enqueue(cloneValue(msg))
	}
	return nil
}

// Subscribe implements store.Store.
func (s *Store) Subscribe(ctx context.Context, channel string) (store.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("store: closed")
	}
	sub := &subscription{s: s, channel: channel, ch: make(chan []byte, 64),
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go sub.pump()
	if s.subs[channel] == nil {
		s.subs[channel] = map[*subscription]struct{}{}
	}
	s.subs[channel][sub] = struct{}{}
	return sub, nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, name string, maxLen int64, fn func(head []byte) ([]byte, []byte, error)) (string, error) {
	return store.AppendOne(ctx, s, name, maxLen, fn)
}

// AppendBatch implements store.BatchAppender.
func (s *Store) AppendBatch(ctx context.Context, name string, maxLen int64, fn func(head []byte) ([][]byte, []byte, error)) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	entries, head, err := fn(clone(st.headOrNil()))
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, nil
	}
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	// One copy holds every entry of the batch, and one string every ID: a few allocations per
	// batch, not two or three per entry. Each entry's value is a three-index slice of the copy,
	// so that nothing appended to one can reach the next (Range hands out copies anyway).
	size := 0
	for _, entry := range entries {
		size += len(entry)
	}
	values := make([]byte, 0, size)
	first := len(st.entries)
	for _, entry := range entries {
		start := len(values)
		values = append(values, entry...)
		st.last = st.last.next(s.now())
		st.entries = append(st.entries, streamEntry{id: st.last, value: values[start:len(values):len(values)]})
	}
	ids := idStrings(st.entries[first:])
	st.setHead(head)
	if st.appended != nil {
		close(st.appended)
		st.appended = nil
	}
	if maxLen > 0 && int64(len(st.entries)) > maxLen {
		drop := len(st.entries) - int(maxLen)
		clear(st.entries[:drop])
		st.entries = st.entries[drop:]
	}
	return ids, nil
}

// idStrings returns the entries' IDs, cut from one string.
func idStrings(entries []streamEntry) []string {
	var buf [512]byte
	text := buf[:0]
	for _, e := range entries {
		text = e.id.appendTo(text)
	}
	all := string(text)
	ids := make([]string, len(entries))
	var one [41]byte
	for i, e := range entries {
		n := len(e.id.appendTo(one[:0]))
		ids[i], all = all[:n], all[n:]
	}
	return ids
}

// setHead stores a copy of head, in the previous head's storage when it fits (nobody else
// holds it: the store hands out copies).
func (st *stream) setHead(head []byte) {
	if head == nil || st.head == nil {
		st.head = clone(head)
		return
	}
	st.head = append(st.head[:0], head...)
}

func (st *stream) headOrNil() []byte {
	if st == nil {
		return nil
	}
	return st.head
}

// Range implements store.Store.
func (s *Store) Range(ctx context.Context, name, afterID string, count int64) ([]store.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var after streamID
	if afterID != "" && afterID != "0" {
		var err error
		if after, err = parseID(afterID); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[name].after(after, count), nil
}

// after returns copies of up to count entries after id (count <= 0: all). Under the lock.
func (st *stream) after(id streamID, count int64) []store.Entry {
	if st == nil {
		return []store.Entry{}
	}
	start := sort.Search(len(st.entries), func(i int) bool { return st.entries[i].id.after(id) })
	end := len(st.entries)
	if count > 0 && int64(end-start) > count {
		end = start + int(count)
	}
	out := make([]store.Entry, 0, end-start)
	for _, e := range st.entries[start:end] {
		out = append(out, store.Entry{ID: e.id.String(), Value: cloneValue(e.value)})
	}
	return out
}

// Tail implements store.Tailer: it waits for the next append to the stream, in this process.
func (s *Store) Tail(ctx context.Context, name, afterID string, count int64, block time.Duration) ([]store.Entry, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	var after streamID
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, "", fmt.Errorf("store: closed")
	}
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	switch afterID {
	case "$":
		after = st.last
	case "", "0":
	default:
		var err error
		if after, err = parseID(afterID); err != nil {
			s.mu.Unlock()
			return nil, "", err
		}
	}
	var timer *time.Timer
	for {
		if out := st.after(after, count); len(out) > 0 {
			s.mu.Unlock()
			return out, out[len(out)-1].ID, nil
		}
		if block <= 0 {
			s.mu.Unlock()
			return nil, after.String(), nil
		}
		if st.appended == nil {
			st.appended = make(chan struct{})
		}
		appended := st.appended
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(block)
			defer timer.Stop()
		}
		select {
		case <-appended:
		case <-timer.C:
			return nil, after.String(), nil
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, "", fmt.Errorf("store: closed")
		}
	}
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.streams[name].headOrNil()), nil
}

// streamID is a Redis-style stream ID, "milliseconds-sequence", ordered by both parts.
type streamID struct{ ms, seq uint64 }

// next returns the ID after id at time now. Like Redis, it never goes backwards even when the
// clock (a fake one in tests) does, and never hands out 0-0.
func (id streamID) next(now time.Time) streamID {
	if ms := now.UnixMilli(); ms > 0 && uint64(ms) > id.ms {
		return streamID{ms: uint64(ms)}
	}
	return streamID{ms: id.ms, seq: id.seq + 1}
}

func (id streamID) after(other streamID) bool {
	return id.ms > other.ms || (id.ms == other.ms && id.seq > other.seq)
}

func (id streamID) String() string {
	var b [41]byte
	return string(id.appendTo(b[:0]))
}

func (id streamID) appendTo(b []byte) []byte {
	b = strconv.AppendUint(b, id.ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.seq, 10)
}

// parseID accepts "ms-seq" and, as Redis does for a range start, "ms" alone (= ms-0).
func parseID(s string) (streamID, error) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	var id streamID
	var err error
	if id.ms, err = strconv.ParseUint(msPart, 10, 64); err != nil {
		return id, fmt.Errorf("store: bad stream id %q", s)
	}
	if hasSeq {
		if id.seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return id, fmt.Errorf("store: bad stream id %q", s)
		}
	}
	return id, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// Close implements store.Store: it ends every subscription.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, subs := range s.subs {
		for sub := range subs {
			sub.closeLocked()
		}
	}
	for _, st := range s.streams {
		if st.appended != nil { // wake Tail calls, which then see the store closed
			close(st.appended)
			st.appended = nil
		}
	}
	return nil
}
