#!/usr/bin/env bash
# Runs every cargo-fuzz target of geocrm for SECONDS each (default 30), one after another.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target runs
# with libFuzzer's -max_total_time=SECONDS -rss_limit_mb=2048 -timeout=1 and
# -print_final_stats=1, plus -malloc_limit_mb=64 (FUZZ_MALLOC_LIMIT_MB): inputs are at most
# 4 KiB, so one allocation over 64 MiB is a finding, not load; the script prints, per target, the executions run (libFuzzer's
# final stat::number_of_executed_units), executions per second, and whether it found
# anything. Inputs start from the committed seeds in fuzz/seeds/<target>/ (regenerate them
# with `cargo run --manifest-path fuzz/Cargo.toml --example make_corpus`) and the working
# corpus in fuzz/corpus/<target>/, where new inputs go (git-ignored); fuzz/dicts/<target>.dict,
# if present, is passed as a libFuzzer dictionary. Crashes, timeouts and out-of-memory
# inputs land in fuzz/artifacts/<target>/ (git-ignored); after fixing, commit a minimized
# copy (`cargo +nightly fuzz tmin TARGET ARTIFACT`) to fuzz/seeds/<target>/.
# Logs are in fuzz/target/fuzz-logs/<target>.log. Exits non-zero if any target failed.
# Not part of CI: fuzzing is run by hand.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(log_replay keystore_open csv_import geojson filter database_open checkpoint_open index_open)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz on nightly is needed: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
    exit 2
fi

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
cargo +nightly fuzz build || exit 2

status=0
printf '%-15s %12s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    dict=()
    if [ -f "fuzz/dicts/$t.dict" ]; then
        dict=(-dict="fuzz/dicts/$t.dict")
    fi
    cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=1 -print_final_stats=1 \
        -malloc_limit_mb="${FUZZ_MALLOC_LIMIT_MB:-64}" "${dict[@]}" \
        >"$logs/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc): $(grep -m1 -E '^(==[0-9]+== ?ERROR|SUMMARY|thread .* panicked)' "$logs/$t.log")"
        status=1
    fi
    printf '%-15s %12s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
done
exit "$status"
