package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/store/memory"
)

// chainedLines records n events and returns the file's lines and the events.
func chainedLines(t *testing.T, n int) ([][]byte, []Event) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := newTestLog(t, LogConfig{File: path})
	var evs []Event
	for i := range n {
		e := sampleEvent(i)
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, *e)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")), evs
}

func TestVerifyNamesFirstTamperedEvent(t *testing.T) {
	lines, evs := chainedLines(t, 10)
	for i := range lines { // normalise: every line with its newline
		if !bytes.HasSuffix(lines[i], []byte("\n")) {
			lines[i] = append(lines[i], '\n')
		}
	}
	edit := func(i int, from, to string) [][]byte {
		out := slices.Clone(lines)
		out[i] = bytes.Replace(out[i], []byte(from), []byte(to), 1)
		return out
	}
	forged := func() []byte {
		// A well-formed event with a correct hash of its own, inserted after line 5.
		e := evs[1]
		e.Decision = "allow"
		e.Hash = ""
		b := appendEventJSON(nil, &e)
		var sum [hashHexLen]byte
		chainHash(newSHA(), &sum, []byte(e.PrevHash), b)
		return append(sealLine(b, &sum), '\n')
	}
	cases := []struct {
		name    string
		lines   [][]byte
		line    int
		id      string
		problem string
	}{
		{"delete", slices.Delete(slices.Clone(lines), 3, 4), 4, evs[4].ID, "prev_hash mismatch"},
		{"insert", slices.Insert(slices.Clone(lines), 5, forged()), 6, evs[1].ID, "prev_hash mismatch"},
		{"swap", func() [][]byte {
			out := slices.Clone(lines)
			out[4], out[5] = out[5], out[4]
			return out
		}(), 5, evs[5].ID, "prev_hash mismatch"},
		{"edit decision", edit(6, `"decision":"hold"`, `"decision":"allow"`), 7, evs[6].ID, "hash mismatch"},
		{"edit approvers", edit(2, `"policy":`, `"approvers":["mallory"],"policy":`), 3, evs[2].ID, "hash mismatch"},
		{"edit hash", edit(8, evs[8].Hash, strings.Repeat("a", 64)), 9, evs[8].ID, "hash mismatch"},
		{"truncate line", func() [][]byte {
			out := slices.Clone(lines)
			out[2] = append(out[2][:len(out[2])/2:len(out[2])/2], '\n')
			return out
		}(), 3, "", "not a complete JSON event"},
		{"truncate file mid-line", func() [][]byte {
			out := slices.Clone(lines)
			out[9] = out[9][:len(out[9])-20]
			return out
		}(), 10, "", "not a complete JSON event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Verify(bytes.NewReader(bytes.Join(c.lines, nil)))
			bad, ok := err.(*BadEvent)
			if !ok {
				t.Fatalf("Verify = %+v, %v; want a *BadEvent", res, err)
			}
			if bad.Line != c.line || bad.ID != c.id || !strings.Contains(bad.Problem, c.problem) {
				t.Fatalf("bad event = %+v, want line %d id %q problem %q", bad, c.line, c.id, c.problem)
			}
			if res.Events != c.line-1 {
				t.Fatalf("%d events verified before the bad one, want %d", res.Events, c.line-1)
			}
		})
	}
	t.Run("untouched", func(t *testing.T) {
		res, err := Verify(bytes.NewReader(bytes.Join(lines, nil)))
		if err != nil || res.Events != 10 || !res.Complete() {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("head deleted", func(t *testing.T) {
		// Starting mid-chain verifies but is reported as incomplete.
		res, err := Verify(bytes.NewReader(bytes.Join(lines[3:], nil)))
		if err != nil || res.Events != 7 || res.Complete() {
			t.Fatalf("%+v %v", res, err)
		}
	})
}

func TestVerifyStoreDetectsDeletedNewest(t *testing.T) {
	st := memory.New(nil)
	l := newTestLog(t, LogConfig{Store: st})
	for i := range 5 {
		if err := l.Record(context.Background(), sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A second stream holding only the first 4 entries, with the real head: the 5th was deleted.
	entries, _ := st.Range(context.Background(), DefaultStream, "", 0)
	head, _ := st.Head(context.Background(), DefaultStream)
	cut := memory.New(nil)
	for i, e := range entries[:4] {
		h := []byte(lineHash(e.Value))
		if i == 3 {
			h = head
		}
		if _, err := cut.Append(context.Background(), "s", 0, func([]byte) ([]byte, []byte, error) { return e.Value, h, nil }); err != nil {
			t.Fatal(err)
		}
	}
	_, err := VerifyStore(context.Background(), cut, "s")
	if bad, ok := err.(*BadEvent); !ok || !strings.Contains(bad.Problem, "newest events were deleted") {
		t.Fatalf("VerifyStore = %v", err)
	}
	res, err := VerifyStore(context.Background(), st, DefaultStream)
	if err != nil || res.Events != 5 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestCanonicalFormIsLanguageNeutral(t *testing.T) {
	// The documented recipe, done with plain string operations: strip the hash value, hash
	// prev_hash || rest. No JSON re-encoding.
	lines, _ := chainedLines(t, 3)
	for _, line := range lines {
		line = bytes.TrimSuffix(line, []byte("\n"))
		var f struct{ PrevHash, Hash string }
		_ = json.Unmarshal(line, &struct {
			P *string `json:"prev_hash"`
			H *string `json:"hash"`
		}{&f.PrevHash, &f.Hash})
		canonical := strings.Replace(string(line), `"hash":"`+f.Hash+`"}`, `"hash":""}`, 1)
		var sum [hashHexLen]byte
		chainHash(newSHA(), &sum, []byte(f.PrevHash), []byte(canonical))
		if string(sum[:]) != f.Hash {
			t.Fatalf("recipe gives %s, line says %s", sum, f.Hash)
		}
	}
}
