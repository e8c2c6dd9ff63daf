#!/usr/bin/env bash
# Setup A (one node), reproducible: the node against the seed's design and the loopback ceiling,
# side by side in one run, under the same wrk load.
#
#   cpu 1 (SERVER_CPU): the server under test — `bench ceiling` (a fixed 200 body), `bench
#          baseline` (the seed's design: fasthttp + one RPOP per claim, nothing journaled) and one
#          node (journal fsynced before every answer, flushed to Redis in the background);
#   cpu 0 (LOAD_CPU):   wrk -t1 -c64 (closed loop, random users over 1..USERS in X-User-Id,
#          scripts/claim.lua), redis-server, the coordinator, and this script's polling.
#
# One rain of COUNT packets on the node, and a Redis list of as many for the baseline. Each round
# runs the three servers in turn (ceiling, seed, node), each with a WARMUP run of wrk right
# before its measured DURATION run; ROUNDS interleaves rounds and the table gives medians.
# Per server: claims/s (200 answers only; every other answer and socket error is reported),
# p50/p99 (wrk --latency), server CPU per claim (utime+stime of the server's pid from
# /proc/PID/stat over the run, per 200 answer) and Redis CPU per claim (INFO cpu
# used_cpu_sys+used_cpu_user over the run, per 200 answer; for the node the after-readings wait
# until its redrain_flush_lag_claims is 0, so its flush to Redis is counted in both).
# Prints one table, writes OUT/results.json (and each wrk output under OUT/rounds/).
#
# PROFILE=1 adds, after the rounds, one node run with a CPU profile (--pprof on the node):
# OUT/node-cpu.pprof and `go tool pprof -top` / `-top -cum` in OUT/pprof-top.txt,
# OUT/pprof-top-cum.txt, and grouped (socket, journal commit, flusher, handler, runtime) in
# OUT/pprof-groups.txt. Not part of the table.
#
# Environment: DURATION (10s) WARMUP (2s) ROUNDS (1) CONNS (64) USERS (1000000) COUNT (8000000)
# AMOUNT (80000000) SERVERS ("ceiling seed node": which to measure, always in that order) SERVER_CPU (1) LOAD_CPU (0) OUT (out/setup-a) STATUS_HOOK (1; see
# scripts/claim.lua) FLUSH_TIMEOUT (120, seconds) PROFILE (0) PROFILE_SECONDS (10) KEEP (0: the
# temporary directory with data and logs is removed at exit) GO (go).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-1}
CONNS=${CONNS:-64}
USERS=${USERS:-1000000}
COUNT=${COUNT:-8000000}
AMOUNT=${AMOUNT:-80000000}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-out/setup-a}
STATUS_HOOK=${STATUS_HOOK:-1}
FLUSH_TIMEOUT=${FLUSH_TIMEOUT:-120}
SERVERS=${SERVERS:-ceiling seed node}
PROFILE=${PROFILE:-0}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
KEEP=${KEEP:-0}
MAX_PER_USER=1000 # the most a rain allows: random users over 1,000,000 are never capped
export USERS STATUS_HOOK

say() { printf 'setup-a: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for tool in wrk redis-server redis-cli taskset curl jq getconf ss; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install -y wrk redis-server redis-tools util-linux curl jq iproute2)"
done
if [ -z "${GO:-}" ]; then
	GO=go
	command -v go >/dev/null 2>&1 || GO=/usr/local/go/bin/go
fi
for c in "$SERVER_CPU" "$LOAD_CPU"; do
	taskset -c "$c" true 2>/dev/null || die "cpu $c is not available (SERVER_CPU, LOAD_CPU)"
done
[ "$ROUNDS" -ge 1 ] 2>/dev/null || die "ROUNDS must be >= 1"
for s in $SERVERS; do
	case "$s" in ceiling | seed | node) ;; *) die "SERVERS: unknown server $s (ceiling, seed, node)" ;; esac
done
has() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
CLK_TCK=$(getconf CLK_TCK)

say "building bin/"
mkdir -p bin
for b in node coordinator bench; do "$GO" build -o "bin/$b" "./cmd/$b"; done

