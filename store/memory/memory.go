// Package memory is the embedded in-memory store: Airlock's default when no Redis is set. It is
// the same contract as store/redis for a single replica; state is lost on restart.
package memory

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/airlockhq/airlock/store"
)

type item struct {
	value   []byte
	expires time.Time // zero: never
}

type stream struct {
	entries []store.Entry
	seq     uint64
	head    []byte
}

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	items   map[string]item
	sets    map[string]map[string]struct{}
	streams map[string]*stream
	subs    map[string]map[*subscription]struct{}
	closed  bool
}

var _ store.Store = (*Store)(nil)

// New returns an empty store. now may be nil (time.Now); tests pass a fake clock.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:     now,
		items:   map[string]item{},
		sets:    map[string]map[string]struct{}{},
		streams: map[string]*stream{},
		subs:    map[string]map[*subscription]struct{}{},
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
	if !it.expires.IsZero() && !s.now().Before(it.expires) {
		delete(s.items, key)
		return item{}, false
	}
	return it, true
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.getLocked(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(it.value), nil
}

// Set implements store.Store.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[key] = item{value: clone(value), expires: s.expiry(ttl)}
	return nil
}

// SetNX implements store.Store.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.getLocked(key); ok {
		return false, nil
	}
	s.items[key] = item{value: clone(value), expires: s.expiry(ttl)}
	return true, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, key)
	delete(s.sets, key)
	return nil
}

// Update implements store.Store. fn runs under the store's lock, so it must be quick.
func (s *Store) Update(ctx context.Context, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []byte
	if it, ok := s.getLocked(key); ok {
		old = clone(it.value)
	}
	v, ttl, err := fn(old)
	if err != nil {
		return err
	}
	if v == nil {
		delete(s.items, key)
		return nil
	}
	s.items[key] = item{value: clone(v), expires: s.expiry(ttl)}
	return nil
}

// IncrBy implements store.Store.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
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
	n += delta
	it.value = strconv.AppendInt(nil, n, 10)
	s.items[key] = it
	return n, nil
}

// SAdd implements store.Store.
func (s *Store) SAdd(ctx context.Context, key string, members ...string) error {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range members {
		delete(s.sets[key], m)
	}
	return nil
}

// SMembers implements store.Store.
func (s *Store) SMembers(ctx context.Context, key string) ([]string, error) {
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
		close(sub.ch)
	})
}

// subscriptionBuffer bounds what a slow subscriber may queue; beyond it messages are dropped
// for that subscriber, as with Redis pub/sub (subscribers re-read state after a wake-up).
const subscriptionBuffer = 256

// Publish implements store.Store.
func (s *Store) Publish(ctx context.Context, channel string, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs[channel] {
		select {
		case sub.ch <- clone(msg):
		default:
		}
	}
	return nil
}

// Subscribe implements store.Store.
func (s *Store) Subscribe(ctx context.Context, channel string) (store.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("store: closed")
	}
	sub := &subscription{s: s, channel: channel, ch: make(chan []byte, subscriptionBuffer)}
	if s.subs[channel] == nil {
		s.subs[channel] = map[*subscription]struct{}{}
	}
	s.subs[channel][sub] = struct{}{}
	return sub, nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, name string, maxLen int64, fn func(head []byte) ([]byte, []byte, error)) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	entry, head, err := fn(clone(st.head))
	if err != nil {
		return "", err
	}
	st.seq++
	// IDs sort like Redis stream IDs: milliseconds-sequence.
	id := fmt.Sprintf("%d-%d", s.now().UnixMilli(), st.seq)
	st.entries = append(st.entries, store.Entry{ID: id, Value: clone(entry)})
	st.head = clone(head)
	if maxLen > 0 && int64(len(st.entries)) > maxLen {
		st.entries = append([]store.Entry(nil), st.entries[int64(len(st.entries))-maxLen:]...)
	}
	return id, nil
}

// Range implements store.Store.
func (s *Store) Range(ctx context.Context, name, afterID string, count int64) ([]store.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return nil, nil
	}
	start := 0
	if afterID != "" && afterID != "0" {
		after, err := parseID(afterID)
		if err != nil {
			return nil, err
		}
		for start < len(st.entries) {
			id, _ := parseID(st.entries[start].ID)
			if id.after(after) {
				break
			}
			start++
		}
	}
	end := len(st.entries)
	if count > 0 && int64(end-start) > count {
		end = start + int(count)
	}
	out := make([]store.Entry, 0, end-start)
	for _, e := range st.entries[start:end] {
		out = append(out, store.Entry{ID: e.ID, Value: clone(e.Value)})
	}
	return out, nil
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[name]; st != nil {
		return clone(st.head), nil
	}
	return nil, nil
}

type streamID struct{ ms, seq uint64 }

// after orders by the sequence alone: it is strictly increasing per stream even if the clock
// (a fake one in tests) steps back.
func (a streamID) after(b streamID) bool { return a.seq > b.seq }

func parseID(s string) (streamID, error) {
	var id streamID
	if _, err := fmt.Sscanf(s, "%d-%d", &id.ms, &id.seq); err != nil {
		return id, fmt.Errorf("store: bad stream id %q", s)
	}
	return id, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return nil }

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
	return nil
}
