#!/usr/bin/env bash
# The test-all job of .github/workflows/ci.yml, on this machine, the way GitHub runs it: as root in a privileged
# container of a fresh Debian 12, with a clone of this checkout's HEAD as its workspace. Run it as root on a Debian
# machine that ran `npm ci` (it reads ci.yml with the yaml package):
#
#   bash scripts/ci-in-container.sh                         the whole job; the README's test command runs inside
#   CI_IN_CONTAINER_DRY=1 bash scripts/ci-in-container.sh   every step but the last (the test command), then what
#                                                           test-all.sh does before its lab: Node.js, npm ci, and
#                                                           the git commands of its dist/ check
#
# The job's steps are read from ci.yml (scripts/ci-job.mjs), so the two never drift apart. Each `run:` step runs as the
# runner runs it in a container job: its script in a file under the job's temp directory, `bash -e FILE`, from the
# workspace, with the runner's variables and the PATH that earlier steps added. The `uses:` steps are emulated:
# actions/checkout by a shallow clone of HEAD into the workspace (whose directory, as on GitHub, belongs to the
# runner's user outside the container), actions/setup-node by this machine's Node.js and npm laid out as a Node.js
# release in the tool cache (its version, not the workflow's `node-version`).
#
# The container: a root filesystem made with mmdebstrap (minbase, the variant docker's debian:12 is made with), from
# the Debian mirror lab/rootfs.sh uses; its own PID namespace, so that the lab's pkill and lab/down.sh inside reach no
# process outside and the container's end ends every process in it; its own network namespace, so that the lab's
# ports on 127.0.0.1 never meet those of a lab on this machine, reaching the network through slirp4netns (the
# machine's loopback is not reachable from inside); its own mount, UTS and IPC namespaces, with /proc, /sys and /dev
# as a privileged container has them. The root filesystem becomes `/` by pivot_root, not chroot: the kernel refuses
# a chrooted process a user namespace. This machine's CA certificates from /usr/local/share/ca-certificates and its
# npm global config go in too, since they are how it reaches the package registries; proxy variables are passed on.
# Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
repo=$PWD
# shellcheck source=lab/lib.sh
source lab/lib.sh
die() { echo "ci-in-container: $*" >&2; exit 1; }
say() { echo "━━ $*"; }
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap, namespaces, mounts)"
[[ $# -eq 0 ]] || die "usage: [CI_IN_CONTAINER_DRY=1] $0"
dry=${CI_IN_CONTAINER_DRY:-0}

workflow=.github/workflows/ci.yml
job=test-all
# A container job's layout, as the runner mounts it into the container.
workspace=/__w/nix-offload/nix-offload
temp=/__w/_temp
home=/github/home
toolcache=/__t
# debian:12's PATH.
image_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The runner's user on a GitHub-hosted runner, which owns the workspace directory outside the container.
runner_uid=1001

missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v slirp4netns >/dev/null || missing+=(slirp4netns)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/ci-in-container-XXXX)
root=$work/root
init=
slirp=
cleanup() {
  # PID 1's end ends every process of its PID namespace, and the last of them takes its mounts along.
  if [[ -n $init ]]; then kill -KILL "$init" 2>/dev/null || true; fi
  if [[ -n $slirp ]]; then kill "$slirp" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

say "$workflow, job $job"
node scripts/ci-job.mjs "$workflow" "$job" "$work/job"
[[ $(<"$work/job/image") == debian:12 ]] || die "job $job runs in $(<"$work/job/image"); this script makes debian:12"
[[ " $(<"$work/job/options") " == *" --privileged "* ]] || die "job $job's container is not --privileged"
mapfile -t steps <"$work/job/steps"
last=${#steps[@]}
[[ ${steps[last - 1]} == run$'\t'* ]] || die "the last step of job $job is not a run: step (the test command)"

say "a Debian 12 root filesystem (mmdebstrap, minbase)"
mirror=$(debian_mirror)
security=$(grep -hsoE '^(URIs:|deb)\s+https?://[^ ]+/debian-security/?( |$)' /etc/apt/sources.list \
  /etc/apt/sources.list.d/* 2>/dev/null | head -n 1 | awk '{print $2}') || true
# Check-Valid-Until, as in lab/rootfs.sh: the mirror's Release files may read as expired against this machine's clock.
mmdebstrap --quiet --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb ${security:-http://deb.debian.org/debian-security} bookworm-security main" >"$work/mmdebstrap.log" 2>&1 ||
  { tail -n 20 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed"; }

hostname=ci-in-container
echo "$hostname" >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n10.0.2.100 %s\n' "$hostname" >"$root/etc/hosts"
# slirp4netns's DNS, which asks this machine's resolver.
echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
install -d "$root$temp/_runner_file_commands" "$root$home" "$root$toolcache"
install -d -o "$runner_uid" "$root$workspace"
file_commands=$temp/_runner_file_commands
touch "$root$file_commands"/{add_path,set_env,set_output,step_summary}

say "the container"
# shellcheck disable=SC2016 # expanded by the inner bash
setsid unshare --pid --fork --kill-child --net --mount --uts --ipc -- bash -c '
  set -eu
  root=$1
  ip link set lo up
  hostname "$2"
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
  cd "$root"
  mkdir .host
  pivot_root . .host
  umount -l /.host
  rmdir /.host
  # PID 1 as in a container job: the runner starts its containers with this command.
  exec chroot . tail -f /dev/null
' ci-in-container "$root" "$hostname" </dev/null >"$work/container.log" 2>&1 &
holder=$!
for ((i = 0; i < 100; i++)); do
  init=$(cat "/proc/$holder/task/$holder/children" 2>/dev/null) || true
  init=${init%% *}
  [[ -n $init && $(cat "/proc/$init/comm" 2>/dev/null) == tail ]] && break
  init=
  sleep 0.1
done
[[ -n $init ]] || { cat "$work/container.log" >&2; die "the container did not start"; }
slirp4netns --configure --mtu=65520 --disable-host-loopback "$init" tap0 >"$work/slirp4netns.log" 2>&1 &
slirp=$!
for ((i = 0; i < 100; i++)); do
  nsenter --target "$init" --net ip -4 -o addr show tap0 2>/dev/null | grep -q 'inet ' && break
  sleep 0.1
done
((i < 100)) || { cat "$work/slirp4netns.log" >&2; die "slirp4netns did not configure the container's network"; }

step_env=(HOME="$home" CI=true GITHUB_ACTIONS=true GITHUB_WORKSPACE="$workspace" RUNNER_OS=Linux RUNNER_TEMP="$temp"
  RUNNER_TOOL_CACHE="$toolcache" GITHUB_PATH="$file_commands/add_path" GITHUB_ENV="$file_commands/set_env"
  GITHUB_OUTPUT="$file_commands/set_output" GITHUB_STEP_SUMMARY="$file_commands/step_summary")
for name in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [[ -z ${!name:-} ]] || step_env+=("$name=${!name}")
done
path=$image_path

# COMMAND… in the container, as docker exec runs a step there.
in_container() {
  nsenter --target "$init" --mount --uts --ipc --net --pid --root \
    env -i -C "$workspace" "${step_env[@]}" "PATH=$path" "$@" </dev/null
}

checkout() {
  local head
  head=$(git rev-parse HEAD)
  [[ -z $(git status --porcelain --untracked-files=no) ]] ||
    echo "   (uncommitted changes of $repo are not in the workspace: it is a clone of HEAD $head)"
  git clone --quiet --no-local --depth 1 "file://$repo" "$root$workspace"
  [[ $(git -c safe.directory="$root$workspace" -C "$root$workspace" rev-parse HEAD) == "$head" ]] ||
    die "the clone is not at HEAD $head"
}

setup_node() {
  local version prefix npm
  version=$(node -p 'process.versions.node')
  prefix=$toolcache/node/$version/x64
  npm=$(readlink -f "$(npm root -g)/npm")
  echo "   this machine's Node.js $version, in $prefix"
  install -D -m 0755 "$(readlink -f "$(command -v node)")" "$root$prefix/bin/node"
  mkdir -p "$root$prefix/lib/node_modules"
  cp -a "$npm" "$root$prefix/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root$prefix/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root$prefix/bin/npx"
  local globalconfig
  globalconfig=$(npm config get globalconfig)
  if [[ -f $globalconfig ]]; then install -D -m 0644 "$globalconfig" "$root$prefix/etc/npmrc"; fi
  echo "$prefix/bin" >>"$root$file_commands/add_path"
}

# What test-all.sh does before it starts the lab.
# shellcheck disable=SC2016 # expanded in the container
dry_run='source scripts/ensure-node.sh
ensure_node
echo "node $(node --version), npm $(npm --version)"
git status --porcelain -- dist
git diff --quiet --exit-code -- dist
echo "git reads the workspace; dist/ is as committed"'

for ((n = 1; n <= last; n++)); do
  IFS=$'\t' read -r kind _ name action <<<"${steps[n - 1]}"
  say "step $n of $last: $name"
  case $kind in
    run)
      if ((n == last)) && [[ $dry == 1 ]]; then
        echo "   CI_IN_CONTAINER_DRY=1: not run; instead, what test-all.sh does before its lab"
        printf '%s\n' "$dry_run" >"$root$temp/$n.sh"
      else
        install -m 0644 "$work/job/$n.sh" "$root$temp/$n.sh"
      fi
      in_container bash -e "$temp/$n.sh" || die "step $n ($name) failed"
      ;;
    uses)
      case $action in
        actions/checkout@*) checkout ;;
        actions/setup-node@*) setup_node ;;
        *) die "step $n uses $action, which this script does not emulate" ;;
      esac
      ;;
  esac
  # The runner's file commands: GITHUB_PATH's directories go first in PATH from the next step on.
  while read -r dir; do [[ -z $dir ]] || path=$dir:$path; done <"$root$file_commands/add_path"
  : >"$root$file_commands/add_path"
  [[ ! -s $root$file_commands/set_env ]] || die "step $n wrote GITHUB_ENV, which this script does not honour"
done
say "job $job passed$([[ $dry == 1 ]] && echo ' (CI_IN_CONTAINER_DRY=1: the test command was not run)')"
