#!/usr/bin/env bash
# The main job: install what is needed, build the release binary, and run a local three-node site on the
# embedded defaults (loopback ports 7379..7384, data under ./kvs-data/node{1,2,3}). It checks the cluster
# the way a user would (a write through a follower, a linearizable read elsewhere, a checkpoint, a leader
# killed and replaced) and then keeps serving until Ctrl-C, which stops every node with SIGTERM.
#   bash scripts/run.sh           # start, check, keep serving
#   bash scripts/run.sh --once    # start, check, stop (exit 0 only if every check passed)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
cargo build --release --locked --bin kvs-raft
bin="$CARGO_TARGET_DIR/release/kvs-raft"
once=0
[[ "${1:-}" == "--once" ]] && once=1

data="${KVS_RAFT_RUN_DIR:-./kvs-data}"
cluster="1=127.0.0.1:7380,2=127.0.0.1:7382,3=127.0.0.1:7384"
declare -A pids
start() {
  local id=$1 client=$((7377 + 2 * $1)) peer=$((7378 + 2 * $1))
  mkdir -p "$data/node$id"
  RUST_LOG="${RUST_LOG:-info}" "$bin" serve --id "$id" --cluster-id local --data-dir "$data/node$id" \
    --listen-client "127.0.0.1:$client" --listen-peer "127.0.0.1:$peer" --initial-cluster "$cluster" \
    >>"$data/node$id.log" 2>&1 &
  pids[$id]=$!
}
stop_all() {
  for id in "${!pids[@]}"; do kill -TERM "${pids[$id]}" 2>/dev/null || true; done
  for id in "${!pids[@]}"; do wait "${pids[$id]}" 2>/dev/null || true; done
}
trap stop_all EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
url() { echo "http://127.0.0.1:$((7377 + 2 * $1))"; }
leader() { curl -sf "$(url "$1")/v1/cluster" | sed -n 's/.*"leader":\([0-9]*\).*/\1/p'; }
wait_leader() { # wait_leader <node to ask> <seconds>: prints the leader id
  local deadline=$((SECONDS + $2)) l
  while ((SECONDS < deadline)); do
    l=$(leader "$1" || true)
    [[ -n "$l" ]] && { echo "$l"; return 0; }
    sleep 0.1
  done
  return 1
}

for id in 1 2 3; do start "$id"; done
echo "started nodes 1..3 (client API on 127.0.0.1:7379, :7381, :7383; logs in $data/node*.log)"
l=$(wait_leader 1 20) || fail "no leader elected"
echo "✓ leader elected: node $l"
f=$(( l % 3 + 1 )); o=$(( f % 3 + 1 ))
ts=$(curl -sf -XPUT "$(url "$f")/v1/kv/player:42/pos" --data-binary '48.8584,2.2945') || fail "write via follower $f"
echo "✓ PUT player:42/pos through follower $f (forwarded to the leader) → $ts"
v=$(curl -sf "$(url "$o")/v1/kv/player:42/pos?consistency=linearizable") || fail "linearizable read on node $o"
[[ "$v" == "48.8584,2.2945" ]] || fail "node $o read '$v'"
echo "✓ linearizable GET on node $o → $v"
curl -sf -XPOST "$(url "$f")/v1/kv/player:42/score/incr?delta=5" >/dev/null || fail "incr"
cp=$(curl -sf -XPOST -H 'content-type: application/json' "$(url "$o")/v1/entities/player:42/checkpoint" \
  --data '{"name":"cp1","data":"lap 1"}') || fail "checkpoint"
echo "✓ checkpoint cp1 for player:42 → $cp"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url "$l")/v1/kv/player:42/pos")
[[ "$code" == 404 ]] || fail "pre-checkpoint state still visible ($code)"
old_ts=$(echo "$ts" | sed -n 's/.*"ts":\([0-9]*\).*/\1/p')
v=$(curl -sf "$(url "$l")/v1/kv/player:42/pos?at=$old_ts") || fail "read at the old ts"
echo "✓ after the checkpoint the old position is gone now (404) but readable at ts $old_ts → $v"
echo "killing the leader (node $l) with SIGKILL..."
kill -KILL "${pids[$l]}"; wait "${pids[$l]}" 2>/dev/null || true; unset "pids[$l]"
t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }
while ! curl -sf -XPUT "$(url "$f")/v1/kv/after-failover" --data-binary yes >/dev/null; do
  (( $(ms) > 10000 )) && fail "no write accepted 10 s after the leader died"
  sleep 0.05
done
echo "✓ writes accepted again $(ms) ms after the leader died (new leader: node $(leader "$f"))"
start "$l"
for _ in $(seq 100); do
  v=$(curl -sf "$(url "$l")/v1/kv/after-failover?consistency=stale" || true)
  [[ "$v" == yes ]] && break; sleep 0.1
done
[[ "$v" == yes ]] || fail "restarted node $l did not catch up"
echo "✓ node $l restarted and caught up"
nl=$(leader "$f")
echo "the cluster as its leader (node $nl) sees it:"
curl -sf "$(url "$nl")/v1/cluster"; echo
if ((once)); then echo "run OK"; exit 0; fi
echo "serving; Ctrl-C stops the site"
wait
