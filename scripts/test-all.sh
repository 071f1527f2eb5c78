#!/usr/bin/env bash
# Every check and every test, on a fresh Debian 12 or Ubuntu 24.04 machine, as root: installs what it needs (npm
# packages; nix-bin, openssh-server, sudo, mmdebstrap and zstd for the lab, and debian-archive-keyring on Ubuntu),
# starts the lab (runners and builders on the host's own Nix, 2.8 on Debian 12 or 2.18 on Ubuntu 24.04, and on 2.26
# and 2.34, builders behind sshd on 127.0.0.1), checks types, lint and that dist/ matches src/, then runs the unit
# tests and the lab tests on every pair of Nix versions in scripts/matrix.sh.
#
#   bash scripts/test-all.sh            keeps the lab's users, keys and stores from an earlier run, but starts every
#                                       daemon anew with this checkout's scripts
#   bash scripts/test-all.sh --purge    first removes the whole lab (lab/down.sh --purge): a run from nothing, as on
#                                       a machine that never ran the suite
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[[ $(id -u) -eq 0 ]] || { echo "run as root (the lab starts daemons and creates users)" >&2; exit 1; }
purge=0
case ${1:-} in
  '') ;;
  --purge) purge=1 ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

# shellcheck source=scripts/ensure-node.sh
source scripts/ensure-node.sh
ensure_node

echo "== typecheck, lint, format"
npm run --silent typecheck
npm run --silent lint

echo "== dist/ is the bundle of src/"
npm run --silent bundle >/dev/null
if [[ -d .git ]] && ! git diff --quiet --exit-code -- dist; then
  git --no-pager diff --stat -- dist
  echo "dist/ differs from a fresh bundle of src/: run 'npm run bundle' and commit dist/" >&2
  exit 1
fi
if [[ -d .git ]] && [[ -n $(git status --porcelain -- dist) ]]; then
  git status --porcelain -- dist
  echo "dist/ has files a fresh bundle does not (or the reverse): run 'npm run bundle' and commit dist/" >&2
  exit 1
fi

echo "== lab"
# A daemon left running by an earlier run may have been started by other scripts than this checkout's: stop them all,
# so that up.sh starts each one as the tests expect.
if ((purge)); then bash lab/down.sh --purge; elif [[ -f /var/lib/nix-offload-lab/lab.json ]]; then bash lab/down.sh; fi
bash lab/up.sh

echo "== unit tests"
results=$(mktemp -d /tmp/nix-offload-results-XXXX)
status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json" || status=1

echo "== lab tests, on every pair of Nix versions in the matrix"
bash scripts/matrix.sh "$results/matrix" || status=1
node scripts/version-table.mjs "$results/matrix" --check || status=1

# The plain closing line CI reads, from vitest's own JSON results of every run above.
node -e 'const fs = require("fs"), path = require("path");
  const files = [process.argv[1], ...fs.readdirSync(process.argv[2]).map(f => path.join(process.argv[2], f))];
  const t = { passed: 0, failed: 0, skipped: 0 };
  for (const f of files.filter(f => f.endsWith(".json"))) {
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    t.passed += r.numPassedTests; t.failed += r.numFailedTests; t.skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`)' "$results/unit.json" "$results/matrix"
exit "$status"
