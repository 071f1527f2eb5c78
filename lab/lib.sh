# shellcheck shell=bash
# Shared helpers for the nix-offload test lab. Sourced by up.sh, down.sh,
# builder.sh and local-daemon.sh; not meant to be run on its own.

LAB_DIR=${LAB_DIR:-/var/lib/nix-offload-lab}
# Root filesystems of newer Debian releases, whose nix-bin is a newer Nix. Kept
# outside LAB_DIR, which is bind-mounted into them at the same path.
LAB_ROOTFS_DIR=${LAB_ROOTFS_DIR:-/var/lib/nix-offload-lab-rootfs}
# The host's distribution (ID in /etc/os-release: debian, ubuntu, ...).
# shellcheck disable=SC1091 # the host's file, not the repository's
LAB_HOST_OS=$(. /etc/os-release 2>/dev/null && echo "${ID:-unknown}") || LAB_HOST_OS=unknown
# The host's own Nix, major.minor from `nix --version` (Debian 12's nix-bin is
# 2.8, Ubuntu 24.04's 2.18); empty until nix-bin is installed, when
# ensure_packages reads it again. LAB_HOST_NIX in the environment overrides it
# (the unit tests use that to see the matrix of another host). No nix.conf is
# read: a test may leave one Nix refuses, and every lab script sources this.
detect_host_nix() {
  LAB_HOST_NIX=$(NIX_CONF_DIR=/nonexistent NIX_USER_CONF_FILES=/nonexistent nix --version 2>/dev/null |
    grep -oE '[0-9]+\.[0-9]+' | head -n 1) || LAB_HOST_NIX=
}
[[ -n ${LAB_HOST_NIX:-} ]] || detect_host_nix
# The Nix versions that run inside a root filesystem of the Debian release
# that ships them (lab/rootfs.sh), whatever the host.
LAB_ROOTFS_NIX_VERSIONS=(2.26 2.34)
# Builders a, b and c for each version: `a`/`b`/`c` on the host's Nix, `a-2.34`
# etc. The tests use a and b; c is for capturing logs by hand (scripts/) while
# tests run, since a fault injected into a or b would break a running test.
LAB_BUILDERS=(a b c a-2.26 b-2.26 c-2.26 a-2.34 b-2.34 c-2.34)
# Runners other than the host itself (whose runner is the host's own Nix).
# shellcheck disable=SC2034 # used by the scripts that source this file
LAB_ROOTFS_RUNNERS=("${LAB_ROOTFS_NIX_VERSIONS[@]}")
# shellcheck disable=SC2034 # used by the scripts that source this file
LAB_RUNNER_USER=runner
# shellcheck disable=SC2034
LAB_BUILDER_USER=nixbuilder
# A second builder account, trusted and authorised like nixbuilder, whose SSH
# sessions get a PATH without Nix: stands in for a builder where Nix is
# installed but not on the non-interactive PATH (e.g. only in a login profile).
# shellcheck disable=SC2034
LAB_NONIX_USER=nixnopath
# Builder accounts whose key may only run Nix, as NixOS's nix.sshServe makes
# them: an sshd `Match User` block with `ForceCommand nix-daemon --stdio`
# (protocol ssh-ng) or `ForceCommand nix-store --serve --write` (protocol ssh).
# shellcheck disable=SC2034
LAB_DAEMON_ONLY_USER=nixssh
# shellcheck disable=SC2034
LAB_SERVE_ONLY_USER=nixserve
# Every builder account, on every builder.
# shellcheck disable=SC2034
LAB_BUILDER_ACCOUNTS=("$LAB_BUILDER_USER" "$LAB_NONIX_USER" "$LAB_DAEMON_ONLY_USER" "$LAB_SERVE_ONLY_USER")

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
}

