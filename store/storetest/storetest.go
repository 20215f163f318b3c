// Package storetest is the conformance suite that every store.Store implementation runs, so
// that the embedded memory store and the Redis store mean the same thing by every method. An
// implementation's test calls Run with a constructor and a hook that fast-forwards its clock
// (a fake clock for memory; a short sleep for Redis, whose expiry runs on real time), and
// RunReplicas with two handles on one shared state.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store"
)

// NewStore returns a fresh, empty store for one subtest and a function that moves the store's
// clock forward by d. Subtests run in parallel, so every call must return an independent
// store (for a shared server: a distinct key prefix) and its own clock. The constructor is
// responsible for closing the store when t ends; Close may then be called a second time.
type NewStore func(t *testing.T) (s store.Store, advance func(d time.Duration))

// ShortTTL is the TTL used by expiry checks: long enough that a loaded machine reads a key
// before it expires, short enough that a real-time store keeps the suite fast.
const ShortTTL = 300 * time.Millisecond

// expired is how far the expiry checks advance the clock past ShortTTL.
const expired = ShortTTL + 150*time.Millisecond

// deliveryTimeout bounds how long a published message may take to arrive.
const deliveryTimeout = 5 * time.Second

// Run runs the conformance suite against the stores that newStore returns.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, advance func(time.Duration))
	}{
		{"GetSetDelete", testGetSetDelete},
		{"BinaryAndEmptyValues", testBinaryAndEmptyValues},
		{"TTLExpiry", testTTLExpiry},
		{"SetNXRace", testSetNXRace},
		{"SetNXAfterExpiry", testSetNXAfterExpiry},
		{"UpdateCreateDeleteAbort", testUpdateCreateDeleteAbort},
		{"UpdateTTL", testUpdateTTL},
		{"UpdateContention", testUpdateContention},
		{"IncrBy", testIncrBy},
		{"IncrByTTLOnlyOnCreate", testIncrByTTL},
		{"IncrByConcurrent", testIncrByConcurrent},
		{"IncrByNotACounter", testIncrByNotACounter},
		{"Sets", testSets},
		{"PubSubDelivery", testPubSubDelivery},
		{"PubSubPublishRightAfterSubscribe", testPubSubImmediate},
		{"PubSubSubscriptionClose", testPubSubSubscriptionClose},
		{"PubSubStoreClose", testPubSubStoreClose},
		{"AppendChainConcurrent", testAppendChainConcurrent},
		{"AppendFnError", testAppendFnError},
		{"AppendBatchChainConcurrent", testAppendBatchChainConcurrent},
		{"AppendBatchFnErrorAndEmpty", testAppendBatchFnErrorAndEmpty},
		{"AppendBatchMaxLen", testAppendBatchMaxLen},
		{"AppendBatchContextDone", testAppendBatchContextDone},
		{"RangePaging", testRangePaging},
		{"RangeEmptyAndBadID", testRangeEmptyAndBadID},
		{"MaxLenTrimming", testMaxLenTrimming},
		{"Tail", testTail},
		{"ContextDone", testContextDone},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, advance := newStore(t)
			tc.fn(t, s, advance)
		})
	}
}

// NewReplicas returns two handles (two "replicas") on one fresh shared state. An embedded
// store may return the same store twice. The constructor closes both when t ends.
type NewReplicas func(t *testing.T) (a, b store.Store)

