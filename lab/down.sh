#!/usr/bin/env bash
# Stop everything lab/up.sh started (every builder, the runners of the newer Nix
# versions, and the host nix-daemon).
# Users, keys, configs and stores stay, so the next up.sh is quick.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lab/lib.sh
source "$HERE/lib.sh"
require_root
for name in "${LAB_BUILDERS[@]}"; do "$HERE/builder.sh" stop "$name"; done
for version in "${LAB_ROOTFS_RUNNERS[@]}"; do "$HERE/runner.sh" "$version" stop; done
"$HERE/local-daemon.sh" stop
