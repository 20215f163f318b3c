#!/usr/bin/env bash
# The full test suite, as CI runs it: installs the real peers the integration tests start
# (scripts/install-test-deps.sh), then formatting, vet, staticcheck and every test, integration
# tests included, under the race detector. `go test -short ./...` runs the unit tests alone in
# under a minute.
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
# With the race detector: the proxy, the audit log, the stores and the approval workflow are
# concurrent by design (about 4 minutes on 2 cores, against 2.5 without).
CGO_ENABLED=1 go test -race -count=1 -timeout 50m ./...
