# Shared by run.sh and test.sh: install what is missing from Debian, build.
# Sourced, not run.

PB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and running patchbay needs.
PB_PACKAGES_RUN="libh2o-evloop-dev libcurl4-openssl-dev libssl-dev libjansson-dev libgit2-dev libhiredis-dev
libyaml-dev redis-server git pkg-config cmake gcc make ca-certificates bubblewrap slirp4netns util-linux skopeo umoci"
# What the test suite needs on top (cmocka, PyJWT for the fake GitHub, wrk for benchmarks, clang for fuzzing).
PB_PACKAGES_TEST="libcmocka-dev python3 python3-jwt python3-yaml binutils wrk curl procps chromium busybox-static"
# Node runs test tools only (the example payloads, the Node comparison, the
# browser driver); Debian's nodejs and npm when the machine has no node at all.
command -v node >/dev/null 2>&1 || PB_PACKAGES_TEST="$PB_PACKAGES_TEST nodejs npm"

pb_log() { printf '==> %s\n' "$*" >&2; }

pb_missing_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    printf '%s\n' "${missing[@]}"
}

# apt-get can meet a dpkg lock held by unattended upgrades: wait and retry.
pb_apt() {
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        if DEBIAN_FRONTEND=noninteractive "$@"; then return 0; fi
        pb_log "apt-get failed (attempt $try); retrying in 10 s"
        sleep 10
    done
    return 1
}

pb_install_packages() {
    local missing
    missing=$(pb_missing_packages "$@" | tr '\n' ' ')
    [ -z "${missing// /}" ] && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { pb_log "missing Debian packages: $missing (run as root or install them)"; return 1; }
        sudo=sudo
    fi
    pb_log "installing Debian packages: $missing"
    pb_apt $sudo apt-get update -qq || return 1
    # shellcheck disable=SC2086
    pb_apt $sudo apt-get install -y -qq --no-install-recommends $missing || return 1
}

# The test suite's Node tools and the real agent CLIs, pinned in
# tests/package.json (and its lock file), into tests/node_modules. About a
# minute and ~1.5 GB the first time; after that a stamp of the two files says
# nothing changed and npm is not run at all. Install scripts run only where
# package.json's allowScripts says so (npm 11 warns about the others): Claude
# Code's and opencode's put their native binary in place; keytar and node-pty
# (Gemini CLI's optional native modules) are not built. Without npm or the
# registry it says so and goes on: the tests that need these tools skip with
# the reason.
pb_install_test_tools() {
    local dir="$PB_ROOT/tests" stamp="$PB_ROOT/tests/node_modules/.patchbay-installed" want
    want=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        pb_log "npm is missing: the tests that need tests/node_modules will be skipped"
        return 0
    fi
    pb_log "installing the test tools and agent CLIs (tests/package.json) from npm"
    # --loglevel=error: the CLIs that ask for Node 22 (EBADENGINE) run on Debian's 20
    if npm install --prefix "$dir" --no-audit --no-fund --loglevel=error >&2; then
        echo "$want" >"$stamp"
    else
        pb_log "npm install failed: the tests that need tests/node_modules will be skipped"
    fi
}

# pb_build DIR [cmake options...]: the tests are built when cmocka and
# python3 are there (PATCHBAY_TESTS=AUTO), unless an option says otherwise.
pb_build() {
    local dir=$1; shift
    cmake -S "$PB_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="${PB_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null || return 1
    cmake --build "$dir" -j"$(nproc)" -- --no-print-directory >/dev/null || cmake --build "$dir" -j1 || return 1
}