# Everything started from here runs on the load's cpu unless pinned elsewhere.
taskset -p -c "$LOAD_CPU" $$ >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/setup-a.XXXXXX")
# The servers run in sessions of their own (setsid), so a Ctrl-C reaches wrk and this script
# only: cleanup stops them in order.
PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Stop in reverse order of start, each within 15 s (then SIGKILL): the servers first, Redis
	# last, so the node's graceful stop can still flush to it.
	local i p
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		p=${PIDS[i]}
		kill -TERM "$p" 2>/dev/null || continue
		for _ in $(seq 150); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
		say "data and logs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port VAR sets VAR to a port below the ephemeral range that nothing holds (TCP or UDP)
# and that this script has not handed out yet.
TAKEN=" "
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		case "$TAKEN" in *" $p "*) continue ;; esac
		if ! ss -Htuan | awk '{print $5}' | grep -q ":$p\$"; then
			TAKEN="$TAKEN$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free port"
}

# wait_for URL [SECONDS] [CURL ARGS...]: until URL answers 2xx.
wait_for() {
	local url=$1 secs=${2:-30}
	shift 2 || shift $#
	for _ in $(seq $((secs * 10))); do
		curl -fs -o /dev/null "$@" "$url" && return 0
		sleep 0.1
	done
	return 1
}

for v in REDIS_PORT COORD_PORT COORD_GOSSIP_PORT NODE_PORT NODE_GOSSIP_PORT CEIL_PORT SEED_PORT PPROF_PORT; do
	free_port "$v"
done
COORD_HTTP=127.0.0.1:$COORD_PORT
COORD_GOSSIP=127.0.0.1:$COORD_GOSSIP_PORT
NODE_HTTP=127.0.0.1:$NODE_PORT
NODE_GOSSIP=127.0.0.1:$NODE_GOSSIP_PORT
CEIL_HTTP=127.0.0.1:$CEIL_PORT
SEED_HTTP=127.0.0.1:$SEED_PORT
PPROF_HTTP=127.0.0.1:$PPROF_PORT
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
SECRET=setup-a-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
TOKEN=admin-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
A="Authorization: Bearer $TOKEN"

say "redis-server on 127.0.0.1:$REDIS_PORT (cpu $LOAD_CPU), data and logs in $TMP"
setsid taskset -c "$LOAD_CPU" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
	--dir "$TMP" --logfile "$TMP/redis.log" --daemonize no &
PIDS+=($!)
REDIS_PID=$!
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null || die "redis-server did not start ($TMP/redis.log)"

say "coordinator on $COORD_HTTP (cpu $LOAD_CPU)"
setsid taskset -c "$LOAD_CPU" bin/coordinator --http "$COORD_HTTP" --gossip "$COORD_GOSSIP" --data "$TMP/coord" \
	--redis "$REDIS_URL" --secret "$SECRET" --admin-token "$TOKEN" 2>"$TMP/coordinator.log" &
PIDS+=($!)

NODE_FLAGS=()
[ "$PROFILE" = 1 ] && NODE_FLAGS+=(--pprof "$PPROF_HTTP")
say "node n1 on $NODE_HTTP (cpu $SERVER_CPU)"
setsid taskset -c "$SERVER_CPU" bin/node --id n1 --http "$NODE_HTTP" --gossip "$NODE_GOSSIP" --join "$COORD_GOSSIP" \
	--data "$TMP/n1" --redis "$REDIS_URL" --secret "$SECRET" "${NODE_FLAGS[@]}" 2>"$TMP/node.log" &
PIDS+=($!)
NODE_PID=$!

CEIL_PID=
if has ceiling; then
	say "ceiling on $CEIL_HTTP (cpu $SERVER_CPU)"
	setsid taskset -c "$SERVER_CPU" bin/bench ceiling --http "$CEIL_HTTP" >"$TMP/ceiling.log" 2>&1 &
	PIDS+=($!)
	CEIL_PID=$!
fi

SEED_PID=
SEED_CODE=setupa
if has seed; then
	say "seed's design on $SEED_HTTP (cpu $SERVER_CPU): LPUSHing $COUNT packets to one Redis list"
	setsid taskset -c "$SERVER_CPU" bin/bench baseline --http "$SEED_HTTP" --redis "$REDIS_URL" --count "$COUNT" \
		--amount "$AMOUNT" --max-per-user "$MAX_PER_USER" --code "$SEED_CODE" >"$TMP/baseline.log" 2>&1 &
	PIDS+=($!)
	SEED_PID=$!
