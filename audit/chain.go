package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
)

// The hash chain.
//
// Canonical form: an event's canonical form is its JSON line exactly as written (without the
// trailing newline) with the value of its last member, "hash", emptied, so that the line ends in
// `"hash":""}`. The hash is computed over the bytes that were written, never over a re-encoding,
// so it does not depend on a JSON library, a Go version or key order rules: a verifier in any
// language strips the newline, checks that the line ends in `"hash":"<64 hex>"}`, replaces that
// value by "" and hashes.
//
//	hash = lowercase hex( SHA-256( prev_hash || canonical ) )
//
// prev_hash is the 64 ASCII hex characters of the event's own prev_hash member: the hash of the
// event before it on the store stream, or Genesis for the first event. Every member, including
// prev_hash and replica_prev_hash, is inside the canonical form, so editing any byte of an event
// changes its hash, and deleting, inserting or reordering events breaks a prev_hash link.

// Genesis is the prev_hash of the first event of a chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

const hashHexLen = sha256.Size * 2

// hashMemberEmpty ends every canonical form; hashMember prefixes the filled-in value.
const (
	hashMemberEmpty = `,"hash":""}`
	hashMember      = `,"hash":"`
)

// chainHash computes the hash of a canonical line given its predecessor's hash. dst receives
// the 64 hex characters (no allocation).
// h is a reusable SHA-256 state.
func chainHash(h hash.Hash, dst *[hashHexLen]byte, prevHash []byte, canonical []byte) {
	var sum [sha256.Size]byte
	chainHashScratch(h, dst, &sum, prevHash, canonical)
}

// chainHashScratch is chainHash with caller-owned scratch space, allocation-free when scratch
// is already on the heap (the Log's hot path).
func chainHashScratch(h hash.Hash, dst *[hashHexLen]byte, scratch *[sha256.Size]byte, prevHash []byte, canonical []byte) {
	h.Reset()
	h.Write(prevHash)
	h.Write(canonical)
	hex.Encode(dst[:], h.Sum(scratch[:0]))
}

// sealLine turns a canonical line (ending in `"hash":""}`) into the written line by filling in
// the hash; the result reuses line's storage.
func sealLine(line []byte, hash *[hashHexLen]byte) []byte {
	line = line[:len(line)-2] // drop `"}`
	line = append(line, hash[:]...)
	return append(line, '"', '}')
}

var errNoHash = errors.New(`line does not end in "hash":"<64 hex digits>"}`)

// splitSealed returns the canonical form of a written line and the hash it claims.
// canonical is a fresh slice; line is not modified.
func splitSealed(line []byte) (canonical []byte, hash string, err error) {
	suffixLen := len(hashMember) + hashHexLen + 2
	if len(line) < suffixLen || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, "", errNoHash
	}
	start := len(line) - suffixLen
	if !bytes.Equal(line[start:start+len(hashMember)], []byte(hashMember)) {
		return nil, "", errNoHash
	}
	hash = string(line[start+len(hashMember) : len(line)-2])
	if !isHash(hash) {
		return nil, "", errNoHash
	}
	canonical = make([]byte, 0, start+len(hashMemberEmpty))
	canonical = append(canonical, line[:start]...)
	canonical = append(canonical, hashMemberEmpty...)
	return canonical, hash, nil
}

// isHash reports whether s is 64 lowercase hex digits.
func isHash[T string | []byte](s T) bool {
	if len(s) != hashHexLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// lineHash returns the hash a sealed line claims, or "" when it has none.
func lineHash(line []byte) string {
	line = bytes.TrimRight(line, "\n")
	suffixLen := len(hashMember) + hashHexLen + 2
	if len(line) < suffixLen {
		return ""
	}
	h := string(line[len(line)-hashHexLen-2 : len(line)-2])
	if !isHash(h) || !strings.HasPrefix(string(line[len(line)-suffixLen:]), hashMember) {
		return ""
	}
	return h
}

func newSHA() hash.Hash { return sha256.New() }
