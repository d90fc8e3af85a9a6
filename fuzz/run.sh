#!/usr/bin/env bash
# fuzz/run.sh SECONDS: builds the libFuzzer harnesses out of tree in
# build-fuzz/ (clang, ASan, UBSan) and runs each for SECONDS seconds on a
# copy of its seed corpus (fuzz/corpus/ is never written), with its
# dictionary.  Prints one line per fuzzer and exits 1 if any of them found
# a crash, a leak, a timeout or a broken contract (the input that did it is
# kept under fuzz-runs/NAME/ in the build directory, and the log beside it).
#
#   fuzz/run.sh 20        a short run, as CI does
#   fuzz/run.sh 3600      a long one
#
# Environment: FUZZ_TIMEOUT (seconds one input may take, default 10),
# FUZZ_TARGETS (default "probe luks qcow2 declared policy"), FUZZ_BUILD
# (the build directory, default build-fuzz/ in the project).
set -euo pipefail

secs=${1:-}
case $secs in
    '' | *[!0-9]* | 0) echo "usage: fuzz/run.sh SECONDS" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(mkdir -p "${FUZZ_BUILD:-$top/build-fuzz}" && cd "${FUZZ_BUILD:-$top/build-fuzz}" && pwd)
targets=${FUZZ_TARGETS:-probe luks qcow2 declared policy}
timeout=${FUZZ_TIMEOUT:-10}

"$top/contrib/install-deps-debian.sh"   # clang and libclang-rt-14-dev among them

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi
fi
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
    CC=clang "$top/configure" --enable-fuzzing
fi
make -j2 fuzz/fuzz_probe fuzz/fuzz_luks fuzz/fuzz_qcow2 fuzz/fuzz_declared fuzz/fuzz_policy

runs=$PWD/fuzz-runs
# Leaks are findings too (libFuzzer checks each input); a UBSan report
# aborts the input like an ASan one.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for t in $targets; do
    dir=$runs/$t
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp "$top/fuzz/corpus/$t/." "$dir/corpus/" -R
    seeds=$(find "$dir/corpus" -type f | wc -l)
    set +e
    ./fuzz/fuzz_"$t" -max_total_time="$secs" -timeout="$timeout" -dict="$top/fuzz/$t.dict" \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "$dir/corpus" > "$dir/log" 2>&1
    rc=$?
    set -e
    runs_n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -n 1)
    # A fuzzer that fails on its seeds prints no "#N" status line at all.
    last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    artifact=$(find "$dir/artifacts" -type f | head -n 1)
    if [ "$rc" -eq 0 ] && [ -z "$artifact" ]; then
        status=ok
    else
        status=FAILED
        failed=1
    fi
    line="fuzz_$t: $status (${secs}s budget): ${runs_n:-?} runs (${speed:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${seeds} seeds -> ${corp:-?}"
    if [ "$status" = FAILED ]; then
        line="$line; exit $rc; $(grep -m1 -E 'ERROR: |contract violated|runtime error' "$dir/log" || echo 'see the log')"
        line="$line; input: ${artifact:-none}; log: $dir/log"
        echo "---- fuzz_$t (last 60 lines of $dir/log)"
        tail -n 60 "$dir/log"
    fi
    summary+=("$line")
done
printf '%s\n' "${summary[@]}"
exit "$failed"
