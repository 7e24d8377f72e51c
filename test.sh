#!/usr/bin/env bash
# Quick start, part two: the whole test suite, as CI runs it.
# Builds with -Wall -Wextra -Werror, runs every unit, fuzz-driver and
# integration test through ctest, then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs them all again. Any failure, and any
# sanitizer report, fails the run.
#   ./test.sh            everything
#   ./test.sh -R spool   only the tests whose name matches (passed to ctest)
set -euo pipefail
source "$(dirname "$0")/scripts/lib.sh"
# shellcheck disable=SC2086
pb_install_packages $PB_PACKAGES_RUN $PB_PACKAGES_TEST
pb_install_test_tools

jobs=${PB_TEST_JOBS:-2}
status=0

pb_log "build (-Werror)"
pb_build "$PB_ROOT/build" -DPATCHBAY_WERROR=ON -DPATCHBAY_SANITIZE=OFF -DPATCHBAY_TESTS=ON
pb_log "tests"
(cd "$PB_ROOT/build" && ctest --output-on-failure -j"$jobs" "$@") || status=1

pb_log "build with AddressSanitizer + UndefinedBehaviorSanitizer"
pb_build "$PB_ROOT/build-asan" -DPATCHBAY_WERROR=ON -DPATCHBAY_SANITIZE=ON -DPATCHBAY_TESTS=ON
reports=$(mktemp -d)
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1:exitcode=86"
export LSAN_OPTIONS="suppressions=$PB_ROOT/tests/lsan.supp:print_suppressions=0"
pb_log "tests under the sanitizers"
(cd "$PB_ROOT/build-asan" && ctest --output-on-failure -j"$jobs" "$@") || status=1
if compgen -G "$reports/*" >/dev/null; then
    pb_log "sanitizer reports:"
    cat "$reports"/* >&2
    status=1
fi
rm -rf "$reports"
[ $status -eq 0 ] && pb_log "all tests passed" || pb_log "FAILED"
exit $status
