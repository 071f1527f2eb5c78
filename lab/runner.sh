#!/usr/bin/env bash
# The lab's runner of Nix VERSION: its nix-daemon, and a way to run commands on
# it. The host's own Nix (2.8 on Debian 12, 2.18 on Ubuntu 24.04) is the host
# itself (lab/local-daemon.sh). 2.26 and 2.34 run from a root filesystem
# (lab/rootfs.sh): its nix-daemon runs chrooted there, in a private mount
# namespace that has /proc and /dev, and `exec` runs a command in that
# namespace and root, so the runner user, sudo, Node and the action all see
# the runner's own /nix, /etc/nix and /root.
#
#   lab/runner.sh VERSION start|stop|restart|status
#   lab/runner.sh VERSION exec COMMAND [ARG...]
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lab/lib.sh
source "$HERE/lib.sh"

usage() { echo "usage: $0 VERSION start|stop|restart|status|exec COMMAND..." >&2; exit 2; }
[[ $# -ge 2 ]] || usage
version=$1 cmd=$2
shift 2
root=$(rootfs_of "$version")
if [[ -z $root ]]; then
  case $cmd in
    exec) exec "$@" ;;
    *) exec "$HERE/local-daemon.sh" "$cmd" ;;
  esac
fi

dir=$LAB_DIR/runners/$version
holder_pidfile=$dir/holder.pid
daemon_pidfile=$dir/nix-daemon.pid
socket=$root/nix/var/nix/daemon-socket/socket

holder_pid() {
  local pid
  pid=$(read_pidfile "$holder_pidfile")
  pid_alive_as "$pid" "nix-offload-lab-runner-$version" && echo "$pid"
}

daemon_pid() {
  local pid
  pid=$(read_pidfile "$daemon_pidfile")
  pid_alive_as "$pid" "nix-daemon --daemon" && echo "$pid"
}

runner_status() {
  local holder daemon
  if holder=$(holder_pid) && daemon=$(daemon_pid) && [[ -S $socket ]]; then
    echo "runner $version: running (holder=$holder, nix-daemon=$daemon, root $root)"
    return 0
  fi
  echo "runner $version: not running"
  return 1
}

# Runs "$@" in the runner's namespace and root filesystem.
in_runner() {
  local holder
  holder=$(holder_pid) || die "runner $version is not running: lab/runner.sh $version start"
  exec nsenter --target "$holder" --mount /usr/sbin/chroot "$root" "$@"
}

daemon_stop() {
  local pid
  if pid=$(daemon_pid); then stop_nix_daemon "$pid"; fi
  rm -f "$daemon_pidfile"
}

daemon_start() {
  local holder
  holder=$(holder_pid) || die "runner $version has no namespace"
  # root:nix-users 0770, as Debian ships it: the group is what lets `runner` reach the daemon.
  install -d -m 0770 "$root/nix/var/nix/daemon-socket"
  chroot "$root" chgrp nix-users /nix/var/nix/daemon-socket
  rm -f "$socket"
  setsid nohup nsenter --target "$holder" --mount chroot "$root" nix-daemon --daemon \
    >>"$dir/nix-daemon.log" 2>&1 </dev/null &
  echo $! >"$daemon_pidfile"
  wait_until 100 test -S "$socket" || { tail -n 5 "$dir/nix-daemon.log" >&2; die "runner $version: nix-daemon did not come up"; }
}

runner_start() {
  [[ -f $root/.lab-ready ]] || die "runner $version: no root filesystem (lab/rootfs.sh $version)"
  mkdir -p "$dir"
  if ! holder_pid >/dev/null; then
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid nohup unshare -m --propagation private /bin/bash -c '
      set -eu
      root=$1 dir=$2
      mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
      mount --rbind /dev "$root/dev"
      echo $$ >"$dir/holder.pid"
      sleep infinity &
      wait
    ' "nix-offload-lab-runner-$version" "$root" "$dir" >>"$dir/holder.log" 2>&1 </dev/null &
    wait_until 50 holder_pid >/dev/null || die "runner $version: namespace holder did not start"
  fi
  daemon_pid >/dev/null && [[ -S $socket ]] || daemon_start
  runner_status
}

runner_stop() {
  local holder
  daemon_stop
  # The holder leads its own process group (setsid): end it with its sleep.
  if holder=$(holder_pid); then kill -TERM -- "-$holder" 2>/dev/null || true; fi
  rm -f "$holder_pidfile"
  echo "runner $version: stopped"
}

case $cmd in
  start) require_root; runner_start ;;
  stop) require_root; runner_stop ;;
  restart) require_root; daemon_stop; runner_start ;;
  status) runner_status ;;
  exec) [[ $# -ge 1 ]] || usage; in_runner "$@" ;;
  *) usage ;;
esac
