#!/usr/bin/env bash
# The write-path measurements of BENCHMARKS.md ("Fewer I/Os, messages and hops per write"), for one or more
# kvs-raft binaries, alternated: run it with a before and an after binary and compare the rows.
#   bash scripts/bench-write-path.sh [--pairs N] [--rates "1000 5000"] BIN [BIN...]
# For each binary, each round, on loopback ports 17379-17384 (data under a temporary dir):
#   - 1 node: 3,000 warm-up then 2,000 sequential 150-byte PUTs on one keep-alive connection: p50/p90/p99;
#   - 3 nodes: a 4 s, 20-client closed-loop warm-up, then 2,000 sequential PUTs through a follower and
#     2,000 on the leader; then `BIN bench --workload put --open-loop` over all three nodes for 10 s at each
#     rate, with the CPU per write (all three nodes' user + system time / acknowledged writes).
# The load generator is the first binary's `bench` for every row, so the rows differ only in the server.
set -euo pipefail
pairs=1
rates="1000 5000"
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --pairs) pairs=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "usage: $0 [--pairs N] [--rates \"R ...\"] BIN [BIN...]" >&2; exit 2; }
client=$1
work=$(mktemp -d)
pids=()
stop() {
  ((${#pids[@]})) || return 0
  kill "${pids[@]}" 2>/dev/null || true
  while kill -0 "${pids[@]}" 2>/dev/null; do sleep 0.1; done
  pids=()
}
trap 'stop; rm -rf "$work"' EXIT

seq_puts() { # seq_puts PORT N WARMUP: prints p50 p90 p99 in ms
  python3 - "$1" "$2" "$3" <<'PY'
import http.client, sys, time
port, n, warm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
lat = []
for i in range(warm + n):
    t = time.perf_counter()
    c.request("PUT", f"/v1/kv/k{i % 1000}", body=b"x" * 150)
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"PUT answered {r.status}")
    if i >= warm:
        lat.append(time.perf_counter() - t)
lat.sort()
q = lambda p: lat[int(p * len(lat)) - 1] * 1000
print(f"p50 {q(.5):.3f} p90 {q(.9):.3f} p99 {q(.99):.3f} ms")
PY
}

site() { # site BIN N: starts N nodes; sets `port` to the leader's client port
  local bin=$1 n=$2 cl="" i
  rm -rf "$work/d"; mkdir -p "$work/d"
  for i in $(seq 1 "$n"); do cl="$cl${cl:+,}$i=127.0.0.1:$((17378 + 2 * i))"; done
  for i in $(seq 1 "$n"); do
    RUST_LOG=warn "$bin" serve --id "$i" --cluster-id bench --data-dir "$work/d/n$i" \
      --listen-client "127.0.0.1:$((17377 + 2 * i))" --listen-peer "127.0.0.1:$((17378 + 2 * i))" \
      --initial-cluster "$cl" >"$work/d/n$i.log" 2>&1 &
    pids+=($!)
  done
  local l=""
  for _ in $(seq 200); do
    l=$(curl -sf http://127.0.0.1:17379/v1/cluster | sed -n 's/.*"leader":\([0-9]*\).*/\1/p' || true)
    [[ -n "$l" ]] && break
    sleep 0.1
  done
  [[ -n "$l" ]] || { echo "no leader elected" >&2; exit 1; }
  port=$((17377 + 2 * l))
}

cpu_ticks() { local t=0 p s; for p in "${pids[@]}"; do read -r -a s < <(cut -d' ' -f14,15 "/proc/$p/stat"); t=$((t + s[0] + s[1])); done; echo "$t"; }

ep=http://127.0.0.1:17379,http://127.0.0.1:17381,http://127.0.0.1:17383
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$pairs"); do
  for bin in "$@"; do
    echo "== round $round: $bin"
    site "$bin" 1
    echo "1 node, leader:       $(seq_puts "$port" 2000 3000)"
    stop
    site "$bin" 3
    follower=$((port == 17379 ? 17381 : 17379))
    "$client" bench --workload put --closed-loop --clients 20 --players 10000 --duration 4s --warmup 1s \
      --endpoints "$ep" >/dev/null 2>&1
    echo "3 nodes, via follower: $(seq_puts "$follower" 2000 0)"
    echo "3 nodes, leader:       $(seq_puts "$port" 2000 0)"
    for rate in $rates; do
      before=$(cpu_ticks)
      "$client" bench --workload put --open-loop --players "$rate" --rate 1 --duration 10s --warmup 0s \
        --endpoints "$ep" --json >"$work/open.json" 2>/dev/null
      after=$(cpu_ticks)
      python3 - "$work/open.json" "$rate" "$before" "$after" "$hz" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
rate, before, after, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ok = r["ok_ops"]
cpu = (after - before) / hz / ok * 1e6 if ok else float("nan")
l = r["latency_us"]
print(f"open loop {rate}/s: {ok} acknowledged, {r['errors']} errors, p50 {l['p50'] / 1000:.2f} ms, "
      f"p99 {l['p99'] / 1000:.2f} ms, CPU per write {cpu:.0f} us")
PY
    done
    stop
  done
done
