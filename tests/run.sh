#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: installs what is missing
# (Debian 12, as root), builds with warnings as errors, runs every unit and
# integration test, and prints one closing line "N passed, N failed, N skipped".
#
#   tests/run.sh                 normal build in build/
#   tests/run.sh --sanitizers    ASan+UBSan build in build-asan/
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=build
confopts=(--enable-werror)
if [ "${1:-}" = "--sanitizers" ]; then
    builddir=build-asan
    confopts+=(--enable-sanitizers)
    # LeakSanitizer would also report libraries' deliberate exit-time
    # leaks; memory errors and undefined behaviour still abort.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

"$top/contrib/install-deps-debian.sh"

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi
fi
mkdir -p "$builddir"
cd "$builddir"
if [ ! -f Makefile ] || [ ../configure -nt Makefile ]; then
    ../configure "${confopts[@]}"
fi
make -j"$(nproc)"

set +e
make -j"$(nproc)" check 2>&1 | tee check.out
rc=${PIPESTATUS[0]}
set -e

count() { sed -n "s/^# $1: *\([0-9]*\).*/\1/p" test-suite.log check.out 2>/dev/null | head -n 1; }
pass=$(count PASS); fail=$(count FAIL); skip=$(count SKIP); err=$(count ERROR)
pass=${pass:-0}; fail=$(( ${fail:-0} + ${err:-0} )); skip=${skip:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
    fail=1   # the build or the harness failed before counting
fi
for f in $(grep -l ':test-result: SKIP' tests/*.trs tests/unit/*.trs 2>/dev/null); do
    log=${f%.trs}.log
    echo "skipped: $log: $(grep -m1 -i 'skip' "$log" | head -c 200)"
done
for f in $(grep -l ':test-result: \(FAIL\|ERROR\)' tests/*.trs tests/unit/*.trs 2>/dev/null); do
    log=${f%.trs}.log
    echo "---- $log"; tail -n 40 "$log"
done
if [ "${CI:-}" = "true" ] && [ "$skip" -ne 0 ]; then
    echo "CI installs every tool: no test may skip here"
    fail=$((fail + skip))
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
