#!/usr/bin/env bash
# The API check: docs/openapi.yaml must be a valid OpenAPI document, and a live node must answer what it
# says. Starts a single-node `kvs-raft serve` (the debug binary) on free loopback ports in a temp data dir,
# with client auth on (a token file with one admin token, made by `kvs-raft token create`), checks that a
# protected route refuses a request without the token (401), runs schemathesis against it with the
# document and the admin token, and stops the node again. Exit 0 only if the document
# is valid and schemathesis found nothing: no 5xx, every status code, content type, header and body as
# documented.
#   bash scripts/api-check.sh          # after `cargo build --bin kvs-raft`
# Environment: KVS_RAFT_BIN (binary; default $CARGO_TARGET_DIR/debug/kvs-raft), KVS_RAFT_API_VENV (the
# Python venv, default /var/tmp/kvs-raft-api-venv), KVS_RAFT_API_EXAMPLES (examples per operation,
# default 60), KVS_RAFT_API_SEED (schemathesis seed, default fixed so runs are repeatable).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# Pinned tool versions (the venv is rebuilt when these change).
requirements=(openapi-spec-validator==0.9.0 schemathesis==4.32.5)
venv="${KVS_RAFT_API_VENV:-/var/tmp/kvs-raft-api-venv}"
bin="${KVS_RAFT_BIN:-$CARGO_TARGET_DIR/debug/kvs-raft}"
examples="${KVS_RAFT_API_EXAMPLES:-60}"
seed="${KVS_RAFT_API_SEED:-20240611}"
doc=docs/openapi.yaml

[[ -x "$bin" ]] || { echo "api-check: no binary at $bin (cargo build --bin kvs-raft)" >&2; exit 1; }

if [[ "$(cat "$venv/.kvs-requirements" 2>/dev/null || true)" != "${requirements[*]}" ]]; then
  echo "api-check: creating the Python venv $venv (${requirements[*]})" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
  echo "${requirements[*]}" >"$venv/.kvs-requirements"
fi

echo "api-check: validating $doc" >&2
"$venv/bin/openapi-spec-validator" "$doc"

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
work=$(mktemp -d "${TMPDIR:-/tmp}/kvs-api-check.XXXXXX")
client_port=$(free_port)
peer_port=$(free_port)
while [[ "$peer_port" == "$client_port" ]]; do peer_port=$(free_port); done
pid=
stop() {
  local status=$?
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if ((status != 0)) && [[ -s "$work/node.log" ]]; then
    echo "api-check: the node's log (last 40 lines):" >&2
    tail -n 40 "$work/node.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap stop EXIT INT TERM

token=$("$bin" token create --name api-check --role admin --append "$work/tokens" 2>/dev/null)
RUST_LOG="${RUST_LOG:-warn}" "$bin" serve --id 1 --cluster-id api-check --data-dir "$work/data" \
  --listen-client "127.0.0.1:$client_port" --listen-peer "127.0.0.1:$peer_port" \
  --auth-token-file "$work/tokens" >"$work/node.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$client_port"
for _ in $(seq 100); do
  curl -sf "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "api-check: the node exited at start" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$url/readyz" >/dev/null || { echo "api-check: the node did not become ready in 10 s" >&2; exit 1; }
unauthenticated=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/cluster")
[[ "$unauthenticated" == 401 ]] || { echo "api-check: GET /v1/cluster without a token answered $unauthenticated, not 401" >&2; exit 1; }

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
# Run from the temp dir: schemathesis keeps its own state (.schemathesis/) in the working directory.
doc_path="$PWD/$doc"
schemathesis() {
  (cd "$work" && "$venv/bin/schemathesis" --no-color run "$doc_path" --url "$url" \
    --phases examples,coverage,fuzzing --seed "$seed" --workers 1 --request-timeout 10 \
    --generation-database none --header "Authorization: Bearer $token" "$@")
}
# Membership changes are fuzzed with valid requests too (they really change the membership of this
# one-node site): the node refuses every change that could stop it (the last voter, a voter added
# directly, a learner promoted before it caught up, a second change in flight, ...) with a documented 4xx,
# so the site must still take writes afterwards. Invalid requests must be refused (negative_data_rejection).
membership=(--include-operation-id addMember --include-operation-id removeMember)
echo "api-check: schemathesis against $url ($examples examples per operation, seed $seed)" >&2
schemathesis --checks "$checks" --exclude-operation-id addMember --exclude-operation-id removeMember \
  --max-examples "$examples" --max-time 70
echo "api-check: schemathesis, membership changes" >&2
schemathesis --checks "$checks,negative_data_rejection" "${membership[@]}" --mode all \
  --max-examples "$examples" --max-time 30
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" -XPUT "$url/v1/kv/api-check/after-membership" --data-binary x)
[[ "$status" == 200 ]] || { echo "api-check: a write after the membership fuzzing answered $status" >&2; exit 1; }

kill -0 "$pid" 2>/dev/null || { echo "api-check: the node died during the run" >&2; exit 1; }
echo "api-check: OK" >&2
