# Sourced by the scripts: a cargo target dir outside the clone, so CI and fresh clones reuse artifacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/kvs-raft-target}"
