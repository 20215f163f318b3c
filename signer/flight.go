package signer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults for the cross-replica mint lock.
const (
	// DefaultLockTTL bounds how long a replica that died mid-mint can hold the others off.
	DefaultLockTTL = 10 * time.Second
	// defaultMintTimeout bounds one mint, including the wait for another replica's mint.
	defaultMintTimeout = 30 * time.Second
	pollMin            = 20 * time.Millisecond
	pollMax            = 500 * time.Millisecond
)

// mintFunc mints a credential: its serialised form (which the cache seals) and its expiry.
type mintFunc func(ctx context.Context) (value []byte, expires time.Time, err error)

// flight makes sure that one credential is minted once, however many callers ask for it at the
// same moment: singleflight joins the callers of one process, and a lock in the store (SetNX with
// a TTL) joins the replicas. The replicas that lose the lock poll the cache until the winner has
// written it, or take the lock over once it expires.
type flight struct {
	cache   *Cache
	group   singleflight.Group
	lockTTL time.Duration
	sleep   func(ctx context.Context, d time.Duration) error

	mints atomic.Uint64
	hits  atomic.Uint64

	// opened keeps the values this process has already read from the cache or minted, by
	// cache key, so that a repeat costs no store round trip (Redis) and no AES-GCM; the cache's
	// refresh margin applies to them too.
	openedMu sync.RWMutex
	opened   map[string]openedValue
}

type openedValue struct {
	v       []byte
	expires time.Time
}

// maxOpenedValues bounds flight.opened; past it, it starts again empty.
const maxOpenedValues = 4096

func (f *flight) lookupOpened(key string) ([]byte, bool) {
	f.openedMu.RLock()
	o, ok := f.opened[key]
	f.openedMu.RUnlock()
	if !ok || !f.cache.usable(o.expires) {
		return nil, false
	}
	return o.v, true
}

func (f *flight) remember(key string, v []byte, expires time.Time) {
	f.openedMu.Lock()
	if len(f.opened) >= maxOpenedValues {
		clear(f.opened)
	}
	f.opened[key] = openedValue{v, expires}
	f.openedMu.Unlock()
}

func newFlight(cache *Cache) *flight {
	return &flight{cache: cache, lockTTL: DefaultLockTTL, sleep: sleepCtx, opened: map[string]openedValue{}}
}

// stats returns how many credentials were minted and how many requests were answered without
// minting (from the cache, or by sharing another caller's mint).
func (f *flight) stats() (mints, hits uint64) { return f.mints.Load(), f.hits.Load() }

// get returns the credential cached under key, minting it when absent.
func (f *flight) get(ctx context.Context, key string, mint mintFunc) ([]byte, error) {
	if v, ok := f.lookupOpened(key); ok {
		f.hits.Add(1)
		return v, nil
	}
	if v, expires, ok, err := f.cache.Get(ctx, key); err == nil && ok {
		f.hits.Add(1)
		f.remember(key, v, expires)
		return v, nil
	} else if err != nil {
		f.cache.cfg.Logger.Warn("credential cache unavailable; minting", "cache_key", key, "error", err)
	}
	minted := false // set only by the closure this caller passed, if singleflight runs it
	ch := f.group.DoChan(key, func() (any, error) {
		// The shared work outlives any one caller: a caller that gives up must not fail the
		// others, so it runs on a context that keeps values but not cancellation.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultMintTimeout)
		defer cancel()
		v, expires, didMint, err := f.getOrMint(ctx, key, mint)
		minted = didMint
		if err == nil {
			f.remember(key, v, expires)
		}
		return v, err
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		if !minted {
			f.hits.Add(1)
		}
		return r.Val.([]byte), nil
	}
}

// getOrMint runs once per key and process at a time.
func (f *flight) getOrMint(ctx context.Context, key string, mint mintFunc) (value []byte, expires time.Time, minted bool, err error) {
	lock := lockKey(key)
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	wait := pollMin
	for {
		// Another flight of this process, or another replica, may have just written it.
		if v, expires, ok, err := f.cache.Get(ctx, key); err == nil && ok {
			return v, expires, false, nil
		}
		won, err := f.cache.cfg.Store.SetNX(ctx, lock, token, f.lockTTL)
		if err != nil {
			// Without a working store there is no one to coordinate with; minting beats failing.
			f.cache.cfg.Logger.Warn("credential mint lock unavailable; minting without it", "cache_key", key, "error", err)
			won = true
		}
		if won {
			v, expires, err := f.mintAndStore(ctx, key, mint)
			f.unlock(ctx, lock, token)
			return v, expires, err == nil, err
		}
		if err := f.sleep(ctx, wait); err != nil {
			return nil, time.Time{}, false, fmt.Errorf("wait for another replica to mint: %w", err)
		}
		wait = min(wait*2, pollMax)
	}
}

func (f *flight) mintAndStore(ctx context.Context, key string, mint mintFunc) ([]byte, time.Time, error) {
	v, expires, err := mint(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	f.mints.Add(1)
	if err := f.cache.Put(ctx, key, v, expires); err != nil {
		// The credential is good; only sharing it failed. Serve it and let the next call mint.
		f.cache.cfg.Logger.Warn("could not cache minted credential", "cache_key", key, "error", err)
	}
	return v, expires, nil
}

var errLockNotOurs = errors.New("lock held by another minter")

// unlock deletes the lock only if it is still ours: after a slow mint the lock may have expired
// and been taken by another replica, whose lock must not be released by us.
func (f *flight) unlock(ctx context.Context, lock string, token []byte) {
	err := f.cache.cfg.Store.Update(ctx, lock, func(old []byte) ([]byte, time.Duration, error) {
		if old == nil || !bytes.Equal(old, token) {
			return nil, 0, errLockNotOurs
		}
		return nil, 0, nil
	})
	if err != nil && !errors.Is(err, errLockNotOurs) {
		f.cache.cfg.Logger.Warn("could not release credential mint lock; it expires by itself", "lock", lock, "error", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