# The host's Nix version (see LAB_HOST_NIX above).
host_nix() {
  [[ -n ${LAB_HOST_NIX:-} ]] || die "no Nix on this host (nix --version failed): run lab/up.sh, which installs nix-bin"
  local version
  for version in "${LAB_ROOTFS_NIX_VERSIONS[@]}"; do
    [[ $LAB_HOST_NIX != "$version" ]] ||
      die "the host's own Nix is $LAB_HOST_NIX, which the lab also runs from a root filesystem; use a host with another Nix (e.g. Debian 12: 2.8, Ubuntu 24.04: 2.18)"
  done
  echo "$LAB_HOST_NIX"
}

# The host, as the version table names it: "Debian bookworm", "Ubuntu 24.04".
host_label() {
  # shellcheck disable=SC1091
  (
    . /etc/os-release 2>/dev/null || { echo "unknown host"; exit 0; }
    case ${ID:-} in
      debian) echo "Debian ${VERSION_CODENAME:-${VERSION_ID:-}}" ;;
      *) echo "${NAME:-${ID:-unknown}} ${VERSION_ID:-}" ;;
    esac
  )
}

# The Debian release whose nix-bin is Nix $1 ("host" for the host's own).
nix_suite() {
  case $1 in
    2.26) echo trixie ;;
    2.34) echo sid ;;
    *)
      [[ $1 == "$(host_nix)" ]] || die "unknown Nix version '$1' (known: $(host_nix) ${LAB_ROOTFS_NIX_VERSIONS[*]})"
      echo host
      ;;
  esac
}

# The runner x builder pairs the lab tests run on (scripts/matrix.sh), one
# "RUNNER BUILDER SCOPE" a line; "full" is every lab test, "core" the offload,
# configure-only, multiplex and fault tests. The host's Nix is one of them.
lab_matrix() {
  local host
  host=$(host_nix) || return 1
  printf '%s\n' \
    "$host $host full" \
    "2.34 2.34 full" \
    "2.26 2.26 full" \
    "2.34 $host core" \
    "$host 2.34 core" \
    "2.26 2.34 core" \
    "2.34 2.26 core"
}

# The root filesystem that runs Nix $1; empty for the host's own Nix.
rootfs_of() {
  [[ $(nix_suite "$1") == host ]] && return 0
  echo "$LAB_ROOTFS_DIR/$(nix_suite "$1")"
}

# The Nix version of builder $1: `a` and `b` run the host's, `a-2.34` 2.34.
builder_version() {
  case $1 in
    a | b | c) host_nix ;;
    a-* | b-* | c-*) nix_suite "${1#?-}" >/dev/null && echo "${1#?-}" ;;
    *) die "unknown builder '$1' (known: ${LAB_BUILDERS[*]})" ;;
  esac
}

builder_port() {
  local version base
  version=$(builder_version "$1")
  case ${1%%-*} in a) base=1 ;; b) base=2 ;; c) base=3 ;; esac
  # 2201-2203 on the host's Nix (whichever it is), 2211-2213 on 2.26, 2221-2223 on 2.34.
  case $version in
    2.26) echo $((2210 + base)) ;;
    2.34) echo $((2220 + base)) ;;
    *) echo $((2200 + base)) ;;
  esac
}

builder_features() {
  case ${1%%-*} in
    a) echo "benchmark big-parallel lab-a" ;;
    b) echo "benchmark lab-b" ;;
    c) echo "benchmark lab-c" ;;
    *) die "unknown builder '$1'" ;;
  esac
}

# Every store on the host gets its own build-user group and uid range: a
# nix-daemon SIGKILLs every process of a build uid before it uses that uid, so
# two daemons sharing uids kill each other's builds ("signal 9"). The `nixbld`
# uids that the distribution's nix-setup-systemd makes are system uids, which
# the root filesystems reuse for their own accounts, so no daemon uses them
# (`STORE` is a builder name or `runner-VERSION`; `runner-host` in the list
# below stands for the host's runner, `runner-2.8` on Debian 12).
LAB_STORES=(a b a-2.26 b-2.26 a-2.34 b-2.34 runner-2.26 runner-2.34 c c-2.26 c-2.34 runner-host)
LAB_BUILD_USERS=8
build_group() { echo "nixbld-${1//./}"; }
build_uid_base() {
  local i store=$1
  [[ $store == runner-* && $store != runner-host && $(nix_suite "${store#runner-}") == host ]] && store=runner-host
  for i in "${!LAB_STORES[@]}"; do
    [[ ${LAB_STORES[$i]} == "$store" ]] && { echo $((30000 + 100 * (i + 1))); return 0; }
  done
  die "unknown store '$1'"
}

