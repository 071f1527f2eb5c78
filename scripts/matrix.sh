#!/usr/bin/env bash
# The lab tests on every runner × builder pair of Nix versions in the matrix
# below (the lab must be up: lab/up.sh). Each pair's vitest JSON results go to
# RESULTS_DIR, with host.txt naming the host's Nix; scripts/version-table.mjs
# turns them into the README's "Supported Nix versions" table.
#
#   scripts/matrix.sh [RESULTS_DIR]     (default: a fresh temporary directory)
#
# Prints each pair's outcome and exits non-zero if any test failed.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")/.." || exit 1

results=${1:-$(mktemp -d /tmp/nix-offload-matrix-XXXX)}
mkdir -p "$results"

# shellcheck source=lab/lib.sh
source lab/lib.sh
# "runner builder scope" lines (lab/lib.sh lab_matrix): the host's own Nix (2.8 on Debian 12, 2.18 on Ubuntu 24.04)
# paired with 2.26 and 2.34; "full" is every lab test, "core" the offload, configure-only, multiplex and fault tests.
mapfile -t MATRIX < <(lab_matrix)
((${#MATRIX[@]})) || exit 1
# Which host the results come from, for the version table (scripts/version-table.mjs): "VERSION LABEL".
echo "$(host_nix) $(host_label)" >"$results/host.txt"
CORE=(__tests__/lab/offload.test.ts __tests__/lab/multiplex.test.ts __tests__/lab/preflight.test.ts __tests__/lab/store.test.ts)

status=0
for entry in "${MATRIX[@]}"; do
  read -r runner builder scope <<<"$entry"
  files=()
  [[ $scope == core ]] && files=("${CORE[@]}")
  echo "== lab tests: runner Nix $runner → builder Nix $builder ($scope)"
  out=$results/runner-$runner-builder-$builder-$scope.json
  LAB_RUNNER_NIX=$runner LAB_BUILDER_NIX=$builder npx vitest run --project lab \
    --reporter=default --reporter=json --outputFile.json="$out" "${files[@]}" || status=1
done
node scripts/version-table.mjs "$results"
exit "$status"