fi

wait_for "http://$COORD_HTTP/v1/nodes" 30 -H "$A" ||
	die "coordinator did not start ($TMP/coordinator.log)"
for _ in $(seq 600); do
	curl -fs -H "$A" "http://$COORD_HTTP/v1/nodes" | jq -e '[.. | objects | select(.id? == "n1" and .state? == "alive")] | length > 0' \
		>/dev/null 2>&1 && break
	sleep 0.1
done
curl -fs -H "$A" "http://$COORD_HTTP/v1/nodes" | jq -e '[.. | objects | select(.id? == "n1" and .state? == "alive")] | length > 0' \
	>/dev/null || die "node n1 not alive at the coordinator ($TMP/node.log, $TMP/coordinator.log)"

say "rain of $COUNT packets, $AMOUNT cents, max $MAX_PER_USER per user"
RAIN=$(curl -fsS -H "$A" -d "{\"anchor_id\":1,\"room_id\":1,\"total_amount\":$AMOUNT,\"total_count\":$COUNT,\"max_per_user\":$MAX_PER_USER,\"duration_s\":86400}" \
	"http://$COORD_HTTP/v1/rains")
CODE=$(jq -r .code <<<"$RAIN")
curl -fsS -H "$A" -d '{"anchor_id":1}' "http://$COORD_HTTP/v1/rains/$CODE/prepare" >/dev/null
curl -fsS -H "$A" -d '{"anchor_id":1}' "http://$COORD_HTTP/v1/rains/$CODE/start" >/dev/null
for _ in $(seq 100); do
	st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'X-User-Id: 1' "http://$NODE_HTTP/v1/rains/$CODE/claim" || true)
	[ "$st" = 200 ] && break
	sleep 0.1
done
[ "$st" = 200 ] || die "the node does not pay claims of rain $CODE (last answer $st; $TMP/node.log)"

if has ceiling; then
	wait_for "http://$CEIL_HTTP/v1/rains/x/claim" 30 -X POST || die "ceiling did not start ($TMP/ceiling.log)"
fi
if has seed; then
	wait_for "http://$SEED_HTTP/healthz" 600 || die "baseline did not start ($TMP/baseline.log)"
	grep -h '^baseline: rain' "$TMP/baseline.log" | sed 's/^/setup-a: /' >&2 || true
fi

# --- readings ---

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"; } # utime stime (fields 14, 15)
redis_cpu() {
	redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' |
		awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f\n", s }'
}
# cpu_stall: microseconds some task waited for a cpu, machine-wide (PSI), 0 without PSI: other
# load on the machine shows up here.
cpu_stall() { awk -F'total=' '/^some/ { printf "%.0f\n", $2; f = 1 } END { if (!f) print 0 }' /proc/pressure/cpu 2>/dev/null || echo 0; }
# redis_calls: calls of EVALSHA (the node's flush, one batch each; EVAL too) and of RPOP (the seed).
redis_calls() {
	redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | awk -F'[:=,]' '
		$1 == "cmdstat_evalsha" || $1 == "cmdstat_eval" { e += $3 } $1 == "cmdstat_rpop" { r += $3 }
		END { printf "%.0f %.0f\n", e, r }'
}
metric() { curl -fs "http://$NODE_HTTP/metrics" | awk -v m="$1" '$1 == m { printf "%.6f\n", $2; f = 1 } END { if (!f) print "nan" }'; }
metrics() { local m; for m in "$@"; do metric "$m"; done | paste -sd' '; }
# wait_flushed: until the node's flush lag is 0 (FLUSH_TIMEOUT); prints the seconds waited.
wait_flushed() {
	local t0 lag
	t0=$(date +%s.%N)
	while :; do
		lag=$(metric redrain_flush_lag_claims)
		[ "$lag" = 0.000000 ] && break
		if awk -v a="$t0" -v b="$(date +%s.%N)" -v t="$FLUSH_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
			say "node: flush lag still $lag after ${FLUSH_TIMEOUT}s"
			break
		fi
		sleep 0.1
	done
	awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }'
}

