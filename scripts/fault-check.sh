#!/usr/bin/env bash
# The fault check from outside, as an operator would do it: the release binary driven with curl, dd, nc and
# kill on loopback (ports 17379..17384), printing what it saw. Needs root (mounts a 256 MiB tmpfs) and
# `cargo build --release` first. Scenarios: A a killed leader (acknowledged writes survive), B bad input on
# the client and peer ports (the site keeps working), C a data dir started under another node id (refused),
# D a prefix scan over 40 × 900 KB values (cut into pages with `more`), E a data dir filled then freed (507,
# then writes resume). `ONLY_DE=1` runs D and E only.
#   bash scripts/fault-check.sh
set -u
cd "$(dirname "$0")/.."
source scripts/env.sh
BIN=${BIN:-$CARGO_TARGET_DIR/release/kvs-raft}
W=${KVS_RAFT_CHECK_DIR:-/tmp/kvs-raft-fault-check}; rm -rf "$W"; mkdir -p "$W"
code() { curl -s -o "$W/body" -w '%{http_code}' "$@"; }
cluster="1=127.0.0.1:17380,2=127.0.0.1:17382,3=127.0.0.1:17384"
start() { # id datadir [extra...]
  local id=$1 dir=$2; shift 2
  mkdir -p $dir
  "$BIN" serve --id $id --cluster-id fault-check --data-dir $dir --listen-client 127.0.0.1:$((17377+2*id)) \
    --listen-peer 127.0.0.1:$((17378+2*id)) --initial-cluster "${CL:-$cluster}" "$@" >>$W/node$id.log 2>&1 &
  echo $! > $W/pid$id
}
url() { echo http://127.0.0.1:$((17377+2*$1)); }
leader() { curl -s $(url $1)/v1/cluster | sed -n 's/.*"leader":\([0-9]*\).*/\1/p'; }
wait_leader() { for i in $(seq 1 200); do l=$(leader $1); [ -n "$l" ] && { echo $l; return; }; sleep 0.1; done; echo none; }

echo "== binary"; ls -l $BIN; $BIN version
if [ -z "${ONLY_DE:-}" ]; then
echo "== A. 3-node site, killed leader"
for i in 1 2 3; do start $i $W/d$i; done
l=$(wait_leader 1); echo "leader: $l"
for k in $(seq 1 50); do c=$(code -XPUT $(url 1)/v1/kv/acked/$k --data-binary v$k); [ $c = 200 ] || echo "put $k -> $c"; done
kill -9 $(cat $W/pid$l); t0=$(date +%s.%N)
o=$(( l % 3 + 1 ))
for i in $(seq 1 300); do c=$(code -XPUT $(url $o)/v1/kv/after-kill --data-binary x); [ $c = 200 ] && break; sleep 0.05; done
t1=$(date +%s.%N); echo "killed leader $l with SIGKILL; first acknowledged write via node $o after $(echo "$t1 - $t0" | bc) s (status $c); new leader $(leader $o)"
start $l $W/d$l
sleep 3
miss=0; for n in 1 2 3; do for k in $(seq 1 50); do v=$(curl -s "$(url $n)/v1/kv/acked/$k?consistency=stale"); [ "$v" = v$k ] || miss=$((miss+1)); done; done
echo "acked writes missing across the 3 nodes after the restart: $miss (of 150 reads)"

echo "== B. malicious / bad requests (site must keep working)"
printf 'GARBAGE\x00\xff%.0s' $(seq 1 1000) | timeout 3 nc -q1 127.0.0.1 17380 >/dev/null 2>&1; echo "garbage to peer port sent"
head -c 70000 /dev/urandom | timeout 3 nc -q1 127.0.0.1 17382 >/dev/null 2>&1
echo "malformed JSON txn: $(code -XPOST $(url 1)/v1/txn -H 'content-type: application/json' --data '{"ops":[{"op":')"
echo "oversized PUT (20 MiB): $(head -c 20971520 /dev/zero | code -XPUT $(url 1)/v1/kv/big --data-binary @-)"
echo "garbage key_b64: $(code "$(url 1)/v1/kv?key_b64=%%%")"
echo "huge scan limit: $(code "$(url 1)/v1/kv?prefix=a&limit=99999999999999999999")"
echo "wrong epoch fence: $(code -XPUT "$(url 1)/v1/kv/player:1/pos?epoch=999" --data-binary x)"
echo "after bad input, PUT: $(code -XPUT $(url 2)/v1/kv/still/ok --data-binary y) GET: $(curl -s $(url 3)/v1/kv/still/ok?consistency=linearizable)"
for i in 1 2 3; do kill -TERM $(cat $W/pid$i); done; wait 2>/dev/null

echo "== C. node 1's data dir started with --id 2"
start 2 $W/d1; sleep 4
if kill -0 $(cat $W/pid2) 2>/dev/null; then echo "STILL RUNNING (bad)"; kill -9 $(cat $W/pid2); else wait $(cat $W/pid2) 2>/dev/null; echo "exited with status $?"; tail -n 3 $W/node2.log | cut -c1-400; fi

fi
echo "== D. prefix scan over 40 x 900 KB"
rm -rf $W/s; CL=1=127.0.0.1:17380 start 1 $W/s; wait_leader 1 >/dev/null
head -c 921600 /dev/urandom | base64 -w0 | head -c 921600 > $W/v900k
for k in $(seq -w 1 40); do c=$(code -XPUT $(url 1)/v1/kv/big/$k --data-binary @$W/v900k); [ $c = 200 ] || echo "put big/$k -> $c"; done
start_key=""; pages=0; total=0
while :; do
  if [ -z "$start_key" ]; then q="prefix=big/&limit=1000"; else q="start_b64=$start_key&end=big0&limit=1000"; fi
  sz=$(curl -s -o $W/page -w '%{size_download}' "$(url 1)/v1/kv?$q"); pages=$((pages+1))
  n=$(python3 -c "import json;d=json.load(open('$W/page'));print(len(d['items']), d['more'])")
  echo "page $pages: $sz bytes, items/more: $n"; total=$((total+${n%% *}))
  [ "${n##* }" = True ] || break
  start_key=$(python3 -c "import json,base64,urllib.parse;d=json.load(open('$W/page'));k=d['items'][-1];kb=base64.b64decode(k['key_b64']) if 'key_b64' in k else k['key'].encode();print(urllib.parse.quote(base64.b64encode(kb+b'\\x00').decode()))")
  [ $pages -gt 60 ] && break
done
echo "scan: $pages pages, $total items"
kill -TERM $(cat $W/pid1); wait 2>/dev/null

echo "== E. data dir filled up, then freed (single node, 256 MiB tmpfs, reserve 32 MiB)"
mkdir -p $W/full; mount -t tmpfs -o size=256m tmpfs $W/full
CL=1=127.0.0.1:17380 KVS_RAFT_RESERVE_SPACE=33554432 start 1 $W/full/d; wait_leader 1 >/dev/null
echo "before fill: $(code -XPUT $(url 1)/v1/kv/pre --data-binary x)"
avail=$(df -B1 --output=avail $W/full | tail -1); dd if=/dev/zero of=$W/full/filler bs=1M count=$(( avail/1048576 - 4 )) status=none 2>/dev/null
df -h $W/full | tail -1
sleep 1
echo "full: PUT -> $(code -XPUT $(url 1)/v1/kv/during --data-binary x) $(head -c 200 $W/body)"
echo "full: GET pre -> $(code $(url 1)/v1/kv/pre)"
rm $W/full/filler; t0=$(date +%s.%N)
for i in $(seq 1 200); do c=$(code -XPUT $(url 1)/v1/kv/after --data-binary y); [ $c = 200 ] && break; sleep 0.1; done
echo "freed: PUT -> $c after $(echo "$(date +%s.%N) - $t0" | bc) s; process alive: $(kill -0 $(cat $W/pid1) && echo yes)"
kill -TERM $(cat $W/pid1); wait 2>/dev/null; umount $W/full
echo "== done"
