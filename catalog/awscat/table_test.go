package awscat

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/catalog/awscat/internal/awsmodel"
)

// TestTableIsFresh rebuilds the table from the models in the module cache and compares it with
// the embedded one: run `go generate ./catalog/awscat` when it fails.
func TestTableIsFresh(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", "github.com/aws/aws-sdk-go").Output()
	if err != nil {
		t.Skipf("aws-sdk-go models not available: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Skipf("aws-sdk-go models not downloaded: %q", out)
	}
	if testing.Short() {
		// Hash the model files only; the full rebuild below also catches generator changes.
		embedded, err := awsmodel.Decode(tableData)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := awsmodel.InputHash(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if embedded.SDK != f[1] || embedded.InputSHA256 != hash {
			t.Fatalf("table.json.gz (%s) is stale against %s %s: run go generate ./catalog/awscat", embedded.SDK, f[0], f[1])
		}
		return
	}
	fresh, err := awsmodel.Build(f[0], f[1])
	if err != nil {
		t.Fatal(err)
	}
	enc, err := awsmodel.Encode(fresh)
	if err != nil {
		t.Fatal(err)
	}
	want, err := awsmodel.Uncompress(enc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := awsmodel.Uncompress(tableData)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("table.json.gz is stale against %s %s: run go generate ./catalog/awscat", f[0], f[1])
	}
}
