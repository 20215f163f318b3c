package signer

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store/memory"
)

// fakeClock is a settable clock shared by the cache, the memory store and fake servers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestCache(t testing.TB, st *memory.Store, key []byte, clock *fakeClock) *Cache {
	t.Helper()
	c, err := NewCache(CacheConfig{Store: st, Key: key, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCacheConfigChecks(t *testing.T) {
	st := memory.New(nil)
	for name, cfg := range map[string]CacheConfig{
		"no store":        {Key: make([]byte, 32)},
		"short key":       {Store: st, Key: make([]byte, 16)},
		"negative margin": {Store: st, Key: make([]byte, 32), RefreshMargin: -time.Second},
	} {
		if _, err := NewCache(cfg); err == nil {
			t.Errorf("%s: NewCache accepted %+v", name, cfg)
		}
	}
}

func TestCacheRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := memory.New(clock.Now)
	c := newTestCache(t, st, testKey(t), clock)
	key := CacheKey("aws", "prod", "arn:aws:iam::1:role/r", "", "alice", "")

	if _, _, ok, err := c.Get(ctx, key); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	exp := clock.Now().Add(15 * time.Minute)
	if err := c.Put(ctx, key, []byte("value"), exp); err != nil {
		t.Fatal(err)
	}
	v, gotExp, ok, err := c.Get(ctx, key)
	if err != nil || !ok || string(v) != "value" || !gotExp.Equal(exp) {
		t.Fatalf("Get = %q, %v, %v, %v; want value, %v, true", v, gotExp, ok, err, exp)
	}
	if _, _, ok, _ := c.Get(ctx, CacheKey("aws", "other")); ok {
		t.Fatal("another key hit")
	}
}

func TestCacheStoresOnlyCiphertextUnderHashedKeys(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := memory.New(clock.Now)
	c := newTestCache(t, st, testKey(t), clock)
	const secret, token = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
	policy := SessionPolicy("s3:DeleteObject", "arn:aws:s3:::bucket/key")
	key := CacheKey("aws", "prod", "arn:aws:iam::1:role/r", "", "alice@example.com", policy)
	for _, leak := range []string{"alice", "prod", "s3:DeleteObject", "role/r"} {
		if strings.Contains(key, leak) {
			t.Errorf("cache key %q contains %q", key, leak)
		}
	}
	if err := c.Put(ctx, key, []byte(secret+"|"+token), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	raw, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secret, token, "EXAMPLE"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("stored bytes contain %q", leak)
		}
	}

	// The same value sealed twice differs (random nonce).
	if err := c.Put(ctx, key, []byte(secret+"|"+token), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	raw2, _ := st.Get(ctx, key)
	if bytes.Equal(raw, raw2) {
		t.Error("two seals of one value are identical: nonce reused")
	}

	// Tampered ciphertext is a miss, not an error.
	for _, i := range []int{0, len(raw) / 2, len(raw) - 1} {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if err := st.Set(ctx, key, bad, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, _, ok, err := c.Get(ctx, key); ok || err != nil {
			t.Errorf("tampered byte %d: ok=%v err=%v, want a miss", i, ok, err)
		}
	}
	// Truncated values too.
	for _, bad := range [][]byte{nil, raw[:5], raw[:30]} {
		_ = st.Set(ctx, key, bad, time.Hour)
		if _, _, ok, err := c.Get(ctx, key); ok || err != nil {
			t.Errorf("truncated to %d: ok=%v err=%v, want a miss", len(bad), ok, err)
		}
	}

	// A value moved under another key does not open there (the key is additional data).
	other := CacheKey("aws", "prod", "arn:aws:iam::1:role/r", "", "mallory@example.com", policy)
	_ = st.Set(ctx, other, raw, time.Hour)
	if _, _, ok, _ := c.Get(ctx, other); ok {
		t.Error("a value swapped to another key decrypted")
	}

	// A rotated key makes old entries misses.
	_ = st.Set(ctx, key, raw, time.Hour)
	rotated := newTestCache(t, st, testKey(t), clock)
	if _, _, ok, err := rotated.Get(ctx, key); ok || err != nil {
		t.Errorf("rotated key: ok=%v err=%v, want a miss", ok, err)
	}
}

func TestCacheRefreshMargin(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := memory.New(clock.Now)
	c := newTestCache(t, st, testKey(t), clock) // default margin: 2 minutes
	key := CacheKey("k")
	exp := clock.Now().Add(15 * time.Minute)
	if err := c.Put(ctx, key, []byte("v"), exp); err != nil {
		t.Fatal(err)
	}
	clock.Advance(12*time.Minute + 59*time.Second)
	if _, _, ok, _ := c.Get(ctx, key); !ok {
		t.Fatal("miss 2m01s before expiry")
	}
	clock.Advance(time.Second)
	if _, _, ok, _ := c.Get(ctx, key); ok {
		t.Fatal("hit exactly at the refresh margin")
	}

	// The store's own TTL is expiry minus the margin, so Redis drops it at the same moment even
	// when the reader's check were skipped.
	if _, err := st.Get(ctx, key); err == nil {
		t.Fatal("store still holds the value after expiry - margin")
	}

	// A value already within the margin is not stored at all.
	if err := c.Put(ctx, key, []byte("v"), clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, key); err == nil {
		t.Fatal("stored a value inside the refresh margin")
	}
}

func TestCacheKeyIsUnambiguous(t *testing.T) {
	if CacheKey("a|b", "c") == CacheKey("a", "b|c") {
		t.Fatal("CacheKey parts run into each other")
	}
	if CacheKey("a", "") == CacheKey("a") {
		t.Fatal("CacheKey ignores an empty part")
	}
	if a, b := CacheKey("x", "y"), CacheKey("x", "y"); a != b {
		t.Fatal("CacheKey is not deterministic")
	}
}
