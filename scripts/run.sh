#!/usr/bin/env bash
# The main job: install what is needed, build the release binary and run it.
# Until the replicated node lands, that is the engine demo on the game workload.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
cargo build --release --locked
exec "$CARGO_TARGET_DIR/release/kvs-raft" demo "$@"
