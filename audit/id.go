package audit

import (
	crand "crypto/rand"
	"math/rand/v2"
	"time"
)

// idGenerator makes ULID-shaped event IDs: 48 bits of Unix milliseconds and 80 random bits in
// Crockford base32, 26 characters that sort by time. Within one Log they are strictly
// increasing (the random part is incremented when the clock does not move forward), so a
// replica's IDs sort in the order it recorded them. Across replicas they are unique and sort by
// time, but the order of the chain is the order of the store stream, not of IDs.
// Not safe for concurrent use: the Log calls it under its lock.
type idGenerator struct {
	rnd    *rand.ChaCha8
	lastMS uint64
	hi     uint16 // top 16 of the 80 random bits
	lo     uint64 // low 64
}

func newIDGenerator() *idGenerator {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on supported platforms (Go 1.24+ panics instead)
	return &idGenerator{rnd: rand.NewChaCha8(seed)}
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idLen is the length of an event ID.
const idLen = 26

func (g *idGenerator) next(t time.Time) string {
	var id [idLen]byte
	return string(g.appendNext(id[:0], t))
}

// appendNext appends the next ID to dst.
func (g *idGenerator) appendNext(dst []byte, t time.Time) []byte {
	ms := uint64(t.UnixMilli())
	if ms > g.lastMS {
		g.lastMS = ms
		g.hi = uint16(g.rnd.Uint64())
		g.lo = g.rnd.Uint64()
	} else {
		g.lo++
		if g.lo == 0 {
			g.hi++
		}
	}
	var id [idLen]byte
	// 128 bits: 48 time | 16 hi | 64 lo, written as 26 base32 digits (the first carries 3 bits).
	t48 := g.lastMS & (1<<48 - 1)
	hiBits := uint64(t48)<<16 | uint64(g.hi) // 64 bits
	loBits := g.lo
	for i := idLen - 1; i >= 0; i-- {
		id[i] = crockford[loBits&31]
		// shift the 128-bit value (hiBits:loBits) right by 5
		loBits = loBits>>5 | hiBits<<59
		hiBits >>= 5
	}
	return append(dst, id[:]...)
}

// idTime returns the time encoded in an event ID, and whether s looks like one.
func idTime(s string) (time.Time, bool) {
	if len(s) != idLen {
		return time.Time{}, false
	}
	var v uint64
	for i := 0; i < 10; i++ { // the first 10 digits hold 50 bits: 2 zero bits and 48 of time
		d := crockfordValue(s[i])
		if d < 0 {
			return time.Time{}, false
		}
		v = v<<5 | uint64(d)
	}
	for i := 10; i < 26; i++ {
		if crockfordValue(s[i]) < 0 {
			return time.Time{}, false
		}
	}
	return time.UnixMilli(int64(v)), true
}

func crockfordValue(c byte) int {
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}
