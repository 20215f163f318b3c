package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// SigningKey derives the key that signs for one secret, day (YYYYMMDD), region and service.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k, region)
	k = hmacSum(k, service)
	return hmacSum(k, "aws4_request")
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// KeyCache remembers derived signing keys by secret and scope. The secret is part of the key
// (the SDK signer's cache keys by access key ID instead), so a wrong secret presented under a
// known key ID never finds the right key, and a key ID whose secret changes never signs with
// the old one. It is bounded: when full it forgets everything, enough for the few thousand
// credentials in use at once, never a leak. The zero value is ready; it is safe for concurrent
// use. Secrets stay in memory only.
type KeyCache struct {
	mu sync.RWMutex
	m  map[keyScope][]byte
}

type keyScope struct{ secret, date, region, service string }

const keyCacheEntries = 4096

// Key returns the signing key for this secret and scope, derived once. The caller must not
// modify it.
func (c *KeyCache) Key(secret, date, region, service string) []byte {
	scope := keyScope{secret, date, region, service}
	c.mu.RLock()
	k, ok := c.m[scope]
	c.mu.RUnlock()
	if ok {
		return k
	}
	k = SigningKey(secret, date, region, service)
	// The scope's strings may point into a request's headers; keep only copies.
	scope = keyScope{secret, strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= keyCacheEntries {
		c.m = make(map[keyScope][]byte)
	}
	c.m[scope] = k
	c.mu.Unlock()
	return k
}
