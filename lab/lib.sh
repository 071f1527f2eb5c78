# shellcheck shell=bash
# Shared helpers for the nix-offload test lab. Sourced by up.sh, down.sh,
# builder.sh and local-daemon.sh; not meant to be run on its own.

LAB_DIR=${LAB_DIR:-/var/lib/nix-offload-lab}
LAB_BUILDERS=(a b)
# shellcheck disable=SC2034 # used by the scripts that source this file
LAB_RUNNER_USER=runner
# shellcheck disable=SC2034
LAB_BUILDER_USER=nixbuilder
# A second builder account, trusted and authorised like nixbuilder, whose SSH
# sessions get a PATH without Nix: stands in for a builder where Nix is
# installed but not on the non-interactive PATH (e.g. only in a login profile).
# shellcheck disable=SC2034
LAB_NONIX_USER=nixnopath

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
}

builder_port() {
  case $1 in
    a) echo 2201 ;;
    b) echo 2202 ;;
    *) die "unknown builder '$1' (known: ${LAB_BUILDERS[*]})" ;;
  esac
}

builder_features() {
  case $1 in
    a) echo "benchmark big-parallel lab-a" ;;
    b) echo "benchmark lab-b" ;;
    *) die "unknown builder '$1'" ;;
  esac
}

# /dev/tcp avoids depending on nc/ss being installed.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
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
  local -A verdict=()
  # One find for all pids: forking a readlink per process is slow here.
  while read -r path ns; do
    pid=${path#/proc/}
    pid=${pid%%/*}
    [[ -z $ns || $ns == "$self" ]] && continue # kernel threads have no link
    if [[ -z ${verdict[$ns]+x} ]]; then
      # Field 4 is the mount's root inside its filesystem, field 5 its mount point.
      if awk -v w="$want" '$5 == "/nix" && length($4) >= length(w) && substr($4, length($4) - length(w) + 1) == w { f = 1 } END { exit !f }' \
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
  awk '$5 == "/nix" && $4 ~ /nix-offload-lab\/builders\/[^\/]+\/nix$/ { f = 1 } END { exit !f }' "$1" 2>/dev/null
}

# Debian's nix-bin puts everything in /usr/bin; the runner image may not.
ensure_packages() {
  local missing=()
  command -v nix-daemon >/dev/null 2>&1 || missing+=(nix-bin)
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v sudo >/dev/null 2>&1 || missing+=(sudo)
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin openssh-server sudo >/dev/null
}
