#!/usr/bin/env bash
# The lab tests on every runner × builder pair of Nix versions in the matrix
# below (the lab must be up: lab/up.sh). Each pair's vitest JSON results go to
# RESULTS_DIR; scripts/version-table.mjs turns them into the README's
# "Supported Nix versions" table.
#
#   scripts/matrix.sh [RESULTS_DIR]     (default: a fresh temporary directory)
#
# Prints each pair's outcome and exits non-zero if any test failed.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

results=${1:-$(mktemp -d /tmp/nix-offload-matrix-XXXX)}
mkdir -p "$results"

# runner builder scope; "full" is every lab test, "core" the offload, configure-only, multiplex and fault tests.
MATRIX=(
  "2.8 2.8 full"
  "2.34 2.34 full"
  "2.26 2.26 full"
  "2.34 2.8 core"
  "2.8 2.34 core"
  "2.26 2.34 core"
  "2.34 2.26 core"
)
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