URL_ceiling="http://$CEIL_HTTP/v1/rains/$CODE/claim"
URL_seed="http://$SEED_HTTP/v1/rains/$SEED_CODE/claim"
URL_node="http://$NODE_HTTP/v1/rains/$CODE/claim"
PID_ceiling=$CEIL_PID
PID_seed=$SEED_PID
PID_node=$NODE_PID

mkdir -p "$OUT/rounds"
ROUNDS_FILE="$OUT/rounds.jsonl"
: >"$ROUNDS_FILE"

run_wrk() { # URL DURATION OUTFILE
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$2" --latency -s scripts/claim.lua "$1" >"$3"
}

# measure ROUND SERVER: a warm-up run, then the measured run with its readings.
measure() {
	local round=$1 s=$2 url pid f
	url=$(eval echo "\$URL_$s")
	pid=$(eval echo "\$PID_$s")
	f="$OUT/rounds/r$round-$s"
	kill -0 "$pid" 2>/dev/null || die "$s (pid $pid) is not running"
	run_wrk "$url" "$WARMUP" "$f.warmup.txt"
	[ "$s" = node ] && wait_flushed >/dev/null
	local r0 u0 s0 r1 u1 s1 e0 e1 p0 p1 x0 x1 wait=0 m0="0 0 0" m1="0 0 0"
	local journal="redrain_journal_commits_total redrain_journal_records_total redrain_journal_commit_seconds_total"
	[ "$s" = node ] && m0=$(metrics $journal)
	read -r u0 s0 <<<"$(cpu_ticks "$pid")"
	r0=$(redis_cpu)
	read -r e0 p0 <<<"$(redis_calls)"
	x0=$(cpu_stall)
	run_wrk "$url" "$DURATION" "$f.txt"
	x1=$(cpu_stall)
	kill -0 "$pid" 2>/dev/null || die "$s (pid $pid) exited during the run"
	[ "$s" = node ] && wait=$(wait_flushed)
	read -r u1 s1 <<<"$(cpu_ticks "$pid")"
	r1=$(redis_cpu)
	read -r e1 p1 <<<"$(redis_calls)"
	[ "$s" = node ] && m1=$(metrics $journal)
	local w
	w=$(sed -n 's/^setup-a: //p' "$f.txt")
	[ -n "$w" ] || die "no result line from wrk in $f.txt"
	jq -c -n --argjson w "$w" --arg server "$s" --argjson round "$round" \
		--argjson utime "$((u1 - u0))" --argjson stime "$((s1 - s0))" --argjson hz "$CLK_TCK" --argjson redis "$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.6f", b - a }')" \
		--argjson evals "$((e1 - e0))" --argjson rpops "$((p1 - p0))" --argjson stall "$((x1 - x0))" --argjson flush_wait "$wait" --arg m0 "$m0" --arg m1 "$m1" '
		($w.duration_us / 1e6) as $secs | ($utime + $stime) as $ticks |
		([$m0, $m1] | map(split(" ") | map(tonumber))) as [$j0, $j1] |
		($j1[0] - $j0[0]) as $commits | ($j1[1] - $j0[1]) as $records | ($j1[2] - $j0[2]) as $commit_s |
		{round: $round, server: $server, claims: $w.ok, non200: $w.non200, status: $w.status,
		 socket_errors: ($w.errors.connect + $w.errors.read + $w.errors.write + $w.errors.timeout),
		 errors: ($w.non200 + $w.errors.connect + $w.errors.read + $w.errors.write + $w.errors.timeout),
		 seconds: $secs, claims_per_s: ($w.ok / $secs), answers_per_s: ($w.requests / $secs),
		 p50_ms: ($w.p50_us / 1000), p99_ms: ($w.p99_us / 1000),
		 server_cpu_s: ($ticks / $hz), server_sys_share: (if $ticks > 0 then $stime / $ticks else null end), redis_cpu_s: $redis,
		 server_cpu_us_per_claim: (if $w.ok > 0 then $ticks / $hz * 1e6 / $w.ok else null end),
		 redis_cpu_us_per_claim: (if $w.ok > 0 then $redis * 1e6 / $w.ok else null end),
		 redis_evalsha_calls: $evals, redis_rpop_calls: $rpops, cpu_pressure: ($stall / $w.duration_us)}
		+ (if $server == "node" then {flush_wait_s: $flush_wait, journal_commits: $commits, journal_records: $records,
		     records_per_commit: (if $commits > 0 then $records / $commits else null end),
		     commit_ms: (if $commits > 0 then $commit_s * 1000 / $commits else null end),
		     claims_per_flush_call: (if $evals > 0 then $w.ok / $evals else null end)} else {} end)' >>"$ROUNDS_FILE"
	tail -n1 "$ROUNDS_FILE" | jq -r '"setup-a: round \(.round) \(.server): \(.claims_per_s | floor) claims/s, \(.errors) errors, p99 \(.p99_ms) ms, server \(.server_cpu_us_per_claim // 0 | . * 100 | round / 100) µs/claim, redis \(.redis_cpu_us_per_claim // 0 | . * 100 | round / 100) µs/claim"' >&2
}

