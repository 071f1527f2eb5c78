#!/usr/bin/env bash
# npm run bundle: src/ → dist/ with ncc, one bundle per entry point (main, the canary action's, post, and the agent),
# with the licence files.
#
# ssh2 ships pagent.exe, a Windows program that its Pageant agent support starts, and ncc copies it beside every
# bundle that contains ssh2's agent code. The action runs only on Linux and macOS runners, where that code never
# starts it (ssh2 uses Pageant on Windows only), so the copies are removed: dist/ carries no Windows binary.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

ncc=node_modules/.bin/ncc
[[ -x $ncc ]] || {
  echo "bundle: $ncc is missing: run npm ci first" >&2
  exit 1
}

rm -rf dist
"$ncc" build src/main.ts -o dist/main --license licenses.txt
"$ncc" build src/canary-main.ts -o dist/canary --license licenses.txt
"$ncc" build src/post.ts -o dist/post --license licenses.txt
"$ncc" build src/agent/main.ts -o dist/agent --license licenses.txt
node scripts/licenses.mjs dist/canary/licenses.txt
rm -f dist/*/pagent.exe
