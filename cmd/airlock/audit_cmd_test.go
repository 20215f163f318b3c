package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/audit"
	"github.com/airlockhq/airlock/store/memory"
)

// writeAuditFile records n events into a rotated file set and returns the live file's path.
func writeAuditFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.NewLog(context.Background(), audit.LogConfig{Store: memory.New(nil), File: path, FileMaxBytes: 4 << 10, Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-48 * time.Hour)
	for i := range n {
		e := &audit.Event{Kind: audit.KindDecision, Time: start.Add(time.Duration(i) * time.Minute), Decision: "allow",
			Identity: audit.Identity{Email: "alice@example.com", Groups: []string{"payments"}}, Action: "s3:GetObject", Risk: "read", Target: "prod-aws"}
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditVerifyCommand(t *testing.T) {
	path := writeAuditFile(t, 60)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"audit", "verify", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "OK, 60 events") || !strings.Contains(out.String(), "files)") {
		t.Fatalf("output: %s", out.String())
	}
	// The shell's order (live file first) does not matter.
	set, _ := audit.FileSet(path)
	out.Reset()
	if code := run(context.Background(), append([]string{"audit", "verify", "--no-rotated", path}, set[:len(set)-1]...), &out, &errb); code != 0 {
		t.Fatalf("explicit set: exit %d: %s %s", code, out.String(), errb.String())
	}

	// Edit one field in the second rotated file: exit 1, naming the file, line and event.
	victim := set[1]
	b, _ := os.ReadFile(victim)
	lines := bytes.SplitAfter(b, []byte("\n"))
	var e audit.Event
	_ = json.Unmarshal(lines[2], &e)
	lines[2] = bytes.Replace(lines[2], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
	if err := os.WriteFile(victim, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	code := run(context.Background(), []string{"audit", "verify", path}, &out, &errb)
	want := fmt.Sprintf("%s, line 3, event %s: hash mismatch", victim, e.ID)
	if code != 1 || !strings.Contains(errb.String(), want) {
		t.Fatalf("exit %d, stderr %q, want %q", code, errb.String(), want)
	}
}

func TestReportCommand(t *testing.T) {
	path := writeAuditFile(t, 200)
	dir := t.TempDir()
	for _, format := range []string{"html", "md", "json"} {
		out := filepath.Join(dir, "report."+format)
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"report", "--since", "30d", "--format", format, "--file", path, "--out", out}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		switch format {
		case "html":
			if !bytes.Contains(b, []byte("<svg")) {
				t.Fatal("no chart")
			}
		case "json":
			var r audit.Report
			if err := json.Unmarshal(b, &r); err != nil || r.Events != 200 || r.Totals.Allowed != 200 {
				t.Fatalf("json report: %+v %v", r.Totals, err)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"report", "--since", "1h", "--format", "json", "--file", path}, &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	var r audit.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Events != 0 {
		t.Fatalf("--since 1h over events of 2 days ago: %d events, %v", r.Events, err)
	}
}

func TestAuditTailCommand(t *testing.T) {
	var conns atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		if conns.Add(1) > 1 {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/api/v1/audit/stream" || r.URL.Query().Get("action") != "ec2:*" {
			http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": airlock audit stream\n\n")
		for i, a := range []string{"ec2:StopInstances", "ec2:TerminateInstances"} {
			b, _ := json.Marshal(audit.Event{ID: fmt.Sprint(i), Kind: "decision", Decision: "hold", Action: a, Identity: audit.Identity{Email: "alice@example.com"}})
			fmt.Fprintf(w, "id: %d\nevent: audit\ndata: %s\n\n", i, b)
		}
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"audit", "tail", "--server", srv.URL, "--token", "tkn", "--action", "ec2:*"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if auth.Load() != "Bearer tkn" {
		t.Fatalf("Authorization %v", auth.Load())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "ec2:TerminateInstances") || !strings.Contains(lines[0], "alice@example.com") {
		t.Fatalf("tail output:\n%s", stdout.String())
	}
}
