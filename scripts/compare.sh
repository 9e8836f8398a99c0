#!/usr/bin/env bash
# The comparison of issue 15: kvs-raft ×3, etcd ×3 (Debian's etcd-server, 3.4) and Redis 7 (Debian's
# redis-server, appendfsync always and everysec) under the same workload shapes, one after another, on this
# machine. Prints the markdown table; the arguments go to `bench-harness compare`:
#   bash scripts/compare.sh --out-md /tmp/compare.md --out-svg docs/compare.svg   # the record run (~10 min)
#   bash scripts/compare.sh --smoke                                              # CI's smoke run (≤ 90 s)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh # installs etcd-server and redis-server with the build's packages
source scripts/env.sh

# The packages' maintainer scripts may have started the system services (where policy allows it). The
# harness never uses them: it starts its own servers in temporary directories on free loopback ports.
# Stop them anyway, so that they take no CPU, memory or disk bandwidth from the measured servers.
for service in etcd redis-server; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    echo "compare: stopping the system's $service service (the harness runs its own)" >&2
    systemctl stop "$service" || true
  fi
done
for program in etcd redis-server; do
  if pids=$(pgrep -x "$program"); then
    echo "compare: note: $program already runs (pids $(echo $pids)); it shares this machine with the measurement" >&2
  fi
done

cargo build --release --locked --bin kvs-raft
cargo build --release --locked -p bench-harness --bin bench-harness
# The harness measures $CARGO_TARGET_DIR/release/kvs-raft unless --kvs-raft says otherwise.
exec "$CARGO_TARGET_DIR/release/bench-harness" compare "$@"
