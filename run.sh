#!/usr/bin/env bash
# Quick start, part one: installs what is missing (Debian 12 packages), builds
# patchbay, and starts `patchbay run` (or the command you give).
#   ./run.sh                 webhook server + workers + a private Redis
#   ./run.sh check-config    any other patchbay command
set -euo pipefail
source "$(dirname "$0")/scripts/lib.sh"
# shellcheck disable=SC2086
pb_install_packages $PB_PACKAGES_RUN
pb_build "$PB_ROOT/build"
[ $# -eq 0 ] && set -- run
exec "$PB_ROOT/build/patchbay" "$@"