# ensure_build_users STORE [ROOT]: the build group of STORE and its users, in
# the user database of ROOT (a root filesystem) or of the host.
ensure_build_users() {
  local store=$1 root=${2:-} group base i names=() chroot_cmd=()
  group=$(build_group "$store")
  base=$(build_uid_base "$store")
  [[ -n $root ]] && chroot_cmd=(chroot "$root")
  if ! "${chroot_cmd[@]}" getent group "$group" >/dev/null; then
    "${chroot_cmd[@]}" groupadd -g "$base" "$group"
  fi
  for ((i = 1; i <= LAB_BUILD_USERS; i++)); do
    names+=("$group-$i")
    "${chroot_cmd[@]}" getent passwd "$group-$i" >/dev/null && continue
    "${chroot_cmd[@]}" useradd -u $((base + i)) -g "$group" -G "$group" -M -d /var/empty \
      -s /usr/sbin/nologin -c "Nix build user $i of $store" "$group-$i"
  done
}

# /dev/tcp avoids depending on nc/ss being installed.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# stop_nix_daemon PID: ends a nix-daemon listener and the children serving its
# connections. Each connection is served by a forked child that calls
# setsid(), so killing the listener (or its process group) leaves in-flight
# connections running with the old settings; end them too.
stop_nix_daemon() {
  local pid=$1 kids n
  mapfile -t kids < <(awk -v p="$pid" '$1 == "PPid:" && $2 == p { split(FILENAME, a, "/"); print a[3] }' /proc/[0-9]*/status 2>/dev/null)
  kill -TERM "$pid" "${kids[@]}" 2>/dev/null || true
  for ((n = 0; n < 50; n++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" "${kids[@]}" 2>/dev/null || true
}

# True if $1 is a live process whose command line contains $2. Guards every
# pidfile read against a stale file whose pid was reused by something else.
pid_alive_as() {
  local pid=$1 want=$2 cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr "\\0" " " 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *"$want"* ]]
}

read_pidfile() {
  if [[ -r $1 ]]; then head -n1 "$1" 2>/dev/null || true; fi
}

wait_until() { # wait_until TENTHS_OF_SECONDS CMD... -> 0 once CMD succeeds
  local n=$1; shift
  while ((n-- > 0)); do
    "$@" && return 0
    sleep 0.1
  done
  "$@"
}

