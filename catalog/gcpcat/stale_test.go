package gcpcat

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestTableMatchesGoMod fails when go.mod moved google.golang.org/api to another version
// than the embedded table was generated from: run `go generate ./catalog/gcpcat`.
func TestTableMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*google\.golang\.org/api (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require google.golang.org/api")
	}
	want := "google.golang.org/api " + string(m[1])
	if got := mustIndex().module; got != want {
		t.Fatalf("discovery.json.gz was generated from %s, go.mod requires %s: run go generate ./catalog/gcpcat", got, want)
	}
}

// TestTableIsFresh regenerates the table from the module cache and compares it with the
// embedded one, so that a change to the generator without regenerating fails.
func TestTableIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates from 650 discovery documents")
	}
	out := filepath.Join(t.TempDir(), "discovery.json.gz")
	cmd := exec.Command("go", "run", "./gen", "-o", out)
	cmd.Stderr = io.Discard
	if b, err := cmd.Output(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gunzip(t, fresh), gunzip(t, discoveryTable)) {
		t.Fatal("discovery.json.gz is stale: run go generate ./catalog/gcpcat")
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
