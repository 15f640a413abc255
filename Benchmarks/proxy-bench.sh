#!/usr/bin/env bash
# proxy-bench.sh — what llmtap adds to a call, next to calling the upstream directly and
# through nginx, in one interleaved run on loopback, with llmtap recording every call to SQLite.
#
#   Benchmarks/proxy-bench.sh                       # all scenarios, 3 repeats × 8 s
#   REPEATS=1 DURATION=4 SCENARIOS="ns-c1 s0-c1" Benchmarks/proxy-bench.sh
#
# It drives the project's shared side-by-side harness (BENCH_HARNESS, default ../shared/bench
# beside the checkout): a C mock upstream speaking OpenAI JSON and SSE, a sequential latency
# client (c1) and wrk (c32), nginx as the pass-through limit. The harness is copied to a
# scratch folder so it can build its tools there; results land in Benchmarks/results/ (ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${BENCH_HARNESS:-$ROOT/../shared/bench}"
[[ -f "$HARNESS/run_baselines.sh" ]] || { echo "no harness at $HARNESS (set BENCH_HARNESS)" >&2; exit 1; }

swift build -c release --package-path "$ROOT" --product llmtap >&2
BIN="$(swift build -c release --package-path "$ROOT" --show-bin-path)/llmtap"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$HARNESS"/. "$WORK/"
chmod -R u+w "$WORK"
(cd "$WORK" && ./setup.sh >&2)

mkdir -p "$ROOT/Benchmarks/results"
export OUTDIR="$ROOT/Benchmarks/results/$(date +%Y%m%d-%H%M%S)"
export PROXY_NAME=llmtap
export PROXY_CMD="$BIN serve --host 127.0.0.1 --port \$PROXY_PORT --api-port \$((PROXY_PORT+50)) --upstream \$UPSTREAM_URL --db \$RUN_DIR/llmtap.sqlite --log-level warning"
export TARGETS="${TARGETS:-direct nginx}"
(cd "$WORK" && ./run_baselines.sh)
echo "rows recorded by llmtap: $(sqlite3 "$OUTDIR/llmtap.sqlite" 'select count(*) from calls' 2>/dev/null || echo '?')"