# All pids living in builder $1's mount namespace. A builder is recognised by
# what is mounted on /nix in a namespace (its private nix/ directory), not by
# a process name: every builder and the host run processes called nix-daemon
# and sshd, and sshd/nix-daemon children call setsid(), so neither process
# names nor process groups single out one builder. Namespace inode numbers can
# be reused once a namespace dies, which is why we do not trust a saved one.
builder_pids() {
  local want="/nix-offload-lab/builders/$1/nix" self path ns pid
  self=$(readlink /proc/self/ns/mnt)
  # Only this PID namespace's processes: a lab in a container on this machine (scripts/ci-in-container.sh) has
  # builders at the same paths, and stopping one here must not stop its namesake there.
  local self_pid_ns
  self_pid_ns=$(readlink /proc/self/ns/pid)
  local -A verdict=()
  # One find for all pids: forking a readlink per process is slow here.
  while read -r path ns; do
    pid=${path#/proc/}
    pid=${pid%%/*}
    [[ -z $ns || $ns == "$self" ]] && continue # kernel threads have no link
    if [[ -z ${verdict[$ns]+x} ]]; then
      local pid_ns
      pid_ns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null) || continue
      if [[ $pid_ns != "$self_pid_ns" ]]; then
        verdict[$ns]=0
        continue
      fi
      # Field 4 is the mount's root inside its filesystem, field 5 its mount point.
      # A builder of a newer Nix has it on its root filesystem's /nix, which
      # its chrooted processes see as /nix and its holder by the full path.
      if awk -v w="$want" -v r="$LAB_ROOTFS_DIR/" '($5 == "/nix" || (index($5, r) == 1 && $5 ~ /\/nix$/)) && length($4) >= length(w) && substr($4, length($4) - length(w) + 1) == w { f = 1 } END { exit !f }' \
        "/proc/$pid/mountinfo" 2>/dev/null; then
        verdict[$ns]=1
      elif [[ -r /proc/$pid/mountinfo ]]; then
        verdict[$ns]=0
      else
        continue # process vanished mid-scan; decide on another member
      fi
    fi
    [[ ${verdict[$ns]} == 1 ]] && echo "$pid"
  done < <(find /proc/[0-9]*/ns/mnt -maxdepth 0 -printf '%p %l\n' 2>/dev/null)
  return 0
}

# True if the mountinfo file $1 shows one of the lab builders' stores on /nix.
on_builder_nix() {
  awk -v r="$LAB_ROOTFS_DIR/" '($5 == "/nix" || (index($5, r) == 1 && $5 ~ /\/nix$/)) && $4 ~ /nix-offload-lab\/builders\/[^\/]+\/nix$/ { f = 1 } END { exit !f }' "$1" 2>/dev/null
}

# Debian's nix-bin puts everything in /usr/bin; the runner image may not.
# mmdebstrap makes the root filesystems of the newer Nix versions. On a host
# that is not Debian (Ubuntu), mmdebstrap needs Debian's archive keyring to
# check the Debian suites it fetches, and nix-bin is in Ubuntu's universe.
ensure_packages() {
  local missing=()
  command -v nix-daemon >/dev/null 2>&1 || missing+=(nix-bin)
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v sudo >/dev/null 2>&1 || missing+=(sudo)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  # @actions/cache keys an entry to its compression too: the canary test seeds a history from the host that a runner
  # in a root filesystem (which has zstd, as GitHub's runners do) must find.
  command -v zstd >/dev/null 2>&1 || missing+=(zstd)
  if [[ $LAB_HOST_OS != debian && ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    missing+=(debian-archive-keyring)
  fi
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  if [[ $LAB_HOST_OS == ubuntu ]] && ! apt-cache show nix-bin >/dev/null 2>&1; then
    log "enabling Ubuntu's universe component (nix-bin, debian-archive-keyring)"
    add-apt-repository -y universe >/dev/null || die "could not enable universe: enable it, then re-run"
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  detect_host_nix
}

# nix-bin recommends nix-setup-systemd, which starts nix-daemon.socket and
# nix-daemon.service where systemd runs (a GitHub-hosted Ubuntu runner, unlike
# a container): the lab runs the host's daemon itself (lab/local-daemon.sh,
# with the lab's nix.conf), so systemd's are stopped. Until the next boot only.
stop_system_nix_daemon() {
  [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1 || return 0
  local unit
  for unit in nix-daemon.socket nix-daemon.service; do
    if systemctl is-active --quiet "$unit"; then
      log "stopping systemd's $unit (the lab runs its own nix-daemon)"
      systemctl stop "$unit" || die "systemctl stop $unit failed"
    fi
  done
}

# The Debian mirror for the root filesystems: on Debian, the one apt already
# uses (the machine may reach no other); elsewhere (Ubuntu), Debian's own.
debian_mirror() {
  local uri=
  if [[ $LAB_HOST_OS == debian ]]; then
    uri=$(grep -hsoE '^(URIs:|deb)\s+https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
      head -n 1 | awk '{print $2}')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
