#!/usr/bin/env bash
# Fuzzes every target of Fuzz/Targets/FuzzTargets.swift with libFuzzer (and AddressSanitizer).
#
#   Fuzz/run.sh [RUNS_PER_TARGET] [TARGET...]      default: 2000000 runs, every target
#
# Inputs that find new coverage are kept in Fuzz/corpus/<target>/, merged down to a set that
# covers the same features (commit it: `swift test` replays it); a crash leaves its input in
# Fuzz/crashes/ and stops that target.
# Needs the toolchain's libFuzzer runtime and lld (both ship with Swift on Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sse ndjson response request usage-filter json)

# libFuzzer reports crashes itself; Swift's backtracer would keep the output pipe open.
export SWIFT_BACKTRACE=enable=no
scratch=.build-fuzz
swift build -c release --product llmtap-fuzz --scratch-path "$scratch" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
binary="$scratch/release/llmtap-fuzz"
mkdir -p Fuzz/crashes
for target in "${targets[@]}"; do
  mkdir -p "Fuzz/corpus/$target"
  echo "== $target: $runs runs"
  LLMTAP_FUZZ_TARGET="$target" "$binary" -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="Fuzz/crashes/$target-" -print_final_stats=1 "Fuzz/corpus/$target" 2>&1 \
    | grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY)|Done [0-9]+ runs|Test unit written" || true
  # Keep the corpus small enough to commit: the inputs that cover every feature found
  # (libFuzzer's merge), plus the named seeds and regressions.
  merged="$scratch/merged/$target"
  rm -rf "$merged" && mkdir -p "$merged"
  LLMTAP_FUZZ_TARGET="$target" "$binary" -merge=1 -max_len=4096 "$merged" "Fuzz/corpus/$target" > /dev/null 2>&1 || true
  if [ -n "$(ls "$merged")" ]; then
    find "Fuzz/corpus/$target" -type f ! -name 'seed-*' ! -name 'regression-*' -delete
    cp "$merged"/* "Fuzz/corpus/$target/"
  fi
  echo "   corpus: $(ls "Fuzz/corpus/$target" | wc -l) inputs"
done
