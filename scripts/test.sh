#!/usr/bin/env bash
# The whole test suite: install what is needed, then every test of the workspace, then the API check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
# Benchmarks and every other target must at least build.
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked --no-fail-fast
# Failpoint crashes at the persistence boundaries of the node and of the engine's snapshot switch
# (process-global failpoints: one test at a time).
cargo nextest run --workspace --locked --features raft-node/failpoints,engine/failpoints --test failpoints --test-threads 1
cargo test --workspace --doc --locked
# docs/openapi.yaml is valid and true to a live node (schemathesis; the binary was built above).
bash scripts/api-check.sh