// RunReplicas checks what several replicas rely on: a Publish on one reaches subscribers on
// the other, and concurrent writers on both keep counters, SetNX and the hash chain exact.
func RunReplicas(t *testing.T, newReplicas NewReplicas) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"PublishCrossesReplicas", testReplicasPublish},
		{"AppendChainAcrossReplicas", testReplicasAppend},
		{"AppendBatchChainAcrossReplicas", testReplicasAppendBatch},
		{"UpdateAcrossReplicas", testReplicasUpdate},
		{"TailAcrossReplicas", testReplicasTail},
		{"SetNXAcrossReplicas", testReplicasSetNX},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := newReplicas(t)
			tc.fn(t, a, b)
		})
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustGet(t *testing.T, s store.Store, key string) []byte {
	t.Helper()
	v, err := s.Get(testContext(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func mustNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	v, err := s.Get(testContext(t), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want store.ErrNotFound", key, v, err)
	}
}

func mustSet(t *testing.T, s store.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(testContext(t), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// parallel runs fn(i) for i in [0, n) at once and fails the test on any error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- fn(i)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testGetSetDelete(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	mustNotFound(t, s, "absent")
	mustSet(t, s, "k", "v1", 0)
	if got := mustGet(t, s, "k"); string(got) != "v1" {
		t.Fatalf("Get = %q, want v1", got)
	}
	mustSet(t, s, "k", "v2", 0)
	if got := mustGet(t, s, "k"); string(got) != "v2" {
		t.Fatalf("Get after overwrite = %q, want v2", got)
	}
	// The caller may reuse its buffer after Set, and may modify what Get returned.
	buf := []byte("original")
	if err := s.Set(ctx, "buf", buf, 0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!")
	got := mustGet(t, s, "buf")
	if string(got) != "original" {
		t.Fatalf("Get = %q: the store kept the caller's buffer", got)
	}
	copy(got, "CHANGED!")
	if got := mustGet(t, s, "buf"); string(got) != "original" {
		t.Fatalf("Get = %q: the store handed out its own buffer", got)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	mustNotFound(t, s, "k")
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of an absent key: %v", err)
	}
}

func testBinaryAndEmptyValues(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if err := s.Set(ctx, "bin", all, 0); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "bin"); !bytes.Equal(got, all) {
		t.Fatalf("binary value came back as %x", got)
	}
	// An empty value exists: Get finds it and Update sees a non-nil old value.
	if err := s.Set(ctx, "empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "empty"); got == nil || len(got) != 0 {
		t.Fatalf("Get of an empty value = %#v, want a non-nil empty slice", got)
	}
	err := s.Update(ctx, "empty", func(old []byte) ([]byte, time.Duration, error) {
		if old == nil {
			return nil, 0, errors.New("update saw an existing empty value as absent")
		}
		return []byte("filled"), 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "empty"); string(got) != "filled" {
		t.Fatalf("Get = %q, want filled", got)
	}
}

func testTTLExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	ctx := testContext(t)
	mustSet(t, s, "short", "v", ShortTTL)
	mustSet(t, s, "forever", "v", 0)
	mustSet(t, s, "ttl-cleared", "v", ShortTTL)
	mustSet(t, s, "ttl-cleared", "v2", 0) // a Set without ttl drops the earlier expiry
	if ok, err := s.SetNX(ctx, "nx-short", []byte("v"), ShortTTL); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	mustGet(t, s, "short")
	mustGet(t, s, "nx-short")

	advance(expired)
	mustNotFound(t, s, "short")
	mustNotFound(t, s, "nx-short")
	if got := mustGet(t, s, "forever"); string(got) != "v" {
		t.Fatalf("Get(forever) = %q", got)
	}
	if got := mustGet(t, s, "ttl-cleared"); string(got) != "v2" {
		t.Fatalf("Get(ttl-cleared) = %q", got)
	}
}

func testSetNXRace(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	const n = 32
	var mu sync.Mutex
	var winners []int
	parallel(t, n, func(i int) error {
		ok, err := s.SetNX(ctx, "lock", []byte(strconv.Itoa(i)), time.Minute)
		if err != nil {
			return fmt.Errorf("SetNX #%d: %w", i, err)
		}
		if ok {
			mu.Lock()
			winners = append(winners, i)
			mu.Unlock()
		}
		return nil
	})
	if len(winners) != 1 {
		t.Fatalf("%d SetNX calls won (%v), want exactly 1", len(winners), winners)
	}
	if got := mustGet(t, s, "lock"); string(got) != strconv.Itoa(winners[0]) {
		t.Fatalf("Get(lock) = %q, want the winner's value %d", got, winners[0])
	}
}

func testSetNXAfterExpiry(t *testing.T, s store.Store, advance func(time.Duration)) {
	ctx := testContext(t)
	if ok, err := s.SetNX(ctx, "lock", []byte("first"), ShortTTL); err != nil || !ok {
		t.Fatalf("first SetNX = %v, %v", ok, err)
	}
	if ok, err := s.SetNX(ctx, "lock", []byte("second"), ShortTTL); err != nil || ok {
		t.Fatalf("SetNX on a held key = %v, %v; want false", ok, err)
	}
	advance(expired)
	if ok, err := s.SetNX(ctx, "lock", []byte("third"), 0); err != nil || !ok {
		t.Fatalf("SetNX after expiry = %v, %v; want true", ok, err)
	}
	if got := mustGet(t, s, "lock"); string(got) != "third" {
		t.Fatalf("Get = %q, want third", got)
	}
}

func testUpdateCreateDeleteAbort(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	err := s.Update(ctx, "k", func(old []byte) ([]byte, time.Duration, error) {
		if old != nil {
			return nil, 0, fmt.Errorf("old = %q for an absent key, want nil", old)
		}
		return []byte("created"), 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "k"); string(got) != "created" {
		t.Fatalf("Get = %q, want created", got)
	}

	errAbort := errors.New("abort")
	err = s.Update(ctx, "k", func(old []byte) ([]byte, time.Duration, error) {
		return []byte("must not be stored"), 0, errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if got := mustGet(t, s, "k"); string(got) != "created" {
		t.Fatalf("Get after an aborted Update = %q, want created", got)
	}

	err = s.Update(ctx, "k", func(old []byte) ([]byte, time.Duration, error) {
		if string(old) != "created" {
			return nil, 0, fmt.Errorf("old = %q, want created", old)
		}
		return nil, 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustNotFound(t, s, "k")

	// Deleting an absent key through Update is not an error.
	if err := s.Update(ctx, "never", func([]byte) ([]byte, time.Duration, error) { return nil, 0, nil }); err != nil {
		t.Fatal(err)
	}
	mustNotFound(t, s, "never")
}

func testUpdateTTL(t *testing.T, s store.Store, advance func(time.Duration)) {
	ctx := testContext(t)
	set := func(ttl time.Duration) func([]byte) ([]byte, time.Duration, error) {
		return func([]byte) ([]byte, time.Duration, error) { return []byte("v"), ttl, nil }
	}
	if err := s.Update(ctx, "short", set(ShortTTL)); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "forever", set(0)); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, "short")
	advance(expired)
	mustNotFound(t, s, "short")
	mustGet(t, s, "forever")
}

type counter struct {
	N       int   `json:"n"`
	Writers []int `json:"writers"`
}

// incrementJSON is an Update fn that adds writer to a JSON counter.
func incrementJSON(writer int) func(old []byte) ([]byte, time.Duration, error) {
	return func(old []byte) ([]byte, time.Duration, error) {
		var c counter
		if old != nil {
			if err := json.Unmarshal(old, &c); err != nil {
				return nil, 0, err
			}
		}
		c.N++
		c.Writers = append(c.Writers, writer)
		v, err := json.Marshal(c)
		return v, 0, err
	}
}

func checkCounter(t *testing.T, s store.Store, key string, n int) {
	t.Helper()
	var c counter
	if err := json.Unmarshal(mustGet(t, s, key), &c); err != nil {
		t.Fatal(err)
	}
	slices.Sort(c.Writers)
	if c.N != n || len(c.Writers) != n || (n > 0 && (c.Writers[0] != 0 || c.Writers[n-1] != n-1)) ||
		len(slices.Compact(c.Writers)) != n {
		t.Fatalf("counter = %d with writers %v, want %d writers 0..%d once each (a lost update)", c.N, c.Writers, n, n-1)
	}
}

func testUpdateContention(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	const n = 24
	parallel(t, n, func(i int) error {
		if err := s.Update(ctx, "counter", incrementJSON(i)); err != nil {
			return fmt.Errorf("update #%d: %w", i, err)
		}
		return nil
	})
	checkCounter(t, s, "counter", n)
}

func testIncrBy(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	for _, step := range []struct {
		delta, want int64
	}{{1, 1}, {41, 42}, {-50, -8}, {0, -8}} {
		got, err := s.IncrBy(ctx, "n", step.delta, 0)
		if err != nil || got != step.want {
			t.Fatalf("IncrBy(%d) = %d, %v; want %d", step.delta, got, err, step.want)
		}
	}
	if got := mustGet(t, s, "n"); string(got) != "-8" {
		t.Fatalf("Get of a counter = %q, want its decimal text -8", got)
	}
	// A counter can start from a value written with Set.
	mustSet(t, s, "preset", "100", 0)
	if got, err := s.IncrBy(ctx, "preset", 5, 0); err != nil || got != 105 {
		t.Fatalf("IncrBy on a preset counter = %d, %v; want 105", got, err)
	}
}

func testIncrByTTL(t *testing.T, s store.Store, advance func(time.Duration)) {
	ctx := testContext(t)
	if n, err := s.IncrBy(ctx, "short", 1, ShortTTL); err != nil || n != 1 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	// A later ttl must not extend the counter's life: it applies only at creation.
	if n, err := s.IncrBy(ctx, "short", 1, time.Hour); err != nil || n != 2 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	if n, err := s.IncrBy(ctx, "forever", 1, 0); err != nil || n != 1 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	// Nor may a later ttl give an unexpiring counter an expiry.
	if n, err := s.IncrBy(ctx, "forever", 1, time.Millisecond); err != nil || n != 2 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	advance(expired)
	mustNotFound(t, s, "short")
	if n, err := s.IncrBy(ctx, "short", 5, 0); err != nil || n != 5 {
		t.Fatalf("IncrBy after expiry = %d, %v; want a fresh counter at 5", n, err)
	}
	if got := mustGet(t, s, "forever"); string(got) != "2" {
		t.Fatalf("Get(forever) = %q, want 2", got)
	}
}

func testIncrByConcurrent(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	const n, each = 16, 25
	parallel(t, n, func(i int) error {
		for range each {
			if _, err := s.IncrBy(ctx, "n", 1, time.Minute); err != nil {
				return err
			}
		}
		return nil
	})
	if got, err := s.IncrBy(ctx, "n", 0, 0); err != nil || got != n*each {
		t.Fatalf("counter = %d, %v; want %d", got, err, n*each)
	}
}

func testIncrByNotACounter(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	const secret = "s3cr3t-value-not-for-logs"
	mustSet(t, s, "text", secret, 0)
	_, err := s.IncrBy(ctx, "text", 1, 0)
	if err == nil {
		t.Fatal("IncrBy on a non-integer value succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("error %q contains the stored value", err)
	}
	if got := mustGet(t, s, "text"); string(got) != secret {
		t.Fatalf("a failed IncrBy changed the value to %q", got)
	}
}

func members(t *testing.T, s store.Store, key string) []string {
	t.Helper()
	m, err := s.SMembers(testContext(t), key)
	if err != nil {
		t.Fatalf("SMembers(%q): %v", key, err)
	}
	slices.Sort(m)
	return m
}

func testSets(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	if m := members(t, s, "absent"); len(m) != 0 {
		t.Fatalf("SMembers of an absent set = %v", m)
	}
	if err := s.SAdd(ctx, "set", "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.SAdd(ctx, "set", "b", "d"); err != nil {
		t.Fatal(err)
	}
	if err := s.SAdd(ctx, "set"); err != nil {
		t.Fatalf("SAdd with no members: %v", err)
	}
	if m := members(t, s, "set"); !slices.Equal(m, []string{"a", "b", "c", "d"}) {
		t.Fatalf("SMembers = %v", m)
	}
	if err := s.SRem(ctx, "set", "b", "absent"); err != nil {
		t.Fatal(err)
	}
	if err := s.SRem(ctx, "set"); err != nil {
		t.Fatalf("SRem with no members: %v", err)
	}
	if m := members(t, s, "set"); !slices.Equal(m, []string{"a", "c", "d"}) {
		t.Fatalf("SMembers after SRem = %v", m)
	}
	if err := s.SRem(ctx, "set", "a", "c", "d"); err != nil {
		t.Fatal(err)
	}
	if m := members(t, s, "set"); len(m) != 0 {
		t.Fatalf("SMembers after removing all = %v", m)
	}
	if err := s.SRem(ctx, "absent", "x"); err != nil {
		t.Fatalf("SRem on an absent set: %v", err)
	}
	if err := s.SAdd(ctx, "gone", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if m := members(t, s, "gone"); len(m) != 0 {
		t.Fatalf("SMembers after Delete = %v", m)
	}
}

func subscribe(t *testing.T, s store.Store, channel string) store.Subscription {
	t.Helper()
	sub, err := s.Subscribe(testContext(t), channel)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", channel, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func publish(t *testing.T, s store.Store, channel, msg string) {
	t.Helper()
	b := []byte(msg)
	if err := s.Publish(testContext(t), channel, b); err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
	clear(b) // the caller may reuse msg once Publish has returned
}

func receive(t *testing.T, sub store.Subscription, want string) {
	t.Helper()
	select {
	case got, ok := <-sub.C():
		if !ok {
			t.Fatalf("subscription closed while waiting for %q", want)
		}
		if string(got) != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(deliveryTimeout):
		t.Fatalf("%q not delivered within %s", want, deliveryTimeout)
	}
}

func receiveNothing(t *testing.T, sub store.Subscription, wait time.Duration) {
	t.Helper()
	select {
	case got, ok := <-sub.C():
		if ok {
			t.Fatalf("unexpected message %q", got)
		}
		t.Fatal("subscription closed unexpectedly")
	case <-time.After(wait):
	}
}

func waitClosed(t *testing.T, sub store.Subscription) {
	t.Helper()
	timeout := time.After(deliveryTimeout)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("C() not closed within %s", deliveryTimeout)
		}
	}
}

func testPubSubDelivery(t *testing.T, s store.Store, _ func(time.Duration)) {
	first := subscribe(t, s, "events")
	second := subscribe(t, s, "events")
	other := subscribe(t, s, "other")
	for i := range 5 {
		publish(t, s, "events", fmt.Sprintf("m%d", i))
	}
	for i := range 5 { // in order, to each subscriber
		receive(t, first, fmt.Sprintf("m%d", i))
		receive(t, second, fmt.Sprintf("m%d", i))
	}
	publish(t, s, "nobody-listens", "x")
	publish(t, s, "other", "for-other")
	receive(t, other, "for-other")
	receiveNothing(t, first, 50*time.Millisecond)
	receiveNothing(t, second, 0)
}

func testPubSubImmediate(t *testing.T, s store.Store, _ func(time.Duration)) {
	// Subscribe must not return before the subscription is live: a wake-up published right
	// after it (typically by another replica approving a request) must not be lost.
	for i := range 20 {
		channel := fmt.Sprintf("request:%d", i)
		sub := subscribe(t, s, channel)
		publish(t, s, channel, "approved")
		receive(t, sub, "approved")
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Re-subscribing to a channel just given up must work as well.
	for range 5 {
		sub := subscribe(t, s, "again")
		publish(t, s, "again", "hello")
		receive(t, sub, "hello")
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func testPubSubSubscriptionClose(t *testing.T, s store.Store, _ func(time.Duration)) {
	closing := subscribe(t, s, "ch")
	staying := subscribe(t, s, "ch")
	publish(t, s, "ch", "one")
	receive(t, closing, "one")
	receive(t, staying, "one")

	if err := closing.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, closing)
	if err := closing.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	publish(t, s, "ch", "two")
	receive(t, staying, "two")
	if _, ok := <-closing.C(); ok {
		t.Fatal("a closed subscription received a message")
	}
}

func testPubSubStoreClose(t *testing.T, s store.Store, _ func(time.Duration)) {
	sub := subscribe(t, s, "ch")
	publish(t, s, "ch", "before")
	receive(t, sub, "before")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, sub)
	if err := sub.Close(); err != nil {
		t.Fatalf("Subscription.Close after the store's Close: %v", err)
	}
	if _, err := s.Subscribe(testContext(t), "ch"); err == nil {
		t.Fatal("Subscribe on a closed store succeeded")
	}
}

// chainEntry is what the chain tests append: the head it was built on, and who wrote it.
type chainEntry struct {
	Prev   string `json:"prev"`
	Writer string `json:"writer"`
}

func link(head, entry []byte) []byte {
	h := sha256.New()
	h.Write(head)
	h.Write(entry)
	return []byte(hex.EncodeToString(h.Sum(nil)))
}

// appendChained appends writer's entry on top of the current head, as the audit log does.
func appendChained(ctx context.Context, s store.Store, stream string, maxLen int64, writer string) (string, error) {
	return s.Append(ctx, stream, maxLen, func(head []byte) ([]byte, []byte, error) {
		entry, err := json.Marshal(chainEntry{Prev: string(head), Writer: writer})
		if err != nil {
			return nil, nil, err
		}
		return entry, link(head, entry), nil
	})
}

// checkChain walks the whole stream page by page from the start, recomputes the hash chain and
// checks that it is one line ending at Head. It returns the entries in order.
func checkChain(t *testing.T, s store.Store, stream string, page int64) []store.Entry {
	t.Helper()
	ctx := testContext(t)
	var all []store.Entry
	var head []byte
	after := ""
	for {
		entries, err := s.Range(ctx, stream, after, page)
		if err != nil {
			t.Fatalf("Range(%q, %d): %v", after, page, err)
		}
		if int64(len(entries)) > page {
			t.Fatalf("Range returned %d entries, more than count %d", len(entries), page)
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			var ce chainEntry
			if err := json.Unmarshal(e.Value, &ce); err != nil {
				t.Fatalf("entry %s: %v", e.ID, err)
			}
			if ce.Prev != string(head) {
				t.Fatalf("entry %s (#%d, by %s) was built on head %.12q, but the head before it is %.12q: the chain forked",
					e.ID, len(all), ce.Writer, ce.Prev, head)
			}
			head = link(head, e.Value)
			all = append(all, e)
		}
		after = entries[len(entries)-1].ID
	}
	got, err := s.Head(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, head) {
		t.Fatalf("Head = %.12q, but the recomputed chain ends at %.12q", got, head)
	}
	return all
}

func testAppendChainConcurrent(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	if h, err := s.Head(ctx, "audit"); err != nil || h != nil {
		t.Fatalf("Head of an empty stream = %q, %v; want nil", h, err)
	}
	const n = 24
	ids := make([]string, n)
	parallel(t, n, func(i int) error {
		id, err := appendChained(ctx, s, "audit", 0, strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("append #%d: %w", i, err)
		}
		ids[i] = id
		return nil
	})
	entries := checkChain(t, s, "audit", 7)
	if len(entries) != n {
		t.Fatalf("%d entries in the stream, want %d", len(entries), n)
	}
	writers := map[string]bool{}
	var got []string
	for _, e := range entries {
		var ce chainEntry
		_ = json.Unmarshal(e.Value, &ce)
		writers[ce.Writer] = true
		got = append(got, e.ID)
	}
	if len(writers) != n {
		t.Fatalf("%d distinct writers in the stream, want %d", len(writers), n)
	}
	slices.Sort(ids)
	slices.Sort(got)
	if !slices.Equal(ids, got) {
		t.Fatalf("IDs returned by Append %v differ from the stream's %v", ids, got)
	}
}

func testAppendFnError(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	if _, err := appendChained(ctx, s, "audit", 0, "first"); err != nil {
		t.Fatal(err)
	}
	before, err := s.Head(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("refused")
	_, err = s.Append(ctx, "audit", 0, func([]byte) ([]byte, []byte, error) {
		return []byte("entry"), []byte("head"), errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("Append returned %v, want fn's error", err)
	}
	if entries := checkChain(t, s, "audit", 10); len(entries) != 1 {
		t.Fatalf("%d entries after a refused Append, want 1", len(entries))
	}
	if after, _ := s.Head(ctx, "audit"); !bytes.Equal(after, before) {
		t.Fatal("a refused Append changed the head")
	}
}

func testRangePaging(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	const n = 10
	var ids []string
	for i := range n {
		id, err := s.Append(ctx, "log", 0, func([]byte) ([]byte, []byte, error) {
			return []byte(fmt.Sprintf("e%d", i)), []byte(fmt.Sprintf("h%d", i)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if h, _ := s.Head(ctx, "log"); string(h) != "h9" {
		t.Fatalf("Head = %q, want h9", h)
	}
	check := func(after string, count int64, from, to int) {
		t.Helper()
		entries, err := s.Range(ctx, "log", after, count)
		if err != nil {
			t.Fatalf("Range(%q, %d): %v", after, count, err)
		}
		if len(entries) != to-from {
			t.Fatalf("Range(%q, %d) returned %d entries, want %d", after, count, len(entries), to-from)
		}
		for k, e := range entries {
			i := from + k
			if e.ID != ids[i] || string(e.Value) != fmt.Sprintf("e%d", i) {
				t.Fatalf("Range(%q, %d)[%d] = %s %q, want %s e%d", after, count, k, e.ID, e.Value, ids[i], i)
			}
		}
	}
	check("", 0, 0, n) // count 0: everything
	check("0", 0, 0, n)
	check("", 3, 0, 3)
	check("0", 3, 0, 3)
	check(ids[2], 3, 3, 6)
	check(ids[5], 3, 6, 9)
	check(ids[8], 3, 9, 10)
	check(ids[9], 3, 10, 10)
	check(ids[4], 0, 5, n)
	check(ids[0], 100, 1, n)
}

func testRangeEmptyAndBadID(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	entries, err := s.Range(ctx, "absent", "", 10)
	if err != nil || len(entries) != 0 {
		t.Fatalf("Range of an absent stream = %v, %v", entries, err)
	}
	if _, err := appendChained(ctx, s, "log", 0, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range(ctx, "log", "not-an-id", 10); err == nil {
		t.Fatal("Range with a malformed afterID succeeded")
	}
}

func testMaxLenTrimming(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	// Trimming may be approximate (Redis trims whole stream nodes with MAXLEN ~), so the
	// suite asks only that at least maxLen newest entries stay, in order, and that old ones go.
	const n, maxLen = 250, 20
	var ids []string
	for i := range n {
		id, err := appendChained(ctx, s, "audit", maxLen, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	entries, err := s.Range(ctx, "audit", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < maxLen || len(entries) >= n {
		t.Fatalf("%d entries after %d appends with maxLen %d, want at least %d and fewer than %d",
			len(entries), n, maxLen, maxLen, n)
	}
	kept := ids[n-len(entries):]
	for k, e := range entries {
		if e.ID != kept[k] {
			t.Fatalf("entry %d is %s, want %s: trimming must keep the newest entries in order", k, e.ID, kept[k])
		}
	}
	// The head keeps chaining past trimmed entries.
	var last chainEntry
	if err := json.Unmarshal(entries[len(entries)-1].Value, &last); err != nil {
		t.Fatal(err)
	}
	head, err := s.Head(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	if want := link([]byte(last.Prev), entries[len(entries)-1].Value); !bytes.Equal(head, want) {
		t.Fatalf("Head = %.12q, want %.12q", head, want)
	}
	// Reading on from a trimmed ID returns what is left.
	rest, err := s.Range(ctx, "audit", ids[0], 0)
	if err != nil || len(rest) != len(entries) {
		t.Fatalf("Range after a trimmed ID = %d entries, %v; want %d", len(rest), err, len(entries))
	}
}

func testContextDone(t *testing.T, s store.Store, _ func(time.Duration)) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expiredCtx, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	noop := func([]byte) ([]byte, time.Duration, error) { return []byte("v"), 0, nil }
	appendNoop := func([]byte) ([]byte, []byte, error) { return []byte("e"), []byte("h"), nil }
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"canceled", canceled, context.Canceled}, {"deadline", expiredCtx, context.DeadlineExceeded}} {
		ops := map[string]func() error{
			"Get":     func() error { _, err := s.Get(c.ctx, "k"); return err },
			"Set":     func() error { return s.Set(c.ctx, "k", []byte("v"), 0) },
			"SetNX":   func() error { _, err := s.SetNX(c.ctx, "k", []byte("v"), 0); return err },
			"Update":  func() error { return s.Update(c.ctx, "k", noop) },
			"IncrBy":  func() error { _, err := s.IncrBy(c.ctx, "n", 1, 0); return err },
			"SAdd":    func() error { return s.SAdd(c.ctx, "set", "a") },
			"Publish": func() error { return s.Publish(c.ctx, "ch", []byte("m")) },
			"Append":  func() error { _, err := s.Append(c.ctx, "log", 0, appendNoop); return err },
			"Range":   func() error { _, err := s.Range(c.ctx, "log", "", 0); return err },
			"Subscribe": func() error {
				sub, err := s.Subscribe(c.ctx, "ch")
				if err == nil {
					_ = sub.Close()
				}
				return err
			},
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, c.want) {
				t.Errorf("%s with a %s context returned %v, want %v", name, c.name, err, c.want)
			}
		}
	}
	mustNotFound(t, s, "k")
	if entries, err := s.Range(testContext(t), "log", "", 0); err != nil || len(entries) != 0 {
		t.Fatalf("Range = %d entries, %v; an Append with a done context was stored", len(entries), err)
	}
}

func testPing(t *testing.T, s store.Store, _ func(time.Duration)) {
	if err := s.Ping(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

func testReplicasPublish(t *testing.T, a, b store.Store) {
	onA := subscribe(t, a, "approvals")
	onB := subscribe(t, b, "approvals")
	publish(t, b, "approvals", "from-b")
	receive(t, onA, "from-b")
	receive(t, onB, "from-b")
	publish(t, a, "approvals", "from-a")
	receive(t, onA, "from-a")
	receive(t, onB, "from-a")
	// A wake-up sent by one replica right after the other subscribed is not lost.
	for i := range 10 {
		channel := fmt.Sprintf("request:%d", i)
		sub := subscribe(t, a, channel)
		publish(t, b, channel, "approved")
		receive(t, sub, "approved")
		_ = sub.Close()
	}
}

func testReplicasAppend(t *testing.T, a, b store.Store) {
	ctx := testContext(t)
	const perReplica = 16
	replicas := []store.Store{a, b}
	parallel(t, 2*perReplica, func(i int) error {
		_, err := appendChained(ctx, replicas[i%2], "audit", 0, fmt.Sprintf("replica%d-%d", i%2, i))
		return err
	})
	fromA := checkChain(t, a, "audit", 5)
	fromB := checkChain(t, b, "audit", 100)
	if len(fromA) != 2*perReplica || len(fromB) != len(fromA) {
		t.Fatalf("replicas see %d and %d entries, want %d", len(fromA), len(fromB), 2*perReplica)
	}
}

func testReplicasUpdate(t *testing.T, a, b store.Store) {
	ctx := testContext(t)
	const n = 20
	replicas := []store.Store{a, b}
	parallel(t, n, func(i int) error {
		return replicas[i%2].Update(ctx, "counter", incrementJSON(i))
	})
	checkCounter(t, a, "counter", n)
	checkCounter(t, b, "counter", n)
}

func testReplicasSetNX(t *testing.T, a, b store.Store) {
	ctx := testContext(t)
	const n = 20
	replicas := []store.Store{a, b}
	var mu sync.Mutex
	wins := 0
	parallel(t, n, func(i int) error {
		ok, err := replicas[i%2].SetNX(ctx, "leader", []byte(strconv.Itoa(i)), time.Minute)
		if ok {
			mu.Lock()
			wins++
			mu.Unlock()
		}
		return err
	})
	if wins != 1 {
		t.Fatalf("%d SetNX calls won across replicas, want 1", wins)
	}
	if !bytes.Equal(mustGet(t, a, "leader"), mustGet(t, b, "leader")) {
		t.Fatal("replicas disagree on the winner")
	}
}

// batchAppender returns s as a store.BatchAppender, skipping the test when s is not one (the
// interface is optional).
func batchAppender(t *testing.T, s store.Store) store.BatchAppender {
	t.Helper()
	ba, ok := s.(store.BatchAppender)
	if !ok {
		t.Skip("the store does not implement store.BatchAppender")
	}
	return ba
}

// appendChainedBatch appends n entries by writer on top of the current head in one batch, each
// chained onto the one before it, as the audit log's group commit does.
func appendChainedBatch(ctx context.Context, ba store.BatchAppender, stream string, maxLen int64, writer string, n int) ([]string, error) {
	return ba.AppendBatch(ctx, stream, maxLen, func(head []byte) ([][]byte, []byte, error) {
		entries := make([][]byte, 0, n)
		for i := range n {
			entry, err := json.Marshal(chainEntry{Prev: string(head), Writer: fmt.Sprintf("%s/%d", writer, i)})
			if err != nil {
				return nil, nil, err
			}
			entries = append(entries, entry)
			head = link(head, entry)
		}
		return entries, head, nil
	})
}

func testAppendBatchChainConcurrent(t *testing.T, s store.Store, _ func(time.Duration)) {
	ba := batchAppender(t, s)
	ctx := testContext(t)
	// Batches of 1 to 5 entries and single Appends, concurrently: one linear chain, every
	// batch contiguous and in order, every returned ID on the stream.
	const writers = 16
	var mu sync.Mutex
	var ids []string
	sizes := map[string]int{}
	parallel(t, writers, func(i int) error {
		writer := strconv.Itoa(i)
		if i%4 == 3 {
			id, err := appendChained(ctx, s, "audit", 0, writer)
			if err != nil {
				return fmt.Errorf("append #%d: %w", i, err)
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			return nil
		}
		n := 1 + i%5
		got, err := appendChainedBatch(ctx, ba, "audit", 0, writer, n)
		if err != nil {
			return fmt.Errorf("batch #%d: %w", i, err)
		}
		if len(got) != n {
			return fmt.Errorf("batch #%d of %d entries returned %d IDs", i, n, len(got))
		}
		mu.Lock()
		ids = append(ids, got...)
		sizes[writer] = n
		mu.Unlock()
		return nil
	})
	entries := checkChain(t, s, "audit", 7)
	if len(entries) != len(ids) {
		t.Fatalf("%d entries in the stream, want %d", len(entries), len(ids))
	}
	var got []string
	for k := 0; k < len(entries); {
		var ce chainEntry
		_ = json.Unmarshal(entries[k].Value, &ce)
		writer, idx, batched := strings.Cut(ce.Writer, "/")
		if !batched {
			got = append(got, entries[k].ID)
			k++
			continue
		}
		if idx != "0" {
			t.Fatalf("entry %d is %s: a batch does not start at its first entry", k, ce.Writer)
		}
		n := sizes[writer]
		for j := range n {
			if k+j >= len(entries) {
				t.Fatalf("batch %s is cut short", writer)
			}
			_ = json.Unmarshal(entries[k+j].Value, &ce)
			if want := fmt.Sprintf("%s/%d", writer, j); ce.Writer != want {
				t.Fatalf("entry %d is %s, want %s: a batch was split or reordered", k+j, ce.Writer, want)
			}
			got = append(got, entries[k+j].ID)
		}
		k += n
	}
	slices.Sort(ids)
	slices.Sort(got)
	if !slices.Equal(ids, got) {
		t.Fatalf("IDs returned by AppendBatch and Append %v differ from the stream's %v", ids, got)
	}
}

func testAppendBatchFnErrorAndEmpty(t *testing.T, s store.Store, _ func(time.Duration)) {
	ba := batchAppender(t, s)
	ctx := testContext(t)
	if _, err := appendChainedBatch(ctx, ba, "audit", 0, "first", 3); err != nil {
		t.Fatal(err)
	}
	before, err := s.Head(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("refused")
	_, err = ba.AppendBatch(ctx, "audit", 0, func([]byte) ([][]byte, []byte, error) {
		return [][]byte{[]byte("a"), []byte("b")}, []byte("head"), errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("AppendBatch returned %v, want fn's error", err)
	}
	ids, err := ba.AppendBatch(ctx, "audit", 0, func([]byte) ([][]byte, []byte, error) {
		return nil, []byte("head"), nil
	})
	if err != nil || len(ids) != 0 {
		t.Fatalf("empty AppendBatch = %v, %v; want no IDs and no error", ids, err)
	}
	if entries := checkChain(t, s, "audit", 10); len(entries) != 3 {
		t.Fatalf("%d entries after a refused and an empty AppendBatch, want 3", len(entries))
	}
	if after, _ := s.Head(ctx, "audit"); !bytes.Equal(after, before) {
		t.Fatal("a refused or empty AppendBatch changed the head")
	}
	// Binary and empty entries survive.
	want := [][]byte{{0, 1, 2, 0xff}, {}, []byte("x")}
	if _, err := ba.AppendBatch(ctx, "bin", 0, func([]byte) ([][]byte, []byte, error) {
		return want, []byte("h"), nil
	}); err != nil {
		t.Fatal(err)
	}
	entries, err := s.Range(ctx, "bin", "", 0)
	if err != nil || len(entries) != len(want) {
		t.Fatalf("Range = %d entries, %v; want %d", len(entries), err, len(want))
	}
	for i, e := range entries {
		if !bytes.Equal(e.Value, want[i]) {
			t.Fatalf("entry %d = %q, want %q", i, e.Value, want[i])
		}
	}
}

func testAppendBatchMaxLen(t *testing.T, s store.Store, _ func(time.Duration)) {
	ba := batchAppender(t, s)
	ctx := testContext(t)
	const batches, size, maxLen = 25, 10, 20
	var ids []string
	for i := range batches {
		got, err := appendChainedBatch(ctx, ba, "audit", maxLen, strconv.Itoa(i), size)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	entries, err := s.Range(ctx, "audit", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < maxLen || len(entries) >= batches*size {
		t.Fatalf("%d entries after %d batched appends with maxLen %d, want at least %d and fewer than %d",
			len(entries), batches*size, maxLen, maxLen, batches*size)
	}
	kept := ids[len(ids)-len(entries):]
	for k, e := range entries {
		if e.ID != kept[k] {
			t.Fatalf("entry %d is %s, want %s: trimming must keep the newest entries in order", k, e.ID, kept[k])
		}
	}
	var last chainEntry
	if err := json.Unmarshal(entries[len(entries)-1].Value, &last); err != nil {
		t.Fatal(err)
	}
	head, err := s.Head(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	// The last batch chained each entry onto the previous one; recompute from its first.
	first := len(entries) - size
	var fe chainEntry
	if err := json.Unmarshal(entries[first].Value, &fe); err != nil {
		t.Fatal(err)
	}
	want := []byte(fe.Prev)
	for _, e := range entries[first:] {
		want = link(want, e.Value)
	}
	if !bytes.Equal(head, want) {
		t.Fatalf("Head = %.12q, want %.12q", head, want)
	}
}

func testAppendBatchContextDone(t *testing.T, s store.Store, _ func(time.Duration)) {
	ba := batchAppender(t, s)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ba.AppendBatch(canceled, "log", 0, func([]byte) ([][]byte, []byte, error) {
		return [][]byte{[]byte("e1"), []byte("e2")}, []byte("h"), nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendBatch with a canceled context returned %v, want %v", err, context.Canceled)
	}
	if entries, err := s.Range(testContext(t), "log", "", 0); err != nil || len(entries) != 0 {
		t.Fatalf("Range = %d entries, %v; an AppendBatch with a done context was stored", len(entries), err)
	}
}

func testReplicasAppendBatch(t *testing.T, a, b store.Store) {
	baA, baB := batchAppender(t, a), batchAppender(t, b)
	ctx := testContext(t)
	const perReplica, size = 12, 4
	replicas := []store.BatchAppender{baA, baB}
	parallel(t, 2*perReplica, func(i int) error {
		_, err := appendChainedBatch(ctx, replicas[i%2], "audit", 0, fmt.Sprintf("replica%d-%d", i%2, i), size)
		return err
	})
	fromA := checkChain(t, a, "audit", 5)
	fromB := checkChain(t, b, "audit", 100)
	if len(fromA) != 2*perReplica*size || len(fromB) != len(fromA) {
		t.Fatalf("replicas see %d and %d entries, want %d", len(fromA), len(fromB), 2*perReplica*size)
	}
}

// tailer is s as a store.Tailer; every store in this repository is one.
func tailer(t *testing.T, s store.Store) store.Tailer {
	t.Helper()
	tl, ok := s.(store.Tailer)
	if !ok {
		t.Fatalf("%T does not implement store.Tailer", s)
	}
	return tl
}

// tailWait is long enough that a Tail that should have been woken by an append but was not
// fails the test (it returns no entry) instead of passing late; it is never waited in full
// when the store works.
const tailWait = 30 * time.Second

func testTail(t *testing.T, s store.Store, _ func(time.Duration)) {
	ctx := testContext(t)
	tl := tailer(t, s)
	values := func(entries []store.Entry) string {
		var out []string
		for _, e := range entries {
			out = append(out, string(e.Value))
		}
		return strings.Join(out, ",")
	}
	appendValues := func(vs ...string) []string {
		t.Helper()
		var ids []string
		for _, v := range vs {
			id, err := s.Append(ctx, "log", 0, func([]byte) ([]byte, []byte, error) { return []byte(v), []byte("h" + v), nil })
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}

	// "$" on a stream that does not exist yet: nothing, and a cursor that sees what comes next.
	got, cursor, err := tl.Tail(ctx, "log", "$", 10, 0)
	if err != nil || len(got) != 0 || cursor == "" || cursor == "$" {
		t.Fatalf(`Tail("$") of an absent stream = %q, %q, %v; want nothing and a real cursor`, values(got), cursor, err)
	}
	ids := appendValues("e0", "e1", "e2")
	got, next, err := tl.Tail(ctx, "log", cursor, 2, 0)
	if err != nil || values(got) != "e0,e1" || next != ids[1] || got[0].ID != ids[0] {
		t.Fatalf("Tail(cursor, 2) = %q (next %q), %v; want e0,e1 (next %s)", values(got), next, err, ids[1])
	}
	got, next, err = tl.Tail(ctx, "log", next, 0, 0)
	if err != nil || values(got) != "e2" || next != ids[2] {
		t.Fatalf("Tail(next, all) = %q (next %q), %v; want e2 (next %s)", values(got), next, err, ids[2])
	}
	if got, again, err := tl.Tail(ctx, "log", next, 10, 0); err != nil || len(got) != 0 || again != next {
		t.Fatalf("Tail at the end without waiting = %q (next %q), %v; want nothing (next %s)", values(got), again, err, next)
	}
	// "$" on a stream with entries resolves to its last one; "" is its start.
	if got, end, err := tl.Tail(ctx, "log", "$", 10, 0); err != nil || len(got) != 0 || end != ids[2] {
		t.Fatalf(`Tail("$") = %q (next %q), %v; want nothing (next %s)`, values(got), end, err, ids[2])
	}
	if got, _, err := tl.Tail(ctx, "log", "", 1, 0); err != nil || values(got) != "e0" {
		t.Fatalf(`Tail("", 1) = %q, %v; want e0`, values(got), err)
	}

	// A waiting Tail is woken by the next append and returns it.
	type result struct {
		entries []store.Entry
		next    string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		entries, next, err := tl.Tail(ctx, "log", next, 10, tailWait)
		done <- result{entries, next, err}
	}()
	more := appendValues("e3")
	r := <-done
	if r.err != nil || values(r.entries) != "e3" || r.next != more[0] {
		t.Fatalf("waiting Tail = %q (next %q), %v; want e3 (next %s)", values(r.entries), r.next, r.err, more[0])
	}
	if _, _, err := tl.Tail(ctx, "log", "not-an-id", 1, 0); err == nil {
		t.Fatal("Tail with a malformed afterID succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := tl.Tail(cancelled, "log", "$", 1, tailWait); err == nil {
		t.Fatal("Tail with an ended context succeeded")
	}
}

// A replica waiting on the stream sees what another replica appends.
func testReplicasTail(t *testing.T, a, b store.Store) {
	ctx := testContext(t)
	_, cursor, err := tailer(t, b).Tail(ctx, "audit", "$", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		entries []store.Entry
		err     error
	}
	done := make(chan result, 1)
	go func() {
		var all []store.Entry
		for len(all) < 3 {
			entries, next, err := tailer(t, b).Tail(ctx, "audit", cursor, 10, tailWait)
			if err != nil || len(entries) == 0 {
				done <- result{all, err}
				return
			}
			all, cursor = append(all, entries...), next
		}
		done <- result{all, nil}
	}()
	var ids []string
	for i := range 3 {
		id, err := appendChained(ctx, a, "audit", 0, fmt.Sprintf("a%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	r := <-done
	if r.err != nil || len(r.entries) != 3 {
		t.Fatalf("replica b tailed %d of 3 entries appended on a: %v", len(r.entries), r.err)
	}
	for i, e := range r.entries {
		if e.ID != ids[i] {
			t.Fatalf("entry %d on b is %s, a appended %s", i, e.ID, ids[i])
		}
	}
}
