#!/usr/bin/env bash
# Builds what kvs-raft ships, from this checkout: the static release binary (crt-static on the gnu target:
# `ldd` says "not a dynamic executable"), the FROM-scratch image `kvs-raft:<version>` (also tagged
# `kvs-raft:latest`) and `target/dist/kvs-raft_<version>_amd64.deb`. Prints each one's size and fails (after
# building all of them) when the binary is dynamically linked, over its size budget, or the image is over
# 15 MB. The binary's goal is 12 MiB (SPEC §7); the tree does not meet it yet (BENCHMARKS.md: what each lever
# saved and where the rest is), so the gate enforced is a budget just above today's size, lowered as the
# binary shrinks: the build fails when the binary grows past it, and it prints how far it is from the goal.
#   bash packaging/build-image.sh            # binary, image, .deb
#   bash packaging/build-image.sh --no-image # binary and .deb only (no Docker needed)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

GOAL_BINARY=$((12 * 1024 * 1024))
# The enforced budget (see above): today's binary is 14,681,672 bytes.
MAX_BINARY=$((14 * 1024 * 1024 + 256 * 1024))
MAX_IMAGE=$((15 * 1000 * 1000))
target=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
image=true
[[ "${1:-}" == "--no-image" ]] && image=false

# The static binary: the `dist` profile (fat LTO, one codegen unit, optimised for size; see Cargo.toml
# and BENCHMARKS.md) with glibc, libstdc++ and libgcc linked in, not position-independent (a static PIE
# carries a relocation table it applies to itself at start). Naming the target keeps these artifacts
# (built with crt-static) apart from the host build's.
# RocksDB: when the test build (scripts/test.sh) has compiled librocksdb.a — the same sources and flags
# (-Os, NDEBUG: Cargo.toml's profile.dev.package.librocksdb-sys) — link that one instead of compiling
# RocksDB a second time.
rocksdb_a=$(ls -t "$CARGO_TARGET_DIR"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n 1 || true)
if [[ -n "$rocksdb_a" ]]; then
  echo "RocksDB: $rocksdb_a"
  # librocksdb-sys links a prebuilt RocksDB with a *dynamic* libstdc++ (`-Bdynamic -lstdc++`), which
  # would make the whole binary dynamic; ld takes the first directory that has the library in either
  # form, so libstdc++.a beside librocksdb.a keeps it static.
  lib_dir="$CARGO_TARGET_DIR/dist-rocksdb"
  rm -rf "$lib_dir" && mkdir -p "$lib_dir"
  ln -s "$rocksdb_a" "$lib_dir/librocksdb.a"
  libstdcxx=$("${CXX:-c++}" -print-file-name=libstdc++.a)
  [[ -f "$libstdcxx" ]] || { echo "FAILED: no static libstdc++ ($libstdcxx)" >&2; exit 1; }
  ln -s "$libstdcxx" "$lib_dir/libstdc++.a"
  export ROCKSDB_LIB_DIR="$lib_dir" ROCKSDB_STATIC=1
fi
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --profile dist --locked --target "$target" --bin kvs-raft
bin="$CARGO_TARGET_DIR/$target/dist/kvs-raft"
size=$(stat -c %s "$bin")
linkage=$(ldd "$bin" 2>&1 || true)
echo "binary: $bin"
echo "binary size: $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB; budget $MAX_BINARY bytes)"
if ((size > GOAL_BINARY)); then
  echo "binary size goal NOT MET: $((size - GOAL_BINARY)) bytes over the 12 MiB goal ($GOAL_BINARY)"
fi
echo "ldd: $linkage"
# The gates are checked at the end, so an oversized binary still gets its .deb and image built (and the
# container test can run on it), but the script fails.
failed=()
grep -q "not a dynamic executable" <<<"$linkage" || failed+=("the binary is dynamically linked")
((size <= MAX_BINARY)) || failed+=("the binary is $size bytes, over its budget ($MAX_BINARY)")
gates() {
  ((${#failed[@]} == 0)) && return 0
  for f in "${failed[@]}"; do echo "FAILED: $f" >&2; done
  exit 1
}

dist="$CARGO_TARGET_DIR/dist-staging"
rm -rf "$dist" && mkdir -p "$dist"

# The .deb: the binary, both units, the example configuration (a conffile) and the system user.
deb_root="$dist/deb"
install -D -m 0755 "$bin" "$deb_root/usr/bin/kvs-raft"
install -D -m 0644 systemd/kvs-raft.service "$deb_root/lib/systemd/system/kvs-raft.service"
install -D -m 0644 systemd/kvs-raft@.service "$deb_root/lib/systemd/system/kvs-raft@.service"
install -D -m 0640 systemd/kvs-raft.toml "$deb_root/etc/kvs-raft/kvs-raft.toml"
install -D -m 0644 README.md "$deb_root/usr/share/doc/kvs-raft/README.md"
install -D -m 0644 docs/deploy.md "$deb_root/usr/share/doc/kvs-raft/deploy.md"
mkdir -p "$deb_root/DEBIAN"
installed_kb=$(du -sk --exclude=DEBIAN "$deb_root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$installed_kb/" packaging/deb/control >"$deb_root/DEBIAN/control"
echo "/etc/kvs-raft/kvs-raft.toml" >"$deb_root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$deb_root/DEBIAN/"
mkdir -p "$CARGO_TARGET_DIR/dist"
deb="$CARGO_TARGET_DIR/dist/kvs-raft_${version}_amd64.deb"
dpkg-deb --root-owner-group --build "$deb_root" "$deb" >/dev/null
echo "deb: $deb ($(stat -c %s "$deb") bytes)"

# --no-image: the gates of the binary, then stop (it used to fall through and build the image anyway).
if ! $image; then
  gates
  exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "################################################################"
  echo "SKIP image: docker info failed (no Docker Engine); binary and .deb built"
  echo "################################################################"
  gates
fi
# The image's root file system: the binary, CA certificates (TLS to PD/TiKV and https peers), passwd and
# group entries for the user 65532, the image's configuration, and an empty /data owned by 65532.
ctx="$dist/image"
rootfs="$ctx/rootfs"
install -D -m 0755 "$bin" "$rootfs/usr/bin/kvs-raft"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
install -D -m 0644 packaging/kvs-raft.toml "$rootfs/etc/kvs-raft/kvs-raft.toml"
printf 'root:x:0:0:root:/:/sbin/nologin\nkvs-raft:x:65532:65532:kvs-raft:/data:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nkvs-raft:x:65532:\n' >"$rootfs/etc/group"
mkdir -p "$ctx/data"
cp packaging/Dockerfile "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet -t "kvs-raft:$version" -t kvs-raft:latest "$ctx" >/dev/null
image_size=$(docker image inspect "kvs-raft:$version" --format '{{.Size}}')
echo "image: kvs-raft:$version ($image_size bytes; limit 15 MB)"
((image_size <= MAX_IMAGE)) || failed+=("the image is $image_size bytes, over 15 MB")
gates
