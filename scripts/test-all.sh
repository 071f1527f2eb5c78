#!/usr/bin/env bash
# Every check and every test, on a fresh Debian machine, as root: installs what it needs (npm packages; nix-bin,
# openssh-server and sudo for the lab), starts the lab (a local nix-daemon, two builders behind sshd on 127.0.0.1),
# checks types, lint and that dist/ matches src/, then runs the unit and lab tests.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[[ $(id -u) -eq 0 ]] || { echo "run as root (the lab starts daemons and creates users)" >&2; exit 1; }

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
bash lab/up.sh

echo "== tests"
results=$(mktemp)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# The plain closing line CI reads, from vitest's own JSON results.
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)' "$results"
exit "$status"
