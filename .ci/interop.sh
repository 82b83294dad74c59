#!/usr/bin/env bash
# Interoperability of opa-pat's signed bundles with the stock CLIs, offline:
#   - cosign v2.6.5 verify-blob accepts the sigstore bundle (key, no tlog,
#     an empty trusted root) and refuses a changed tarball and another key;
#   - cosign sign-blob with opa-pat's key makes a bundle opa-pat verifies, and
#     a key from cosign generate-key-pair signs opa-pat bundles;
#   - stock OPA v1.22.2 verifies OPA's .signatures.json (opa build
#     --verification-key) and refuses another key and a changed file;
#   - the gap: stock OPA with keys: and no signing block loads an unsigned
#     bundle, opa-pat refuses it.
#
# Usage: bash .ci/interop.sh [OPA_PAT_BINARY]     (run from anywhere)
# Builds opa-pat when no binary is given. The stock CLIs are installed once
# into COSIGN_BIN_DIR (default /tmp/cosignbin) and STOCK_OPA_DIR (default
# /tmp/stockopa): building cosign takes minutes the first time, seconds after.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=$(date +%s)

step() { printf '\n--> %s\n' "$*"; }
fail() { echo "interop: FAIL: $*" >&2; exit 1; }
# refuses CMD...: the command must fail.
refuses() { if "$@" >/dev/null 2>&1; then fail "accepted: $*"; fi; echo "refused, as it should: ${*:1:3} ..."; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

bin=${1:-}
if [ -z "$bin" ]; then
  bin=$work/opa-pat
  go build -o "$bin" ./cmd/opa-pat
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

cosign_dir=${COSIGN_BIN_DIR:-/tmp/cosignbin}
opa_dir=${STOCK_OPA_DIR:-/tmp/stockopa}
step "stock cosign v2.6.5 and OPA v1.22.2"
# (no grep -q or head in pipes: with pipefail, the writer's SIGPIPE fails them)
if ! "$cosign_dir/cosign" version 2>/dev/null | grep 'GitVersion: *v2.6.5' >/dev/null; then
  (cd "$work" && GOFLAGS=-mod=mod GOBIN="$cosign_dir" go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5)
fi
if ! "$opa_dir/opa" version 2>/dev/null | grep '^Version: 1.22.2$' >/dev/null; then
  (cd "$work" && GOFLAGS=-mod=mod GOBIN="$opa_dir" go install github.com/open-policy-agent/opa@v1.22.2)
fi
cosign=$cosign_dir/cosign
opa=$opa_dir/opa
"$cosign" version 2>/dev/null | grep GitVersion
"$opa" version | grep '^Version:'

export COSIGN_PASSWORD=interop
settings=$repo/examples/settings.json
[ -f "$settings" ] || { settings=$work/settings.json; echo '{"organizations": {"octo-org": {"classic_access": "allow"}}}' >"$settings"; }

step "opa-pat: keys, build from rego/ with $(basename "$settings"), verify"
"$bin" keys generate --output-prefix "$work/a" >/dev/null
"$bin" keys generate --output-prefix "$work/b" >/dev/null
"$bin" bundle build --settings "$settings" --key "$work/a.key" --output "$work/bundle.tar.gz"
"$bin" bundle build --settings "$settings" --key "$work/b.key" --output "$work/by-b.tar.gz" >/dev/null
"$bin" bundle verify --key "$work/a.pub" "$work/bundle.tar.gz"

# A changed file inside: the policy with one rule added, repacked.
mkdir "$work/x"
tar -xzf "$work/bundle.tar.gz" -C "$work/x"
printf '\nbackdoor := true\n' >>"$work/x/pat/pat.rego"
(cd "$work/x" && tar -czf "$work/changed.tar.gz" .)
cp "$work/bundle.tar.gz.sigstore.json" "$work/changed.tar.gz.sigstore.json"
refuses "$bin" bundle verify --key "$work/a.pub" "$work/changed.tar.gz"

step "cosign verify-blob accepts the sigstore bundle offline"
"$cosign" trusted-root create --out "$work/trusted-root.json"
"$cosign" verify-blob --key "$work/a.pub" --bundle "$work/bundle.tar.gz.sigstore.json" \
  --insecure-ignore-tlog --trusted-root "$work/trusted-root.json" "$work/bundle.tar.gz"
refuses "$cosign" verify-blob --key "$work/a.pub" --bundle "$work/changed.tar.gz.sigstore.json" \
  --insecure-ignore-tlog --trusted-root "$work/trusted-root.json" "$work/changed.tar.gz"
refuses "$cosign" verify-blob --key "$work/a.pub" --bundle "$work/by-b.tar.gz.sigstore.json" \
  --insecure-ignore-tlog --trusted-root "$work/trusted-root.json" "$work/by-b.tar.gz"

step "cosign sign-blob with opa-pat's key; opa-pat verifies it"
"$cosign" sign-blob --key "$work/a.key" --new-bundle-format --tlog-upload=false --yes \
  --bundle "$work/by-cosign.sigstore.json" "$work/bundle.tar.gz" >/dev/null
"$bin" bundle verify --key "$work/a.pub" --sigstore-bundle "$work/by-cosign.sigstore.json" "$work/bundle.tar.gz"

step "a key from cosign generate-key-pair signs an opa-pat bundle"
(cd "$work" && "$cosign" generate-key-pair --output-key-prefix "$work/c" >/dev/null 2>&1)
"$bin" bundle build --settings "$settings" --key "$work/c.key" --output "$work/by-c.tar.gz" >/dev/null
"$bin" bundle verify --key "$work/c.pub" "$work/by-c.tar.gz"
"$cosign" verify-blob --key "$work/c.pub" --bundle "$work/by-c.tar.gz.sigstore.json" \
  --insecure-ignore-tlog --trusted-root "$work/trusted-root.json" "$work/by-c.tar.gz"

step "stock OPA verifies OPA's signature (opa build --verification-key)"
"$opa" build -b "$work/bundle.tar.gz" --verification-key "$work/a.pub" --signing-alg ES256 \
  --capabilities rego/capabilities.json -o "$work/rebuilt.tar.gz"
echo "stock opa build: verified"
refuses "$opa" build -b "$work/by-b.tar.gz" --verification-key "$work/a.pub" --signing-alg ES256 \
  --capabilities rego/capabilities.json -o "$work/rebuilt-b.tar.gz"
refuses "$opa" build -b "$work/changed.tar.gz" --verification-key "$work/a.pub" --signing-alg ES256 \
  --capabilities rego/capabilities.json -o "$work/rebuilt-changed.tar.gz"

step "the gap: keys: without a signing block, an unsigned bundle"
mkdir -p "$work/plain/demo"
printf 'package demo\n\nallow := true\n' >"$work/plain/demo/demo.rego"
"$opa" build -b "$work/plain" -o "$work/unsigned.tar.gz"
{
  echo "keys:"
  echo "  default:"
  echo "    algorithm: ES256"
  echo "    key: |"
  sed 's/^/      /' "$work/a.pub"
  echo "bundles:"
  echo "  authz:"
  echo "    resource: file://$work/unsigned.tar.gz"
} >"$work/config.yaml"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 30000))
}
# health NAME BINARY: start a server with the config, print /health?bundles's status.
health() {
  local port code=000
  port=$(free_port)
  "$2" run --server --addr "127.0.0.1:$port" --config-file "$work/config.yaml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health?bundles" || true)
    [ "$code" = 200 ] && break
    grep 'Bundle load failed' "$work/$1.log" >/dev/null && break
    sleep 0.1
  done
  kill "${pids[-1]}" 2>/dev/null || true
  echo "$code"
}
stock=$(health stock "$opa")
ours=$(health opa-pat "$bin")
echo "stock OPA: /health?bundles $stock (loads the unsigned bundle); opa-pat: $ours"
[ "$stock" = 200 ] || fail "stock OPA did not load the unsigned bundle (the gap this step shows is gone?)"
[ "$ours" != 200 ] || fail "opa-pat loaded an unsigned bundle with keys configured"
grep -m 1 -o 'Bundle load failed: bundle missing .signatures.json file' "$work/opa-pat.log"

echo
echo "interop: OK in $(( $(date +%s) - start ))s"
