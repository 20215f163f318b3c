#!/usr/bin/env bash
# Installs the real peers the integration tests start: redis-server, awscli and chromium from
# Debian, MinIO + mc and fake-gcs-server with `go install`, and Dex built from its module source
# (its go.mod carries a replace directive, so `go install` cannot build it). Versions are pinned; binaries are cached
# under $AIRLOCK_TESTBIN (default: $(go env GOPATH)/bin) so a second run does not rebuild.
set -euo pipefail

BIN="${AIRLOCK_TESTBIN:-$(go env GOPATH)/bin}"
mkdir -p "$BIN"
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
DEX_VERSION=v0.0.0-20260303133905-11d2eeb52b42 # tag v2.45.1
STATICCHECK_VERSION=v0.8.2
FAKE_GCS_VERSION=v1.56.1

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -x /usr/bin/aws ] || need_apt+=(awscli)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v gcc >/dev/null || need_apt+=(gcc) # go test -race needs cgo, which needs a C compiler
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp() { [ -x "$BIN/$1" ] && [ -f "$BIN/.$1.version" ] && [ "$(cat "$BIN/.$1.version")" = "$2" ]; }

if ! stamp minio "$MINIO_VERSION"; then
  GOBIN="$BIN" go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" >"$BIN/.minio.version"
fi
if ! stamp mc "$MC_VERSION"; then
  GOBIN="$BIN" go install "github.com/minio/mc@$MC_VERSION"
  echo "$MC_VERSION" >"$BIN/.mc.version"
fi
if ! stamp dex "$DEX_VERSION"; then
  W="$(mktemp -d)"
  go mod download "github.com/dexidp/dex@$DEX_VERSION"
  cp -r "$(go env GOMODCACHE)/github.com/dexidp/dex@$DEX_VERSION" "$W/dex-src"
  chmod -R u+w "$W/dex-src"
  (cd "$W/dex-src" && go mod edit -dropreplace github.com/dexidp/dex/api/v2 &&
    GOFLAGS=-mod=mod go build -o "$BIN/dex" ./cmd/dex)
  rm -rf "$W"
  echo "$DEX_VERSION" >"$BIN/.dex.version"
fi
if ! stamp staticcheck "$STATICCHECK_VERSION"; then
  GOBIN="$BIN" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  echo "$STATICCHECK_VERSION" >"$BIN/.staticcheck.version"
fi
if ! stamp fake-gcs-server "$FAKE_GCS_VERSION"; then
  GOBIN="$BIN" go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
  echo "$FAKE_GCS_VERSION" >"$BIN/.fake-gcs-server.version"
fi
# gcloud (Debian package google-cloud-cli) comes from Google's apt repository, not Debian's, so
# it cannot be installed here; the gcloud end-to-end tests fail without it rather than skip.
if ! command -v gcloud >/dev/null; then
  echo "warning: gcloud is not on PATH: the gcloud end-to-end tests will fail; install google-cloud-cli from https://cloud.google.com/sdk/docs/install#deb" >&2
fi
echo "test peers ready in $BIN"
