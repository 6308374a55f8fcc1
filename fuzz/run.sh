#!/usr/bin/env bash
# fuzz/run.sh [SECONDS]: runs every cargo-fuzz target for SECONDS (default 60) each and
# prints one summary line per target (executions, time). The toolchain here is stable,
# so RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags; it uses no sanitizer (Rust's
# safe code needs none: a panic or an abort is the failure we look for).
# Needs: cargo install cargo-fuzz (from crates.io), a C++ compiler (for libFuzzer).
# Crashes land in fuzz/artifacts/<target>/; corpora grow in fuzz/corpus/<target>/.
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")"
targets=(object_units age_header stream_open offsets config decode_object pq_keys key_files)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build --release --sanitizer none
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/run.log"
    if [[ -f dict/$t.dict ]]; then dict=(-dict="dict/$t.dict"); else dict=(); fi
    start=$(date +%s)
    if cargo fuzz run --release --sanitizer none "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=300000 -print_final_stats=1 \
        "${dict[@]}" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$t/)"
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    corpus=$(find "corpus/$t" -type f | wc -l)
    echo "$t: ${execs:-?} executions in $(($(date +%s) - start)) s, corpus $corpus inputs: $result"
done
exit $status
