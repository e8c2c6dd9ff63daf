#!/usr/bin/env bash
# bench's load driver against wrk: one claim server, the same connections and duration, one run
# of each; prints each client's CPU time per answer (user+sys from /usr/bin/time) and the
# server's (its process and Redis, from /proc) over each run, so that the two runs are seen to
# ask the server for the same work. SERVER=node (default): a one-node redrain cluster (Redis, a
# coordinator, a node; every claim fsynced); SERVER=baseline: `bench baseline` (a Redis list,
# one RPOP per claim).
#   make build && scripts/driver-vs-wrk.sh [bench load flags...]   (env: SERVER CONNS TIME USERS PORT)
set -euo pipefail
BIN=${BIN:-bin}
CONNS=${CONNS:-64}
TIME=${TIME:-10}
USERS=${USERS:-20000}
PORT=${PORT:-18479}
SERVER=${SERVER:-node}
RPORT=$((PORT + 1))
CPORT=$((PORT + 2))
CODE=drvwrk
work=$(mktemp -d)
cleanup() {
	[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
	[ -n "${crd:-}" ] && kill "$crd" 2>/dev/null && wait "$crd" 2>/dev/null
	[ -n "${rds:-}" ] && kill "$rds" 2>/dev/null && wait "$rds" 2>/dev/null
	rm -rf "$work"
	return 0
}
trap cleanup EXIT
wait_http() { for _ in $(seq 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
rds=$!
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS=redis://127.0.0.1:$RPORT/0
if [ "$SERVER" = baseline ]; then
	"$BIN/bench" baseline --http "127.0.0.1:$PORT" --redis "$REDIS" --count 4000000 --code "$CODE" \
		--max-per-user 1000 >"$work/baseline.log" 2>&1 &
	srv=$!
	wait_http "http://127.0.0.1:$PORT/healthz"
else
	export REDRAIN_SECRET=driver-vs-wrk-secret REDRAIN_REDIS=$REDIS
	"$BIN/coordinator" --http "127.0.0.1:$CPORT" --gossip "127.0.0.1:$((PORT + 3))" --data "$work/coord" \
		--admin-token driver-vs-wrk-token --fast-gossip >"$work/coord.log" 2>&1 &
	crd=$!
	"$BIN/node" --id n1 --http "127.0.0.1:$PORT" --gossip "127.0.0.1:$((PORT + 4))" --join "127.0.0.1:$((PORT + 3))" \
		--data "$work/n1" --fast-gossip >"$work/node.log" 2>&1 &
	srv=$!
	admin() { curl -sS -H 'Authorization: Bearer driver-vs-wrk-token' "$@"; }
	for _ in $(seq 300); do admin "http://127.0.0.1:$CPORT/v1/nodes" 2>/dev/null | grep -q alive && break; sleep 0.1; done
	CODE=$(admin -d '{"anchor_id":1,"room_id":2,"total_amount":40000000,"total_count":4000000,"max_per_user":1000,"duration_s":600}' \
		"http://127.0.0.1:$CPORT/v1/rains" | tee "$work/create.json" | sed 's/.*"code":"\([^"]*\)".*/\1/')
	admin -d '{"anchor_id":1}' "http://127.0.0.1:$CPORT/v1/rains/$CODE/prepare" >/dev/null
	admin -d '{"anchor_id":1}' "http://127.0.0.1:$CPORT/v1/rains/$CODE/start" >/dev/null
fi

cat >"$work/claim.lua" <<LUA
wrk.method = "POST"
request = function()
  return wrk.format(nil, nil, {["X-User-Id"] = tostring(math.random($USERS))})
end
LUA

# cpu PID: user+sys clock ticks so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
servers() { echo $(($(cpu "$srv") + $(cpu "$rds"))); }
hz=$(getconf CLK_TCK)

# report NAME ANSWERS CLIENT_CPU_S SERVER_TICKS
report() {
	awk -v n="$1" -v a="$2" -v c="$3" -v s="$4" -v hz="$hz" 'BEGIN {
		printf "%-6s %9d answers  client CPU %6.2f s = %5.1f us/answer  server+redis CPU %6.2f s = %5.1f us/answer\n",
			n, a, c, 1e6 * c / a, s / hz, 1e6 * s / hz / a }'
}

s0=$(servers)
/usr/bin/time -f "%U %S" -o "$work/wrk.time" wrk -t1 -c"$CONNS" -d"${TIME}s" -s "$work/claim.lua" \
	"http://127.0.0.1:$PORT/v1/rains/$CODE/claim" >"$work/wrk.out"
s1=$(servers)
/usr/bin/time -f "%U %S" -o "$work/bench.time" "$BIN/bench" load --nodes "127.0.0.1:$PORT" --code "$CODE" \
	--users "$USERS" --conns "$CONNS" --time "${TIME}s" "$@" >"$work/bench.out"
s2=$(servers)

cat "$work/wrk.out" "$work/bench.out"
wrk_n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
bench_n=$(awk '/^answers\/s/ {gsub(",", "", $3); sub(/^\(/, "", $3); print $3}' "$work/bench.out")
wrk_cpu=$(awk '{print $1 + $2}' "$work/wrk.time")
bench_cpu=$(awk '{print $1 + $2}' "$work/bench.time")
echo
report wrk "$wrk_n" "$wrk_cpu" $((s1 - s0))
report bench "$bench_n" "$bench_cpu" $((s2 - s1))
awk -v w="$wrk_cpu" -v wn="$wrk_n" -v b="$bench_cpu" -v bn="$bench_n" \
	'BEGIN { printf "bench / wrk CPU per answer: %.2fx\n", (b / bn) / (w / wn) }'
