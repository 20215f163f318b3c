#!/usr/bin/env bash
# The full test suite, as CI runs it: installs the real peers the integration tests start
# (scripts/install-test-deps.sh), then formatting, vet, staticcheck and every test, integration
# tests included. `go test -short ./...` runs the unit tests alone in under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
BIN="${AIRLOCK_TESTBIN:-$(go env GOPATH)/bin}"
export PATH="$BIN:$PATH"
export AIRLOCK_TESTBIN="$BIN"

unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi
go vet ./...
staticcheck ./...
go test -count=1 -timeout 50m ./...
