// Command gen writes awscat's embedded table from the aws-sdk-go models in the module cache:
//
//	go run ./internal/gen -out table.json.gz
//
// It is run by `go generate` in catalog/awscat; awscat's tests fail when the table is stale.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/airlockhq/airlock/catalog/awscat/internal/awsmodel"
)

const sdkModule = "github.com/aws/aws-sdk-go"

func main() {
	out := flag.String("out", "table.json.gz", "file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	dir, version, err := sdkLocation()
	if err != nil {
		return err
	}
	t, err := awsmodel.Build(dir, version)
	if err != nil {
		return err
	}
	b, err := awsmodel.Encode(t)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// sdkLocation asks the go command where the required aws-sdk-go version lives.
func sdkLocation() (dir, version string, err error) {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", sdkModule).Output()
	if err != nil {
		return "", "", fmt.Errorf("locate %s (is it downloaded? go mod download %s): %w", sdkModule, sdkModule, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "" {
		return "", "", fmt.Errorf("locate %s: unexpected %q", sdkModule, b)
	}
	return f[0], f[1], nil
}
