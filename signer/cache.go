package signer

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/airlockhq/airlock/store"
)

// DefaultRefreshMargin is how long before expiry a cached credential stops being handed out, so
// that a forwarded call never arrives upstream with a credential that expires in flight.
const DefaultRefreshMargin = 2 * time.Minute

// CacheConfig configures a Cache.
type CacheConfig struct {
	Store store.Store
	// Key is the 32-byte AES-256-GCM key that cached secrets are sealed with.
	Key    []byte
	Logger *slog.Logger
	Now    func() time.Time
	// RefreshMargin: a value is neither stored nor returned once it is within this of expiry.
	RefreshMargin time.Duration
}

// CheckAndSetDefaults refuses a missing store or a key of the wrong size and fills the rest.
func (c *CacheConfig) CheckAndSetDefaults() error {
	if c.Store == nil {
		return errors.New("signer: cache store is required")
	}
	if len(c.Key) != 32 {
		return fmt.Errorf("signer: cache key must be 32 bytes (AES-256), got %d", len(c.Key))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RefreshMargin == 0 {
		c.RefreshMargin = DefaultRefreshMargin
	}
	if c.RefreshMargin < 0 {
		return errors.New("signer: refresh margin must not be negative")
	}
	return nil
}

// Cache keeps minted credentials in the store, sealed with AES-256-GCM. Keys are hashes (see
// CacheKey), so neither identities nor policy text appear in the store's key space, and each
// value is sealed with its own store key as additional data, so a value copied under another key
// does not open.
type Cache struct {
	cfg  CacheConfig
	aead cipher.AEAD
}

// NewCache returns a cache over cfg.Store.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("signer: cache key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("signer: cache key: %w", err)
	}
	return &Cache{cfg: cfg, aead: aead}, nil
}

// CacheKey names a cached credential by the hash of its parts (cloud, target, role, policy, ...).
// Each part is length-prefixed so that ("a|b", "c") and ("a", "b|c") differ.
func CacheKey(parts ...string) string {
	var scratch [512]byte
	buf := scratch[:0]
	for _, p := range parts {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(p)))
		buf = append(buf, p...)
	}
	sum := sha256.Sum256(buf)
	const prefix = "signer:cred:"
	var out [len(prefix) + 2*sha256.Size]byte
	copy(out[:], prefix)
	hex.Encode(out[len(prefix):], sum[:])
	return string(out[:])
}

// lockKey is the cross-replica mint lock that goes with a cache key.
func lockKey(key string) string { return key + ":lock" }

// Get returns the plaintext cached under key and its expiry. ok is false when nothing usable is
// cached: absent, within the refresh margin of expiry, or not decryptable (the key was rotated or
// the value was tampered with). err is only a store failure other than absence.
func (c *Cache) Get(ctx context.Context, key string) (value []byte, expires time.Time, ok bool, err error) {
	sealed, err := c.cfg.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("signer: read credential cache: %w", err)
	}
	plain, err := c.open(key, sealed)
	if err != nil {
		// Never log the value or the cipher's detail; the hashed key says which entry it was.
		c.cfg.Logger.Warn("credential cache entry does not decrypt; treating it as a miss (was the encryption key rotated?)",
			"cache_key", key)
		return nil, time.Time{}, false, nil
	}
	expires = time.Unix(0, int64(binary.BigEndian.Uint64(plain[:8])))
	if !c.usable(expires) {
		return nil, time.Time{}, false, nil
	}
	return plain[8:], expires, true, nil
}

// Put seals value and stores it under key until the refresh margin before expires. A value that
// is already within the margin is not stored.
func (c *Cache) Put(ctx context.Context, key string, value []byte, expires time.Time) error {
	ttl := expires.Sub(c.cfg.Now()) - c.cfg.RefreshMargin
	if ttl <= 0 {
		return nil
	}
	if err := c.cfg.Store.Set(ctx, key, c.seal(key, value, expires), ttl); err != nil {
		return fmt.Errorf("signer: write credential cache: %w", err)
	}
	return nil
}

// usable reports whether a credential expiring at expires may still be handed out.
func (c *Cache) usable(expires time.Time) bool {
	return c.cfg.Now().Add(c.cfg.RefreshMargin).Before(expires)
}

// seal returns nonce || AES-GCM(expiry || value) with key as additional data.
func (c *Cache) seal(key string, value []byte, expires time.Time) []byte {
	plain := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(plain, uint64(expires.UnixNano()))
	plain = append(plain, value...)
	out := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("signer: crypto/rand failed: " + err.Error()) // crypto/rand.Read does not fail on supported platforms
	}
	return c.aead.Seal(out, out, plain, []byte(key))
}

func (c *Cache) open(key string, sealed []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(sealed) < ns+c.aead.Overhead()+8 {
		return nil, errors.New("sealed value too short")
	}
	plain, err := c.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(key))
	if err != nil {
		return nil, err
	}
	if len(plain) < 8 {
		return nil, errors.New("sealed value too short")
	}
	return plain, nil
}
