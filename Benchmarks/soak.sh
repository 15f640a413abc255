#!/usr/bin/env bash
# soak.sh — a bounded soak: CALLS calls (default 1,000,000) through a release llmtap that
# records every one, with its resident memory and open file descriptors sampled every
# INTERVAL seconds. Prints the samples and the growth after warm-up (the first 10 % of calls),
# for the process's own memory (anonymous: heap, SQLite's page cache) and for the pages of
# the memory-mapped database file (file-backed, the kernel's to reclaim; capped by mmap_size),
# and the process's memory once it has been quiet for 21 s (what it holds, the allocator's
# free memory handed back).
#
#   Benchmarks/soak.sh                     # 1 M calls, mixed: 3 non-stream : 1 stream
#   CALLS=200000 Benchmarks/soak.sh
#
# Uses the shared harness's C mock upstream and wrk (BENCH_HARNESS, default ../shared/bench).
set -euo pipefail
CALLS="${CALLS:-1000000}"
INTERVAL="${INTERVAL:-5}"
CONC="${CONC:-32}"
TOOLS="wrk" source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start_llmtap "$WORK/soak.sqlite"

# Three non-stream calls to one stream (20 chunks), each call its own session.
cat > "$WORK/soak.lua" <<'EOF'
local n = 0
request = function()
  n = n + 1
  local stream = (n % 4 == 0) and "true" or "false"
  local body = '{"model":"mock-c20-d0","stream":' .. stream .. ',"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"soak call ' .. n .. '"}]}'
  return wrk.format("POST", "/v1/chat/completions", {["Content-Type"] = "application/json", ["X-Session-Id"] = "soak-" .. (n % 5000)}, body)
end
EOF

# jemalloc's counts in KiB: what llmtap holds, and what the allocator keeps resident.
allocator() {
  curl -sf "http://127.0.0.1:$API_PORT/metrics" | awk '/^llmtap_allocator_allocated_bytes /{a=$2} /^llmtap_allocator_resident_bytes /{r=$2} END {printf "%d %d", a/1024, r/1024}'
}
sample() {
  echo "$(date +%s) $(written) $(awk '/RssAnon/{print $2}' /proc/$TAP/status) $(ls /proc/$TAP/fd | wc -l) $(awk '/RssFile/{print $2}' /proc/$TAP/status) $(allocator)"
}

echo "# soak: $CALLS calls, $CONC connections" >&2
START=$(date +%s)
: > "$WORK/samples"
while true; do
  wrk -t1 -c"$CONC" -d"${INTERVAL}s" --timeout 10s -s "$WORK/soak.lua" "http://127.0.0.1:$PORT/v1/chat/completions" > /dev/null 2>&1 || true
  line="$(sample)"; echo "$line" >> "$WORK/samples"
  set -- $line; echo "$(( $1 - START ))s  written=$2  anon=$(( $3 / 1024 ))MiB  file=$(( $5 / 1024 ))MiB  fds=$4  held=$(( $6 / 1024 ))MiB  allocator=$(( $7 / 1024 ))MiB" >&2
  [[ "$2" -ge "$CALLS" ]] && break
done
sleep 2
python3 - "$WORK/samples" "$CALLS" <<'EOF'
import sys
rows = [list(map(int, line.split())) for line in open(sys.argv[1]) if line.strip()]
calls = int(sys.argv[2])
warm = next((r for r in rows if r[1] >= calls // 10), rows[0])
after = [r for r in rows if r[1] >= warm[1]]
peak_rss = max(r[2] for r in after); last = rows[-1]
elapsed = rows[-1][0] - rows[0][0] or 1
print(f"calls written: {last[1]:,} in {elapsed} s ({last[1] / elapsed:,.0f}/s)")
print(f"anonymous RSS after warm-up ({warm[1]:,} calls): {warm[2] / 1024:.1f} MiB; peak since {peak_rss / 1024:.1f} MiB; "
      f"at the end {last[2] / 1024:.1f} MiB; growth {100 * (peak_rss - warm[2]) / warm[2]:+.1f} %")
print(f"file-backed RSS (mapped database pages) after warm-up {warm[4] / 1024:.1f} MiB, at the end {last[4] / 1024:.1f} MiB")
print(f"open fds after warm-up {warm[3]}, max since {max(r[3] for r in after)}, at the end {last[3]}")
print(f"held by llmtap (jemalloc's allocated) after warm-up {warm[5] / 1024:.1f} MiB, peak since {max(r[5] for r in after) / 1024:.1f}, "
      f"at the end {last[5] / 1024:.1f}; the allocator's resident memory peak {max(r[6] for r in after) / 1024:.1f} MiB")
EOF
# The recorder's longest write transaction (calls queue behind it) and its mean batch.
curl -sf "http://127.0.0.1:$API_PORT/metrics" | grep -E '^llmtap_recorder_(longest_write_seconds|mean_batch_size) ' || true
# Quiet for two of the trimmer's 10 s readings: llmtap hands the allocator's free memory back
# (AllocatorPurgeService), so what is left is what it holds.
sleep 21
echo "anonymous RSS 21 s after the load stopped: $(( $(awk '/RssAnon/{print $2}' /proc/$TAP/status) / 1024 )) MiB"
echo "database: $(du -h "$WORK/soak.sqlite" | cut -f1), calls: $(sqlite3 "$WORK/soak.sqlite" 'select count(*) from calls' 2>/dev/null || echo '?')"
