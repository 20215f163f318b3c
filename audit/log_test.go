package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store"
	"github.com/airlockhq/airlock/store/memory"
)

func sampleEvent(i int) *Event {
	return &Event{
		Kind:      KindDecision,
		RequestID: fmt.Sprintf("req-%d", i),
		Identity:  Identity{Subject: "u1", Email: "alice@example.com", Groups: []string{"engineers", "oncall"}},
		Target:    "prod-aws", Cloud: "aws", Action: "ec2:TerminateInstances", Service: "ec2",
		Operation: "TerminateInstances", Resource: "i-0123", Region: "eu-west-1", Risk: "destructive",
		Decision: "hold", Policy: "prod-destructive-needs-sre", Reason: "INC-42 <cleanup> & more",
		ClientIP: "10.0.0.1", UserAgent: "aws-cli/2", DurationMS: 1.25,
	}
}

func newTestLog(t testing.TB, cfg LogConfig) *Log {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memory.New(nil)
	}
	if cfg.Replica == "" {
		cfg.Replica = "r1"
	}
	l, err := NewLog(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestEncoderMatchesEncodingJSON holds the hand-written encoder to encoding/json for every field,
// so that a field added to Event without updating appendEventJSON fails here.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	full := Event{}
	v := reflect.ValueOf(&full).Elem()
	var fill func(v reflect.Value, depth int)
	fill = func(v reflect.Value, depth int) {
		switch v.Kind() {
		case reflect.String:
			v.SetString(fmt.Sprintf("s%d \"q\" <&> \u2028 \x01 \xff é\n\t", depth))
		case reflect.Int:
			v.SetInt(int64(200 + depth))
		case reflect.Float64:
			v.SetFloat(12.5)
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.String {
				v.Set(reflect.ValueOf([]string{"a", "b\"c"}))
				return
			}
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			for i := 0; i < 2; i++ {
				fill(v.Index(i), depth*10+i)
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeOf(time.Time{}) {
				v.Set(reflect.ValueOf(time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)))
				return
			}
			for i := 0; i < v.NumField(); i++ {
				fill(v.Field(i), depth*10+i)
			}
		default:
			t.Fatalf("Event has a field of kind %s: teach appendEventJSON and this test", v.Kind())
		}
	}
	fill(v, 1)
	full.Hash = ""
	cases := map[string]Event{
		"full":  full,
		"empty": {Time: time.Unix(0, 0).UTC()},
		"float": {DurationMS: 1e-7, Time: time.Unix(1, 5).UTC()},
		"big":   {DurationMS: 1e22, UpstreamStatus: -1},
		"ident": {Identity: Identity{Groups: []string{"g"}}},
		"also":  {Also: []Permission{{Action: "iam:PassRole"}, {Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}}},
	}
	for name, e := range cases {
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got := appendEventJSON(nil, &e)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	if f := v.Type().Field(v.NumField() - 1); f.Name != "Hash" {
		t.Fatalf("the last field of Event must be Hash (the canonical form relies on it), got %s", f.Name)
	}
}

func TestRecordChainsAndVerifies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.jsonl")
	st := memory.New(nil)
	l := newTestLog(t, LogConfig{Store: st, File: path})
	ctx := context.Background()
	var ids []string
	for i := range 50 {
		e := sampleEvent(i)
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.ID == "" || !isHash(e.Hash) || e.V != SchemaVersion || e.Time.Location() != time.UTC {
			t.Fatalf("event not completed: %+v", e)
		}
		if len(ids) > 0 && e.ID <= ids[len(ids)-1] {
			t.Fatalf("ids not increasing: %s after %s", e.ID, ids[len(ids)-1])
		}
		ids = append(ids, e.ID)
	}
	res, err := VerifyFiles(ChainFile, path)
	if err != nil || res.Events != 50 || !res.Complete() {
		t.Fatalf("verify file: %+v %v", res, err)
	}
	sres, err := VerifyStore(ctx, st, DefaultStream)
	if err != nil || sres.Events != 50 || sres.LastHash != res.LastHash {
		t.Fatalf("verify store: %+v %v", sres, err)
	}
	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}

	// Since by event ID, by stream cursor, from the start.
	all, err := l.Since(ctx, "", 0)
	if err != nil || len(all) != 50 || all[0].ID != ids[0] {
		t.Fatalf("since start: %d %v", len(all), err)
	}
	got, err := l.Since(ctx, ids[9], 5)
	if err != nil || len(got) != 5 || got[0].ID != ids[10] || got[4].ID != ids[14] {
		t.Fatalf("since id: %v %v", got, err)
	}
	if _, err := l.Since(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 5); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("unknown id: %v", err)
	}

	// Restart: a new Log over the same file and a fresh memory store continues the chain.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := newTestLog(t, LogConfig{Store: memory.New(nil), File: path})
	for i := range 5 {
		if err := l2.Record(ctx, sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	res, err = VerifyFiles(ChainFile, path)
	if err != nil || res.Events != 55 {
		t.Fatalf("verify after restart: %+v %v", res, err)
	}
	if err := l.Record(ctx, sampleEvent(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("record after close: %v", err)
	}
}

// failingStore fails Append: the primary sink is down.
type failingStore struct{ store.Store }

func (failingStore) Append(context.Context, string, int64, func([]byte) ([]byte, []byte, error)) (string, error) {
	return "", errors.New("redis: connection refused")
}

func TestRecordFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := newTestLog(t, LogConfig{Store: failingStore{memory.New(nil)}, File: path})
	err := l.Record(context.Background(), sampleEvent(1))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Record = %v, want the store's error", err)
	}
	if h := l.Health(); h.StoreFailures != 1 || h.Recorded != 0 || len(h.Problems(time.Now())) == 0 {
		t.Fatalf("health: %+v", h)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("nothing may reach the file when the stream refused it: %q", b)
	}

	// A file that cannot be written fails closed too.
	dir := t.TempDir()
	l2 := newTestLog(t, LogConfig{File: filepath.Join(dir, "audit.jsonl")})
	l2.mu.Lock()
	l2.file.f.Close() // writes now fail with "file already closed"
	l2.mu.Unlock()
	if err := l2.Record(context.Background(), sampleEvent(1)); err == nil {
		t.Fatal("Record succeeded with a broken file")
	}
}

func TestRotationConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l := newTestLog(t, LogConfig{File: path, FileMaxBytes: 8 << 10})
	const writers, each = 8, 250
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Record(context.Background(), sampleEvent(w*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	files, err := FileSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("expected many rotated files, got %d", len(files))
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 8<<10 {
			t.Errorf("%s has %d bytes, over the limit", f, len(b))
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends mid-line", f)
		}
		for line := range bytes.Lines(b) {
			var e Event
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("%s: split line %q", f, line)
			}
			seen[e.RequestID] = true
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct events in the files, want %d", len(seen), writers*each)
	}
	res, err := VerifyFiles(ChainFile, files...)
	if err != nil || res.Events != writers*each || !res.Complete() {
		t.Fatalf("verify rotated set: %+v %v", res, err)
	}
	// Keep N removes the oldest rotated files; the rest still verifies (not from genesis).
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := newTestLog(t, LogConfig{File: path, FileMaxBytes: 8 << 10, FileKeep: 3})
	for i := range 100 {
		if err := l2.Record(context.Background(), sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	files, _ = FileSet(path)
	if len(files) != 4 {
		t.Fatalf("keep 3: %d files", len(files))
	}
	res, err = VerifyFiles(ChainFile, files...)
	if err != nil || res.Complete() {
		t.Fatalf("verify trimmed set: %+v %v", res, err)
	}
}

func TestTornTailSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := newTestLog(t, LogConfig{File: path})
	for i := range 3 {
		if err := l.Record(context.Background(), sampleEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"v":1,"id":"01TORN`)
	f.Close()
	l2 := newTestLog(t, LogConfig{File: path})
	if err := l2.Record(context.Background(), sampleEvent(9)); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyFiles(ChainFile, path)
	if err != nil || res.Events != 4 {
		t.Fatalf("%+v %v", res, err)
	}
	torn, _ := filepath.Glob(path + ".torn-*")
	if len(torn) != 1 {
		t.Fatalf("torn line not kept aside: %v", torn)
	}
}

func TestLiveSubscribeAndStdout(t *testing.T) {
	var out syncBuffer
	l := newTestLog(t, LogConfig{Stdout: &out})
	ch, cancel := l.Subscribe(Filter{Action: "EC2:terminate*", Decision: "hold"})
	defer cancel()
	e := sampleEvent(1)
	other := sampleEvent(2)
	other.Action = "s3:GetObject"
	for _, ev := range []*Event{other, e} {
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-ch:
		if got.ID != e.ID || got.Hash != e.Hash {
			t.Fatalf("got %+v", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no live event")
	}
	deadline := time.Now().Add(2 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	res, err := Verify(strings.NewReader(out.String()))
	if err != nil || res.Events != 2 {
		t.Fatalf("stdout lines: %+v %v\n%s", res, err, out.String())
	}
}

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"ec2:*", "ec2:TerminateInstances", true},
		{"ec2:*", "s3:GetObject", false},
		{"*Delete*", "s3:DeleteObject", true},
		{"Microsoft.Compute/*/delete", "Microsoft.Compute/virtualMachines/delete", true},
		{"s3:Get?bject", "s3:GetObject", true},
		{"", "", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	} {
		if got := MatchGlob(c.p, c.s); got != c.want {
			t.Errorf("MatchGlob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func BenchmarkRecord(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l := newTestLog(b, LogConfig{File: path, StreamMaxLen: -1})
	ctx := context.Background()
	e := sampleEvent(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.ID, e.Time = "", time.Time{}
		if err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordParallel records from 8 goroutines per CPU into the in-memory store (group
// commit) and a file: the memory-store replica under load.
func BenchmarkRecordParallel(b *testing.B) {
	benchRecordParallel(b, newTestLog(b, LogConfig{File: filepath.Join(b.TempDir(), "audit.jsonl")}))
}

// benchRecordParallel records from 8 goroutines per CPU (16 on 2 CPUs, as the harness's
// concurrency 16).
func benchRecordParallel(b *testing.B, l *Log) {
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			e := sampleEvent(1)
			e.Time = time.Time{}
			if err := l.Record(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