for round in $(seq "$ROUNDS"); do
	for s in ceiling seed node; do
		if has "$s"; then measure "$round" "$s"; fi
	done
done

# --- results ---

[ "$(wc -l <"$ROUNDS_FILE")" -eq "$((ROUNDS * $(wc -w <<<"$SERVERS")))" ] || die "some runs were not measured ($ROUNDS_FILE)"

jq -s --arg duration "$DURATION" --arg warmup "$WARMUP" --argjson rounds "$ROUNDS" --argjson conns "$CONNS" \
	--argjson users "$USERS" --argjson count "$COUNT" --argjson amount "$AMOUNT" --arg scpu "$SERVER_CPU" --arg lcpu "$LOAD_CPU" \
	--arg hook "$STATUS_HOOK" '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def agg($s): [.[] | select(.server == $s)] as $r | {
		rounds: ($r | length),
		claims_per_s: ($r | map(.claims_per_s) | median),
		p50_ms: ($r | map(.p50_ms) | median), p99_ms: ($r | map(.p99_ms) | median),
		server_cpu_us_per_claim: ($r | map(.server_cpu_us_per_claim) | median),
		server_sys_share: ($r | map(.server_sys_share) | median),
		redis_cpu_us_per_claim: ($r | map(.redis_cpu_us_per_claim) | median),
		claims: ($r | map(.claims) | add), errors: ($r | map(.errors) | add),
		cpu_pressure: ($r | map(.cpu_pressure) | median),
		non200: ($r | map(.non200) | add), socket_errors: ($r | map(.socket_errors) | add),
		status: ($r | map(.status | to_entries) | add | group_by(.key) | map({key: .[0].key, value: (map(.value) | add)}) | from_entries)}
		+ (if $s == "node" then {flush_wait_s: ($r | map(.flush_wait_s) | median),
			records_per_commit: ($r | map(.records_per_commit) | median), commit_ms: ($r | map(.commit_ms) | median),
			claims_per_flush_call: ($r | map(.claims_per_flush_call) | median)} else {} end);
	def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
	def target($name; $v; $ok): {target: $name, value: $v, met: (if $v == null then null else $ok end)};
	. as $all | (map(.server) | unique) as $present |
	(reduce ("ceiling", "seed", "node") as $s ({}; if ($present | index($s)) then . + {($s): ($all | agg($s))} else . end)) as $m |
	ratio($m.node.claims_per_s; $m.seed.claims_per_s) as $ns |
	ratio($m.node.claims_per_s; $m.ceiling.claims_per_s) as $nc |
	ratio($m.node.server_cpu_us_per_claim; $m.ceiling.server_cpu_us_per_claim) as $cc |
	{setup: {name: "A", nodes: 1, server_cpu: $scpu, load_cpu: $lcpu, load: "wrk -t1 -c\($conns) (closed loop)",
	         users: $users, packets: $count, amount: $amount, duration: $duration, warmup: $warmup, rounds: $rounds,
	         status_hook: ($hook != "0")},
	 servers: $m,
	 ratios: {node_over_seed_claims: $ns, node_over_ceiling_claims: $nc, node_cpu_over_ceiling_cpu: $cc},
	 ratios_by_round: [$all | group_by(.round)[] | (map({(.server): .}) | add) as $x |
		{round: .[0].round, node_over_seed_claims: ratio($x.node.claims_per_s; $x.seed.claims_per_s),
		 node_over_ceiling_claims: ratio($x.node.claims_per_s; $x.ceiling.claims_per_s),
		 node_cpu_over_ceiling_cpu: ratio($x.node.server_cpu_us_per_claim; $x.ceiling.server_cpu_us_per_claim)}],
	 targets: [
		target("node claims/s >= 2.0x seed"; $ns; $ns >= 2.0),
		target("node claims/s >= 0.5x ceiling"; $nc; $nc >= 0.5),
		target("node: zero error answers"; $m.node.errors; $m.node.errors == 0),
		target("node CPU per claim <= 2x ceiling per request"; $cc; $cc <= 2.0),
		target("Redis CPU per flushed claim <= 1 us"; $m.node.redis_cpu_us_per_claim; $m.node.redis_cpu_us_per_claim <= 1.0)],
	 rounds: $all}' "$ROUNDS_FILE" >"$OUT/results.json"

