#!/usr/bin/env bash
# Installs what building and testing kvs-raft needs on Debian 12 (run as root). Idempotent and quick when
# everything is already there. Shared by scripts/run.sh and scripts/test.sh.
set -euo pipefail

# clang/libclang: bindgen for librocksdb-sys; protobuf-compiler: raft-rs's prost codec;
# curl: scripts/run.sh talks to the nodes; procps: `kill` for the multi-process tests; systemd:
# `systemd-analyze verify|security` on the unit files in systemd/ (tests/systemd.rs); etcd-server and
# redis-server: the systems bench-harness compares kvs-raft with (scripts/compare.sh) and runs in its
# tests (the harness starts its own servers on free loopback ports, never the packages' services);
# libprotobuf-dev: the well-known .proto files (google/protobuf/descriptor.proto, ...) that protoc needs to
# build the etcd client's protos.
packages=(clang libclang-dev protobuf-compiler libprotobuf-dev curl procps systemd etcd-server redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3 with venv and ensurepip: scripts/api-check.sh runs openapi-spec-validator and schemathesis from
# a venv. Any python3 that can make a venv will do (Debian's needs python3-venv).
if ! { command -v python3 >/dev/null && python3 -c 'import ensurepip, venv' 2>/dev/null; }; then
  missing+=(python3 python3-venv)
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "install-deps: cargo (Rust toolchain) is required" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-nextest" >&2
  cargo install cargo-nextest --locked
fi
