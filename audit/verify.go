package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/store"
)

// ChainMode says which link a verifier follows.
type ChainMode int

const (
	// ChainFile follows one replica's file: replica_prev_hash when an event has it, else
	// prev_hash (single-replica files and events written without a file sink).
	ChainFile ChainMode = iota
	// ChainGlobal follows prev_hash: the store stream, or an export of it (GET /api/v1/audit).
	ChainGlobal
)

// BadEvent is the first event that breaks the chain. It is an error.
type BadEvent struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`     // 1-based line in File (0 for the store)
	EntryID string `json:"entry_id,omitempty"` // store stream entry
	ID      string `json:"id,omitempty"`       // event id, when the line parses
	Problem string `json:"problem"`
}

func (b *BadEvent) Error() string {
	var where []string
	if b.File != "" {
		where = append(where, b.File)
	}
	if b.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", b.Line))
	}
	if b.EntryID != "" {
		where = append(where, "stream entry "+b.EntryID)
	}
	if b.ID != "" {
		where = append(where, "event "+b.ID)
	}
	return fmt.Sprintf("chain broken at %s: %s", strings.Join(where, ", "), b.Problem)
}

// VerifyResult is what a verification found.
type VerifyResult struct {
	// Events is how many events verified (all of them, or those before Bad).
	Events int `json:"events"`
	// FirstLink is the link (prev_hash or replica_prev_hash) of the first event. Genesis
	// means the chain is complete from its start; anything else means older events are not
	// part of what was checked (rotated away, trimmed from the stream, or removed).
	FirstLink string `json:"first_link,omitempty"`
	FirstID   string `json:"first_id,omitempty"`
	LastHash  string `json:"last_hash,omitempty"`
	LastID    string `json:"last_id,omitempty"`
	// Bad is the first event that breaks the chain, nil when everything verified.
	Bad *BadEvent `json:"bad,omitempty"`
}

// Complete reports whether the chain starts at Genesis.
func (r VerifyResult) Complete() bool { return r.FirstLink == Genesis }

// Verifier checks a sequence of event lines, incrementally.
type Verifier struct {
	Mode ChainMode

	sha    hash.Hash
	result VerifyResult
}

// NewVerifier returns a verifier that follows mode's links.
func NewVerifier(mode ChainMode) *Verifier { return &Verifier{Mode: mode, sha: sha256.New()} }

type chainFields struct {
	ID              string `json:"id"`
	PrevHash        string `json:"prev_hash"`
	ReplicaPrevHash string `json:"replica_prev_hash"`
	Hash            string `json:"hash"`
}

// Check verifies the next line (without its newline). It returns the first problem; after one,
// further lines are ignored.
func (v *Verifier) Check(line []byte) *BadEvent {
	if v.result.Bad != nil {
		return v.result.Bad
	}
	bad := func(id, problem string) *BadEvent {
		v.result.Bad = &BadEvent{ID: id, Problem: problem}
		return v.result.Bad
	}
	var f chainFields
	if err := json.Unmarshal(line, &f); err != nil {
		return bad("", "not a complete JSON event (truncated or corrupted line)")
	}
	canonical, claimed, err := splitSealed(line)
	if err != nil {
		return bad(f.ID, "no hash: "+err.Error())
	}
	if f.Hash != claimed || !isHash(f.PrevHash) {
		return bad(f.ID, "malformed hash or prev_hash member")
	}
	var sum [hashHexLen]byte
	chainHash(v.sha, &sum, []byte(f.PrevHash), canonical)
	if string(sum[:]) != claimed {
		return bad(f.ID, "hash mismatch: the event was edited after it was written")
	}
	link := f.PrevHash
	linkName := "prev_hash"
	if v.Mode == ChainFile && f.ReplicaPrevHash != "" {
		link, linkName = f.ReplicaPrevHash, "replica_prev_hash"
	}
	if v.result.Events == 0 {
		v.result.FirstLink, v.result.FirstID = link, f.ID
	} else if link != v.result.LastHash {
		return bad(f.ID, fmt.Sprintf("%s mismatch: does not follow event %s (an event was deleted, inserted or reordered before this one)",
			linkName, v.result.LastID))
	}
	v.result.Events++
	v.result.LastHash, v.result.LastID = claimed, f.ID
	return nil
}

// Result returns what was verified so far.
func (v *Verifier) Result() VerifyResult { return v.result }

// maxLine bounds one event line when reading files (events are small; this is a safety cap).
const maxLine = 16 << 20

// verifyReader feeds r's lines to v, annotating a problem with name and line number.
func (v *Verifier) verifyReader(r io.Reader, name string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// a long line: collect it
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(full) < maxLine {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if len(line) > 0 {
			lineNo++
			// A line cut short fails the JSON or hash check; a missing final newline alone is
			// harmless.
			trimmed := bytes.TrimSuffix(line, []byte("\n"))
			if len(bytes.TrimSpace(trimmed)) > 0 {
				if b := v.Check(trimmed); b != nil {
					b.File, b.Line = name, lineNo
					return b
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}

func (v *Verifier) badAt(id, problem string) *BadEvent {
	v.result.Bad = &BadEvent{ID: id, Problem: problem}
	return v.result.Bad
}

// Verify checks the chain of a JSONL stream of events (one replica's file: ChainFile mode).
// It returns the result and, when the chain is broken, a *BadEvent naming the first bad event
// (also in the result's Bad); other errors are read errors.
func Verify(r io.Reader) (VerifyResult, error) {
	v := NewVerifier(ChainFile)
	if err := v.verifyReader(r, ""); err != nil {
		return v.Result(), err
	}
	return v.Result(), nil
}

// VerifyFiles checks files as one chain, in the order given (see FileSet for a rotated set).
func VerifyFiles(mode ChainMode, paths ...string) (VerifyResult, error) {
	v := NewVerifier(mode)
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return v.Result(), err
		}
		err = v.verifyReader(f, p)
		f.Close()
		if err != nil {
			return v.Result(), err
		}
	}
	return v.Result(), nil
}

// VerifyStore checks the chain of the store stream (global mode), then that its last event is
// the stream's head, which catches the newest entries being deleted.
func VerifyStore(ctx context.Context, s store.Store, stream string) (VerifyResult, error) {
	v := NewVerifier(ChainGlobal)
	after := ""
	for round := 0; ; round++ {
		for {
			entries, err := s.Range(ctx, stream, after, 1000)
			if err != nil {
				return v.Result(), fmt.Errorf("read stream %s: %w", stream, err)
			}
			for _, e := range entries {
				if b := v.Check(e.Value); b != nil {
					b.EntryID = e.ID
					return v.Result(), b
				}
				after = e.ID
			}
			if len(entries) < 1000 {
				break
			}
		}
		head, err := s.Head(ctx, stream)
		if err != nil {
			return v.Result(), fmt.Errorf("read stream head %s: %w", stream, err)
		}
		last := v.Result().LastHash
		if string(head) == last || (len(head) == 0 && v.Result().Events == 0) {
			return v.Result(), nil
		}
		if round == 5 { // writers keep appending; what was read verified, the head moved on
			return v.Result(), nil
		}
		// Either writers appended meanwhile (read on) or the newest entries are gone.
		more, err := s.Range(ctx, stream, after, 1)
		if err != nil {
			return v.Result(), fmt.Errorf("read stream %s: %w", stream, err)
		}
		if len(more) == 0 {
			b := v.badAt("", fmt.Sprintf("the stream's head is %.64s but its last event %s has hash %s: the newest events were deleted",
				head, v.Result().LastID, last))
			return v.Result(), b
		}
	}
}

// ErrUnknownID is returned by Since when the event is not on the stream (anymore).
var ErrUnknownID = errors.New("audit: event id not on the stream (too old or unknown)")

// since implements Log.Since and the CLI's reads of a store.
func since(ctx context.Context, s store.Store, stream, afterID string, limit int) ([]Event, error) {
	if limit <= 0 || limit > 10_000 {
		limit = 1000
	}
	cursor := afterID
	if afterID != "" && !isStreamID(afterID) {
		var err error
		if cursor, err = findEntry(ctx, s, stream, afterID); err != nil {
			return nil, err
		}
	}
	entries, err := s.Range(ctx, stream, cursor, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("audit: read stream %s: %w", stream, err)
	}
	out := make([]Event, len(entries))
	for i, e := range entries {
		if err := json.Unmarshal(e.Value, &out[i]); err != nil {
			return nil, fmt.Errorf("audit: stream entry %s: %w", e.ID, err)
		}
	}
	return out, nil
}

// isStreamID reports whether s looks like a stream entry ID ("1700000000000-3").
func isStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	return ok && ms != "" && seq != "" && strings.Trim(ms, "0123456789") == "" && strings.Trim(seq, "0123456789") == ""
}

// findEntry finds the stream entry of an event ID. Event IDs carry their time, so the scan
// starts a few minutes before it (clock skew between replicas and Redis) and falls back to the
// whole stream.
func findEntry(ctx context.Context, s store.Store, stream, id string) (string, error) {
	needle := []byte(`"id":"` + id + `"`)
	starts := []string{""}
	if t, ok := idTime(id); ok {
		starts = []string{fmt.Sprintf("%d-0", t.Add(-5*time.Minute).UnixMilli()), ""}
	}
	for _, after := range starts {
		for {
			entries, err := s.Range(ctx, stream, after, 1000)
			if err != nil {
				return "", fmt.Errorf("audit: read stream %s: %w", stream, err)
			}
			for _, e := range entries {
				// id is the second member of every event: look only at the line's start.
				head := e.Value[:min(len(e.Value), 64)]
				if bytes.Contains(head, needle) {
					return e.ID, nil
				}
			}
			if len(entries) < 1000 {
				break
			}
			after = entries[len(entries)-1].ID
		}
	}
	return "", ErrUnknownID
}