DEFS='def f($d): if . == null then "-" else (. * pow(10; $d) | round / pow(10; $d) | tostring) end;
	def c: if . == null then "-" else (floor | tostring | [scan("\\d")] | reverse
		| [range(0; length; 3) as $i | .[$i:$i+3] | reverse | join("")] | reverse | join(",")) end;'
{
	jq -r "$DEFS"'
	"Setup A: \(.setup.nodes) node on cpu \(.setup.server_cpu); \(.setup.load), users over \(.setup.users | c); Redis, coordinator and wrk on cpu \(.setup.load_cpu)",
	"rain of \(.setup.packets | c) packets; \(.setup.rounds) round(s) of \(.setup.duration), warm-up \(.setup.warmup) each; medians over rounds",
	""' "$OUT/results.json"
	jq -r "$DEFS"'
	(["server", "claims/s", "errors", "p50 ms", "p99 ms", "server µs/claim", "(sys)", "redis µs/claim"] | @tsv),
	(.servers | to_entries[] | [.key, (.value.claims_per_s | c), (.value.errors | tostring), (.value.p50_ms | f(2)), (.value.p99_ms | f(2)),
		(.value.server_cpu_us_per_claim | f(2)), ((.value.server_sys_share // 0) * 100 | round | tostring) + "%", (.value.redis_cpu_us_per_claim | f(3))] | @tsv)' "$OUT/results.json" |
		column -t -s $'\t'
	jq -r "$DEFS"'
	"",
	"node/seed claims/s \(.ratios.node_over_seed_claims | f(2))x, node/ceiling claims/s \(.ratios.node_over_ceiling_claims | f(2))x, node/ceiling CPU per claim \(.ratios.node_cpu_over_ceiling_cpu | f(2))x",
	(if .setup.rounds > 1 then "by round: node/seed " + ([.ratios_by_round[].node_over_seed_claims | f(2) + "x"] | join(" ")) +
		", node/ceiling " + ([.ratios_by_round[].node_over_ceiling_claims | f(2) + "x"] | join(" ")) +
		", CPU " + ([.ratios_by_round[].node_cpu_over_ceiling_cpu | f(2) + "x"] | join(" ")) else empty end),
	(if .servers.node == null then empty else "node: \(.servers.node.records_per_commit | f(1)) claims per journal commit of \(.servers.node.commit_ms | f(2)) ms, \(.servers.node.claims_per_flush_call | f(1)) per Redis flush call (EVALSHA); flush lag 0 within \(.servers.node.flush_wait_s | f(2)) s of the load'"'"'s end" end),
	"cpu pressure: a task waited for a cpu \([.rounds[].cpu_pressure] | add / length * 100 | round)% of the run time (PSI some; this setup'"'"'s own processes share cpu 0, other load on the machine raises it)",
	([.servers | to_entries[] | select(.value.socket_errors > 0) | "\(.key) \(.value.socket_errors)"] | if length > 0 then "socket errors (wrk connect/read/write/timeout): " + join("; ") else empty end),
	([.servers | to_entries[] | select(.value.status != {}) | "\(.key) \(.value.status | tojson)"] | if length > 0 then "non-200 answers: " + join("; ") else empty end),
	"",
	(.targets[] | "\(if .met == null then "n/a    " elif .met then "met    " else "not met" end)  \(.target) (\(.value | f(3)))")' "$OUT/results.json"
} | tee "$OUT/table.txt"
say "results in $OUT/results.json, wrk outputs in $OUT/rounds/"

if [ "$PROFILE" = 1 ]; then
	say "profile: a node run of $((PROFILE_SECONDS + 4))s with a ${PROFILE_SECONDS}s CPU profile"
	run_wrk "$URL_node" "$((PROFILE_SECONDS + 4))s" "$OUT/rounds/profile-node.txt" &
	WRK_PID=$!
	sleep 2
	curl -fsS -o "$OUT/node-cpu.pprof" "http://$PPROF_HTTP/debug/pprof/profile?seconds=$PROFILE_SECONDS"
	wait "$WRK_PID"
	sed -n 's/^Requests\/sec:/profile run: requests\/sec/p' "$OUT/rounds/profile-node.txt" >&2
	"$GO" tool pprof -top bin/node "$OUT/node-cpu.pprof" >"$OUT/pprof-top.txt" 2>/dev/null
	"$GO" tool pprof -top -cum bin/node "$OUT/node-cpu.pprof" >"$OUT/pprof-top-cum.txt" 2>/dev/null
	# The profile grouped for the journal's levers: each line is the CPU under frames matching
	# the regexp (pprof -focus), as a share of the node's CPU; indented lines are parts of the
	# line above; groups do not add up to 100% (uncategorized frames, and overlaps).
	group() {
		printf '%-44s %s\n' "$1" "$("$GO" tool pprof -top -focus="$2" bin/node "$OUT/node-cpu.pprof" 2>/dev/null |
			awk '/^Showing nodes accounting for/ { sub(/,$/, "", $5); print $5, $6 }')"
	}
	{
		"$GO" tool pprof -top bin/node "$OUT/node-cpu.pprof" 2>/dev/null | grep -m1 '^Duration'
		group "socket write (net.conn.Write)" 'net\.\(\*conn\)\.Write$'
		group "socket read (net.conn.Read)" 'net\.\(\*conn\)\.Read$'
		group "socket deadlines (Set*Deadline)" 'net\.\(\*conn\)\.Set(Read|Write)?Deadline$'
		group "journal commit (Journal.writer)" 'ledger\.\(\*Journal\)\.writer$'
		group "  write-ahead log frame (a log's journal)" 'ledger\.\(\*walFile\)\.appendFrame$'
		group "journal applier, log to bbolt (a log's)" 'ledger\.\(\*Journal\)\.applier$'
		group "bbolt Tx.Commit (anywhere)" 'bbolt\.\(\*Tx\)\.Commit$'
		group "fdatasync (anywhere)" '^(syscall|golang\.org/x/sys/unix)\.Fdatasync$'
		group "pwrite (anywhere)" '^syscall\.Pwrite$'
		group "journal Append (handler side)" 'ledger\.\(\*Journal\)\.Append$'
		group "flusher (Flusher.Run)" 'ledger\.\(\*Flusher\)\.Run$'
		group "  Redis EVALSHA (go-redis)" 'redis/go-redis/v9\.\(\*Script\)\.Run$'
		group "claim handler (Node.handleClaim)" 'node\.\(\*Node\)\.handleClaim$'
		group "  shard Claim" 'shard\.\(\*Store\)\.Claim$'
		group "metrics endpoint, gossip" 'promhttp|memberlist'
		group "runtime: GC" '^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge|gcAssistAlloc)$'
		group "runtime: scheduler (mcall, schedule)" '^runtime\.(mcall|schedule|findRunnable)$'
		group "runtime: netpoll (epoll_wait)" '^runtime\.netpoll$'
	} >"$OUT/pprof-groups.txt"
	cat "$OUT/pprof-groups.txt"
	say "profile in $OUT/node-cpu.pprof; tops in $OUT/pprof-top.txt, $OUT/pprof-top-cum.txt; grouped in $OUT/pprof-groups.txt"
fi
