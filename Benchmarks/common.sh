# common.sh — what cpu-budget.sh and soak.sh share, sourced by both: a release llmtap, the
# shared harness's C mock upstream running in a scratch folder ($WORK, removed on exit), and
# llmtap started in front of it. Sets ROOT, HARNESS, BIN, WORK, UP_PORT, PORT, API_PORT.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="${BENCH_HARNESS:-$ROOT/../shared/bench}"
[[ -f "$HARNESS/mock_upstream.c" ]] || { echo "no harness at $HARNESS (set BENCH_HARNESS)" >&2; exit 1; }

# The tools the script names in TOOLS, before anything is built.
for tool in ${TOOLS:-}; do command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y $tool)" >&2; exit 1; }; done

swift build -c release --package-path "$ROOT" --product llmtap >&2
BIN="$(swift build -c release --package-path "$ROOT" --show-bin-path)/llmtap"
WORK="$(mktemp -d)"
cleanup() {
  kill "${TAP:-}" "${UP:-}" 2>/dev/null || true
  [[ -f "$WORK/nginx/nginx.pid" ]] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

gcc -O2 -o "$WORK/mock_upstream" "$HARNESS/mock_upstream.c"
UP_PORT=$((20000 + RANDOM % 10000)); PORT=$((UP_PORT + 1)); API_PORT=$((UP_PORT + 2))
"$WORK/mock_upstream" --port "$UP_PORT" > "$WORK/upstream.log" 2>&1 & UP=$!

# start_llmtap DB: llmtap on PORT (its API on API_PORT) recording to DB, in front of the mock
# upstream; returns once it answers. Its pid is TAP.
start_llmtap() {
  "$BIN" serve --port "$PORT" --api-port "$API_PORT" --upstream "http://127.0.0.1:$UP_PORT" \
    --db "$1" --log-level warning > "$WORK/llmtap.log" 2>&1 & TAP=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "llmtap did not answer on port $API_PORT:" >&2; cat "$WORK/llmtap.log" >&2; exit 1
}

# written: the calls llmtap's recorder has written so far.
written() { curl -sf "http://127.0.0.1:$API_PORT/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["recorder"]["written"])'; }
