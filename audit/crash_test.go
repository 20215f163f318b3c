package audit

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/store/memory"
)

// TestKill9LosesNoAcknowledgedEvent runs a writer in a child process that prints the ID of
// every event Record acknowledged, kills it with SIGKILL mid-load, and checks that every
// acknowledged event is in the file and that the file's chain verifies (resuming it too).
// The whole-server version (kill -9 of airlock serve during calls) belongs to the e2e tests.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if path := os.Getenv("AIRLOCK_AUDIT_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNoAcknowledgedEvent$")
	cmd.Env = append(os.Environ(), "AIRLOCK_AUDIT_CRASH_CHILD="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(20 * time.Second)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked[id] = true
		}
		if len(acked) == 3000 || time.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	for sc.Scan() { // acknowledgements already printed before the kill count too
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked[id] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("child acknowledged only %d events", len(acked))
	}
	files, err := FileSet(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := VerifyFiles(ChainFile, files...)
	if err != nil {
		t.Fatalf("chain after kill -9: %+v %v", res, err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for line := range strings.Lines(string(b)) {
			if i := strings.Index(line, `"id":"`); i >= 0 {
				seen[line[i+6:i+32]] = true
			}
		}
	}
	for id := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged event %s is not in the file (%d acknowledged, %d in file)", id, len(acked), len(seen))
		}
	}
	// The chain resumes after the crash.
	l := newTestLog(t, LogConfig{File: path, FileMaxBytes: 64 << 10})
	if err := l.Record(context.Background(), sampleEvent(1)); err != nil {
		t.Fatal(err)
	}
	files, _ = FileSet(path)
	if res2, err := VerifyFiles(ChainFile, files...); err != nil || res2.Events != res.Events+1 {
		t.Fatalf("after restart: %+v %v", res2, err)
	}
}

func crashChild(path string) {
	l, err := NewLog(context.Background(), LogConfig{Store: memory.New(nil), File: path, FileMaxBytes: 64 << 10, Replica: "child"})
	if err != nil {
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		e := sampleEvent(i)
		if err := l.Record(context.Background(), e); err != nil {
			os.Exit(4)
		}
		w.WriteString("ack " + e.ID + "\n")
		w.Flush()
	}
}
