#!/usr/bin/env bash
# The demo, on a fresh Debian machine, as root: brings up a throwaway local builder (the lab), then runs the bundled
# action exactly as the Actions runner would (as the non-root user `runner`, inputs in INPUT_* variables, the GITHUB_*
# files), offloading a derivation nobody has built before, and shows Nix's own proof of where it ran. Then the post step.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[[ $(id -u) -eq 0 ]] || { echo "run as root (the lab starts daemons and creates users)" >&2; exit 1; }
# shellcheck source=scripts/ensure-node.sh
source scripts/ensure-node.sh
ensure_node >/dev/null
bash lab/up.sh >/dev/null
lab=/var/lib/nix-offload-lab
field() { node -e "const l=require('$lab/lab.json'); console.log($1)"; }

repo=$PWD
step=$(mktemp -d /tmp/nix-offload-demo-XXXX)
touch "$step"/{output,state,env,summary}
nonce=$(date +%s)-$RANDOM
system=$(field l.localSystem)
cat >"$step/default.nix" <<NIX
{ nonce, system }: {
  hello = builtins.derivation {
    name = "nix-offload-demo-\${nonce}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo 'hello from the builder'; echo \${nonce} > \$out" ];
  };
}
NIX
chown -R runner "$step"

# The primary group by number: on a GitHub-hosted runner it is `docker`, not `runner`.
as_runner=(setpriv --reuid runner --regid "$(id -g runner)" --init-groups)
runner_env=(PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/runner USER=runner RUNNER_TEMP="$step"
  GITHUB_OUTPUT="$step/output" GITHUB_STATE="$step/state" GITHUB_ENV="$step/env" GITHUB_STEP_SUMMARY="$step/summary")

echo "━━ nix-offload main step (as runner, builder a = $(field 'l.builders[0].user+"@"+l.builders[0].host+":"+l.builders[0].port'))"
(cd "$step" && env -i "${runner_env[@]}" \
  INPUT_HOST="$(field 'l.builders[0].host')" INPUT_PORT="$(field 'l.builders[0].port')" \
  INPUT_USER="$(field 'l.builders[0].user')" "INPUT_SSH-PRIVATE-KEY=$(cat $lab/client_key)" \
  "INPUT_HOST-PUBLIC-KEY=$(field 'l.builders[0].hostPublicKey')" \
  "INPUT_ARGS=-f $step/default.nix --argstr nonce $nonce --argstr system $system" INPUT_INSTALLABLES=hello \
  "${as_runner[@]}" node "$repo/dist/main/index.js") | grep -v '^::add-mask::' | sed 's/^/  │ /'

value() { node -e "
  const t=require('fs').readFileSync('$step/$1','utf8'); const m=[...t.matchAll(/^([^<\n]+)<<(.+)\n([\s\S]*?)\n\2$/gm)];
  const v={}; for (const x of m) v[x[1]]=x[3]; console.log(v['$2'] ?? '')"; }
out=$(value output out-paths)
echo
echo "━━ outputs: confirmed=$(value output confirmed) remote-builds=$(value output remote-builds) local-builds=$(value output local-builds)"
echo "   out-paths: $out"
echo "━━ proof, from the report ($(value output report)):"
node -e "const r=require('$(value output report)'); for (const d of r.derivations) console.log('   '+d.name+'  built on '+(d.builder??d.machine)+' ('+d.machine+') in '+d.durationMs+' ms, '+d.status)"
echo "━━ the output in builder a's own store: $(ls -d "$(field 'l.builders[0].storeDir')/$(basename "$out")" 2>/dev/null || echo MISSING)"
echo "━━ the job summary:"
sed 's/^/  │ /' "$step/summary"

echo "━━ nix-offload post step"
journal=$(value state journal)
(cd "$step" && env -i "${runner_env[@]}" "STATE_journal=$journal" "${as_runner[@]}" node "$repo/dist/post/index.js") | sed 's/^/  │ /'
echo "━━ root's ~/.ssh after the post step: $(ls -A /root/.ssh 2>/dev/null || echo 'gone (it did not exist before)')"
