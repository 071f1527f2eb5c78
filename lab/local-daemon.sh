#!/usr/bin/env bash
# Start, stop, restart or inspect the lab's local (host) nix-daemon. There is
# no systemd here, so this stands in for `systemctl restart nix-daemon`, e.g.
# after a test edits /etc/nix/nix.conf (the daemon reads it only at start).
#
#   lab/local-daemon.sh start|stop|restart|status
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

PIDFILE=$LAB_DIR/local-daemon.pid
LOGFILE=$LAB_DIR/local-daemon.log
SOCKET=/nix/var/nix/daemon-socket/socket

usage() { echo "usage: $0 start|stop|restart|status" >&2; exit 2; }

# The host daemon must see the host's /nix; started from inside a builder's
# namespace it would serve that builder's store instead.
require_host_ns() {
  if on_builder_nix /proc/self/mountinfo; then
    die "running inside a builder's mount namespace; run from the host"
  fi
}

daemon_pid() {
  local pid
  pid=$(read_pidfile "$PIDFILE")
  pid_alive_as "$pid" "nix-daemon --daemon" || return 1
  # nix-daemon moves itself into a mount namespace of its own (a copy of its
  # parent's), so compare what it has on /nix rather than namespace ids. The
  # file is unreadable for non-root callers: then trust pidfile + command line.
  if [[ -r /proc/$pid/mountinfo ]] && on_builder_nix "/proc/$pid/mountinfo"; then
    return 1
  fi
  echo "$pid"
}

daemon_status() {
  local pid
  if pid=$(daemon_pid) && [[ -S $SOCKET ]]; then
    echo "local nix-daemon: running (pid $pid, socket $SOCKET)"
    return 0
  fi
  echo "local nix-daemon: not running"
  return 1
}

daemon_stop() {
  local pid
  if pid=$(daemon_pid); then stop_nix_daemon "$pid"; fi
  rm -f "$PIDFILE"
  echo "local nix-daemon: stopped"
}

daemon_start() {
  require_host_ns
  if daemon_status >/dev/null; then
    daemon_status
    return 0
  fi
  # Debian ships the socket directory root:nix-users 0770: that group is what
  # lets `runner` (and not arbitrary users) reach the daemon.
  mkdir -p "$(dirname "$SOCKET")"
  chown root:nix-users "$(dirname "$SOCKET")"
  chmod 0770 "$(dirname "$SOCKET")"
  rm -f "$SOCKET" # stale from a killed daemon; lets the wait below mean "new daemon listens"
  local nix_daemon
  nix_daemon=$(command -v nix-daemon) || die "nix-daemon not found"
  setsid nohup "$nix_daemon" --daemon >>"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  if ! wait_until 100 test -S "$SOCKET" || ! daemon_pid >/dev/null; then
    tail -n 5 "$LOGFILE" >&2 || true
    die "local nix-daemon did not come up"
  fi
  daemon_status
}

[[ $# -eq 1 ]] || usage
case $1 in
  start) require_root; mkdir -p "$LAB_DIR"; daemon_start ;;
  stop) require_root; daemon_stop ;;
  restart) require_root; daemon_stop >/dev/null; daemon_start ;;
  status) daemon_status ;;
  *) usage ;;
esac
