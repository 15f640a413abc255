#!/usr/bin/env bash
# cpu-budget.sh — where the CPU of a call goes at 32 connections, and what the throughput
# targets of issue 6 leave llmtap. For the harness's non-stream and 20-chunk stream bodies it
# runs wrk directly against the mock upstream, through nginx (pass-through, no logging) and
# through llmtap (recording every call), and prints the CPU a call of each party: wrk, the
# mock upstream, the proxy (llmtap split into its event loops and its other threads — the
# recorder, SQLite's writer, the metrics). llmtap's figure counts the calls still queued for
# the recorder when the cell ends, until they are written.
#
# Then, for each target (0.5 × nginx non-stream, 0.8 × nginx streams), the CPU a call llmtap
# may spend at that rate: the machine's cores over the rate, less what wrk and the upstream
# spend on a call through llmtap.
#
#   Benchmarks/cpu-budget.sh
#   DURATION=10 Benchmarks/cpu-budget.sh
#
# Uses the shared harness's C mock upstream and bodies (BENCH_HARNESS, default ../shared/bench),
# wrk and nginx.
set -euo pipefail
DURATION="${DURATION:-6}"
TOOLS="wrk nginx" source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cat > "$WORK/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  io.write(string.format("REQUESTS %d\n", summary.requests))
end
EOF

NGINX_PORT=$((UP_PORT + 3))
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp;
  keepalive_requests 10000000;
  upstream llm { server 127.0.0.1:$UP_PORT; keepalive 256; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://llm; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off;
    }
  }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
start_llmtap "$WORK/budget.sqlite"
sleep 0.5

CORES=$(nproc)
ticks() { local s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }
loop_ticks() { local s=0; for t in /proc/$TAP/task/*; do grep -q '^NIO-' "$t/comm" && s=$((s + $(awk '{print $14 + $15}' "$t/stat"))); done; echo $s; }
nginx_pids() { local master; master=$(cat "$WORK/nginx/nginx.pid"); echo "$master $(pgrep -P "$master" | tr '\n' ' ')"; }
HZ=$(getconf CLK_TCK)

# cell BODY PORT TARGET: one line "target body rps wrk mock proxy loops others" (µs a call)
cell() {
  local body="$HARNESS/bodies/$1.json" port=$2 target=$3 proxy_pids="" before=0 w0 u0 p0 l0 requests
  case $target in nginx) proxy_pids=$(nginx_pids) ;; llmtap) proxy_pids=$TAP ;; esac
  BODY_FILE=$body wrk -t1 -c32 -d2s -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/chat/completions" > /dev/null
  if [[ $target == llmtap ]]; then  # the warm-up's calls written first
    for _ in $(seq 600); do local a; a=$(written); sleep 0.1; [[ "$(written)" == "$a" ]] && break; done
    before=$(written)
  fi
  BODY_FILE=$body wrk -t1 -c32 -d"${DURATION}s" -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/chat/completions" > "$WORK/wrk.out" &
  local wrk_job=$!
  sleep 0.1
  local wrk_pid; wrk_pid=$(pgrep -n -x wrk)
  w0=$(ticks "$wrk_pid"); u0=$(ticks $UP); p0=$( [[ -n $proxy_pids ]] && ticks $proxy_pids || echo 0); l0=$( [[ $target == llmtap ]] && loop_ticks || echo 0)
  local w1=$w0; while kill -0 "$wrk_pid" 2>/dev/null; do w1=$(ticks "$wrk_pid" 2>/dev/null || echo "$w1"); sleep 0.05; done
  wait $wrk_job
  requests=$(awk '/^REQUESTS/{print $2}' "$WORK/wrk.out")
  if [[ $target == llmtap ]]; then  # until the recorder has written the cell's calls
    for _ in $(seq 600); do [[ $(( $(written) - before )) -ge $requests ]] && break; sleep 0.05; done
  fi
  local u1 p1 l1; u1=$(ticks $UP); p1=$( [[ -n $proxy_pids ]] && ticks $proxy_pids || echo 0); l1=$( [[ $target == llmtap ]] && loop_ticks || echo 0)
  python3 - "$target" "$1" "$requests" "$DURATION" "$HZ" $((w1 - w0)) $((u1 - u0)) $((p1 - p0)) $((l1 - l0)) <<'EOF'
import sys
target, body, n, secs, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
us = lambda t: int(t) * 1e6 / hz / n
w, u, p, l = (us(x) for x in sys.argv[6:10])
print(f"{target} {body} {n / secs:.0f} {w:.0f} {u:.0f} {p:.0f} {l:.0f} {p - l:.0f}")
EOF
}

echo "# cores: $CORES; $DURATION s a cell at 32 connections; µs of CPU a call" >&2
printf '%-8s %-6s %9s %6s %6s %7s %7s %7s\n' target body calls/s wrk mock proxy loops others
: > "$WORK/cells"
for body in ns s20d0; do
  for spec in "direct $UP_PORT" "nginx $NGINX_PORT" "llmtap $PORT"; do
    set -- $spec
    line=$(cell "$body" "$2" "$1"); echo "$line" >> "$WORK/cells"
    set -- $line
    if [[ $1 == direct ]]; then printf '%-8s %-6s %9s %6s %6s %7s %7s %7s\n' $1 $2 $3 $4 $5 - - -
    elif [[ $1 == nginx ]]; then printf '%-8s %-6s %9s %6s %6s %7s %7s %7s\n' $1 $2 $3 $4 $5 $6 - -
    else printf '%-8s %-6s %9s %6s %6s %7s %7s %7s\n' "$@"; fi
  done
done
python3 - "$WORK/cells" "$CORES" <<'EOF'
import sys
cells = {(r[0], r[1]): r for r in (line.split() for line in open(sys.argv[1]) if line.strip())}
cores = int(sys.argv[2])
print()
for body, ratio, name in (("ns", 0.5, "non-stream"), ("s20d0", 0.8, "20-chunk streams")):
    nginx, tap = cells[("nginx", body)], cells[("llmtap", body)]
    rate = ratio * float(nginx[2])
    others = float(tap[3]) + float(tap[4])  # wrk and the upstream, a call through llmtap
    budget = cores * 1e6 / rate - others
    print(f"{name}: {ratio} x nginx = {rate:,.0f} calls/s leaves llmtap {budget:.0f} us of CPU a call "
          f"({cores} cores / rate - wrk and upstream's {others:.0f}); llmtap spends {float(tap[5]):.0f} "
          f"({float(tap[6]):.0f} in its event loops, {float(tap[7]):.0f} in its other threads)")
EOF
