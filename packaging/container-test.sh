#!/usr/bin/env bash
# The container cluster test (issue 13 item 4), run by scripts/test.sh after packaging/build-image.sh:
# three containers of the kvs-raft image on a user-defined bridge network, addressing each other by
# container name (so host names resolve inside the static binary, through Docker's DNS).
#   1. the site forms; a write through every node;
#   2. `docker kill` a follower → writes continue → `docker start` it → it catches up;
#   3. `docker network disconnect` the leader → the other two elect a leader and take writes, the isolated
#      node refuses writes and linearizable reads → reconnect → all converge;
#   4. every acknowledged write is on every node;
#   5. packaging/docker-compose.yml as written: `up -d`, a write through node 1's published port, read
#      back linearizably through node 3's, `down -v`.
# Containers, the network and the volumes are removed at the end, also on failure. Where Docker does
# not run (`docker info` fails) it prints a loud SKIP and exits 0.
set -euo pipefail
image="${KVS_RAFT_IMAGE:-kvs-raft:latest}"
if ! docker info >/dev/null 2>&1; then
  echo "################################################################"
  echo "SKIP container cluster test: docker info failed (no Docker Engine)"
  echo "################################################################"
  exit 0
fi
run="kvsct$$"
net="$run-net"
nodes=(1 2 3)
compose=(docker-compose -p "$run" -f "$(dirname "$0")/docker-compose.yml")
cleanup() {
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  for i in "${nodes[@]}"; do docker rm -f "$run-$i" >/dev/null 2>&1 || true; done
  docker network rm "$net" >/dev/null 2>&1 || true
  for i in "${nodes[@]}"; do docker volume rm "$run-data-$i" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*" >&2
  for i in "${nodes[@]}"; do echo "---- $run-$i ----" >&2; docker logs --tail 30 "$run-$i" >&2 2>&1 || true; done
  exit 1
}
secret="container-test-secret-$(date +%s%N)"
cluster="1=$run-1:7380,2=$run-2:7380,3=$run-3:7380"
docker network create "$net" >/dev/null
start() { # start <id>: create and start node <id>
  docker run -d --name "$run-$1" --hostname "$run-$1" --network "$net" -v "$run-data-$1:/data" \
    -e KVS_RAFT_ID="$1" -e KVS_RAFT_CLUSTER_ID="$run" -e KVS_RAFT_INITIAL_CLUSTER="$cluster" \
    -e KVS_RAFT_LISTEN_PEER=0.0.0.0:7380 -e KVS_RAFT_ADVERTISE_PEER="$run-$1:7380" \
    -e KVS_RAFT_ADVERTISE_CLIENT="$run-$1:7379" -e KVS_RAFT_INSECURE_NO_AUTH=true \
    -e KVS_RAFT_PEER_SECRET="$secret" -e RUST_LOG=info "$image" >/dev/null
}
# The CLI inside node <id>'s container, against its own client port.
cli() { local id=$1; shift; docker exec "$run-$id" kvs-raft "$@" --endpoints http://127.0.0.1:7379 --timeout 3s; }
leader_of() { cli "$1" status --json 2>/dev/null | python3 -c 'import json,sys; l=json.load(sys.stdin).get("leader"); print(l if l else "")' 2>/dev/null || true; }
wait_leader() { # wait_leader <seconds> <ids...>: a leader all the listed nodes agree on
  wait_leader_but "$1" none "${@:2}"
}
wait_leader_but() { # wait_leader_but <seconds> <excluded id> <ids...>: as wait_leader, not the excluded one
  local deadline=$((SECONDS + $1)) excluded=$2; shift 2
  while ((SECONDS < deadline)); do
    local seen=() l
    for i in "$@"; do l=$(leader_of "$i"); seen+=("$l"); done
    if [[ -n "${seen[0]}" && "${seen[0]}" != "$excluded" ]] &&
      [[ "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" == 1 ]]; then
      echo "${seen[0]}"; return 0
    fi
    sleep 0.3
  done
  return 1
}
declare -A acked
write() { # write <via node> <key>: a PUT whose acknowledgment is recorded
  local value="v-$2-$RANDOM"
  if cli "$1" put "$2" "$value" >/dev/null 2>&1; then acked[$2]=$value; return 0; fi
  return 1
}

for i in "${nodes[@]}"; do start "$i"; done
leader=$(wait_leader 60 1 2 3) || fail "no leader agreed by the three containers"
echo "✓ site formed over container names: leader node $leader"
for i in "${nodes[@]}"; do write "$i" "first-$i" || fail "write through node $i"; done
echo "✓ a write through every node"

victim=$(( leader % 3 + 1 ))
docker kill "$run-$victim" >/dev/null
others=(); for i in "${nodes[@]}"; do [[ $i != "$victim" ]] && others+=("$i"); done
for k in 1 2 3 4 5 6; do write "${others[$((k % 2))]}" "killed-$k" || fail "write $k with node $victim killed"; done
echo "✓ follower $victim killed (docker kill): 6 writes through nodes ${others[*]}"
docker start "$run-$victim" >/dev/null
deadline=$((SECONDS + 60))
until [[ "$(cli "$victim" get killed-6 --consistency stale 2>/dev/null)" == "${acked[killed-6]}" ]]; do
  ((SECONDS < deadline)) || fail "node $victim did not catch up within 60 s"
  sleep 0.3
done
echo "✓ node $victim restarted (docker start) and caught up"

leader=$(wait_leader 30 1 2 3) || fail "no leader before the partition"
docker network disconnect "$net" "$run-$leader"
rest=(); for i in "${nodes[@]}"; do [[ $i != "$leader" ]] && rest+=("$i"); done
new=$(wait_leader_but 30 "$leader" "${rest[@]}") || fail "nodes ${rest[*]} elected no leader without node $leader"
for k in 1 2 3 4; do write "${rest[$((k % 2))]}" "split-$k" || fail "write $k on the majority side"; done
echo "✓ leader $leader disconnected: nodes ${rest[*]} elected node $new and took 4 writes"
if cli "$leader" put isolated-write nope >/dev/null 2>&1; then fail "the isolated node $leader acknowledged a write"; fi
if cli "$leader" get split-1 --consistency linearizable >/dev/null 2>&1; then
  fail "the isolated node $leader answered a linearizable read"
fi
echo "✓ the isolated node $leader refuses writes and linearizable reads"
docker network connect "$net" "$run-$leader"
leader=$(wait_leader 60 1 2 3) || fail "no common leader after reconnecting"
write "$leader" after-heal || fail "write after the partition healed"
echo "✓ reconnected: node $leader leads all three"

for i in "${nodes[@]}"; do
  deadline=$((SECONDS + 60))
  for key in "${!acked[@]}"; do
    until [[ "$(cli "$i" get "$key" --consistency stale 2>/dev/null)" == "${acked[$key]}" ]]; do
      ((SECONDS < deadline)) || fail "node $i lacks acknowledged write $key"
      sleep 0.2
    done
  done
done
echo "✓ all ${#acked[@]} acknowledged writes are on every node"

for i in "${nodes[@]}"; do docker rm -f "$run-$i" >/dev/null; done
"${compose[@]}" up -d >/dev/null 2>&1 || fail "docker-compose up (packaging/docker-compose.yml)"
deadline=$((SECONDS + 60))
until curl -sf -XPUT 127.0.0.1:7379/v1/kv/compose-check --data-binary "from-compose-$run" >/dev/null 2>&1; do
  ((SECONDS < deadline)) || { "${compose[@]}" logs --tail 30 >&2 2>&1 || true; fail "the compose site took no write on 127.0.0.1:7379 within 60 s"; }
  sleep 0.5
done
got=$(curl -sf "127.0.0.1:7383/v1/kv/compose-check?consistency=linearizable" || true)
[[ "$got" == "from-compose-$run" ]] || fail "compose node 3 read '$got' instead of the write through node 1"
"${compose[@]}" down -v >/dev/null 2>&1 || fail "docker-compose down -v"
echo "✓ packaging/docker-compose.yml: a write through node 1 read back through node 3"
echo "container cluster test: OK"
