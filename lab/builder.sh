#!/usr/bin/env bash
# Start, stop or inspect one lab builder (a or b): an sshd on 127.0.0.1 plus a
# nix-daemon, both in a private mount namespace where /nix and /etc/nix are the
# builder's own directories, so each builder has a store separate from the
# host's and from the other builder's.
#
#   lab/builder.sh start|stop|restart|status|kill-sshd|kill-listener|reload NAME
#
# kill-sshd SIGKILLs only the builder's sshd (listener and every session
# process) and leaves its nix-daemon and namespace holder running, like an SSH
# server that crashes mid-build; `start` then brings the builder back.
# kill-listener SIGKILLs only the listening sshd: sessions already open go on,
# new connections are refused. reload sends the listener SIGHUP, so that it
# re-reads its config and host key for new connections only.
#
# The builder's files are created by lab/up.sh; this script only runs them.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() { echo "usage: $0 start|stop|restart|status|kill-sshd|kill-listener|reload NAME" >&2; exit 2; }

# Prints one line and returns 0 only if every part of the builder is up.
builder_status() {
  local name=$1 dir=$LAB_DIR/builders/$1 port ok=0 holder sshd daemon pids
  port=$(builder_port "$name")
  holder=$(read_pidfile "$dir/holder.pid")
  sshd=$(read_pidfile "$dir/sshd.pid")
  daemon=$(read_pidfile "$dir/nix-daemon.pid")
  pids=" $(builder_pids "$name" | tr '\n' ' ') "
  local parts=()
  # Each pid must also be inside this builder's namespace: a pid reused by an
  # unrelated process would otherwise look like a live builder.
  if pid_alive_as "$holder" "nix-offload-lab-builder-$name" && [[ $pids == *" $holder "* ]]; then
    parts+=("holder=$holder")
  else parts+=("holder=down"); ok=1; fi
  if pid_alive_as "$sshd" sshd && [[ $pids == *" $sshd "* ]]; then
    parts+=("sshd=$sshd")
  else parts+=("sshd=down"); ok=1; fi
  if pid_alive_as "$daemon" nix-daemon && [[ $pids == *" $daemon "* ]]; then
    parts+=("nix-daemon=$daemon")
  else parts+=("nix-daemon=down"); ok=1; fi
  if port_open "$port"; then parts+=("port $port open"); else parts+=("port $port closed"); ok=1; fi
  if ((ok == 0)); then
    echo "builder $name: running (${parts[*]})"
  else
    echo "builder $name: not running (${parts[*]})"
  fi
  return $ok
}

builder_stop() {
  local name=$1 dir=$LAB_DIR/builders/$1 pids n
  mapfile -t pids < <(builder_pids "$name")
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # nix-daemon and sshd exit promptly on TERM; KILL is for a wedged build.
    for ((n = 0; n < 50; n++)); do
      mapfile -t pids < <(builder_pids "$name")
      ((${#pids[@]} == 0)) && break
      sleep 0.1
    done
    if ((${#pids[@]})); then
      kill -KILL "${pids[@]}" 2>/dev/null || true
      wait_until 30 test -z "$(builder_pids "$name")" || die "builder $name: processes survive SIGKILL: $(builder_pids "$name" | tr '\n' ' ')"
    fi
  fi
  rm -f "$dir/holder.pid" "$dir/sshd.pid" "$dir/nix-daemon.pid"
  echo "builder $name: stopped"
}

# The builder's sshd processes: the listener plus the per-connection ones
# ("sshd: nixbuilder@notty", "sshd: nixbuilder [priv]", ...). sshd rewrites
# its argv, so match the kernel's comm name, which stays "sshd"; the namespace
# filter in builder_pids keeps the host's and the other builder's sshd out.
builder_sshd_pids() {
  local pid comm
  while read -r pid; do
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue # exited meanwhile
    # OpenSSH 9.8+ runs each connection as sshd-session (and 10.0+ sshd-auth),
    # which it finds in its own /usr/lib/openssh; older ones (Debian bookworm's
    # 9.2, Ubuntu 24.04's 9.6) have only sshd. Same fate either way.
    [[ $comm == sshd || $comm == sshd-session || $comm == sshd-auth ]] && echo "$pid"
  done < <(builder_pids "$1")
  return 0
}

builder_kill_sshd() {
  local name=$1 pids n
  mapfile -t pids < <(builder_sshd_pids "$name")
  if ((${#pids[@]} == 0)); then
    echo "builder $name: no sshd running"
    return 0
  fi
  # SIGKILL, not TERM: a crash gives sessions no chance to close channels
  # cleanly, which is the failure the tests want to see. Repeat because a
  # session's privileged parent may fork a child between scan and kill.
  for ((n = 0; n < 20; n++)); do
    ((${#pids[@]})) || break
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.1
    mapfile -t pids < <(builder_sshd_pids "$name")
  done
  ((${#pids[@]} == 0)) || die "builder $name: sshd survives SIGKILL: ${pids[*]}"
  echo "builder $name: sshd killed (nix-daemon and holder left running)"
}

builder_start() {
  local name=$1 dir=$LAB_DIR/builders/$1 port
  port=$(builder_port "$name")
  [[ -f $dir/sshd_config && -f $dir/etc-nix/nix.conf && -d $dir/nix ]] ||
    die "builder $name is not set up: run lab/up.sh first"
  if builder_status "$name" >/dev/null; then
    builder_status "$name"
    return 0
  fi
  # Half-dead (e.g. sshd crashed): start from a clean slate.
  [[ -n $(builder_pids "$name") ]] && builder_stop "$name" >/dev/null
  port_open "$port" && die "port $port is taken by a process outside builder $name"

  # sshd's privilege-separation directory; /run may be a fresh tmpfs.
  install -d -m 0755 /run/sshd
  # A socket file left by the last run would make the readiness wait below
  # succeed before the new daemon listens.
  rm -f "$dir/nix/var/nix/daemon-socket/socket"

  local root
  root=$(rootfs_of "$(builder_version "$name")")
  [[ -z $root || -f $root/.lab-ready ]] || die "builder $name: its root filesystem $root is not made: run lab/up.sh"
  # The holder is a bash in the new namespace that stays as the parent of both
  # daemons; its argv[0] marks it for the pidfile check. setsid + nohup detach
  # it from the caller's session so it outlives the calling shell or test.
  # A builder of a newer Nix runs both daemons chrooted into that release's
  # root filesystem, with its own /nix and /etc/nix bound over the root
  # filesystem's, and LAB_DIR at the same path so that every path in its
  # sshd_config reads the same inside.
  # shellcheck disable=SC2016
  setsid nohup unshare -m --propagation private /bin/bash -c '
    set -eu
    dir=$1 root=$2 lab=$3
    mount --bind "$dir/nix" "$root/nix"
    mount --bind "$dir/etc-nix" "$root/etc/nix"
    if [[ -n $root ]]; then
      mount -t proc proc "$root/proc"
      mount --rbind /dev "$root/dev"
      mkdir -p "$root$lab"
      mount --bind "$lab" "$root$lab"
      mkdir -p "$root/run/sshd"
      in_root=(chroot "$root")
    else
      mkdir -p /run/sshd
      in_root=()
    fi
    echo $$ >"$dir/holder.pid"
    "${in_root[@]}" nix-daemon --daemon >>"$dir/nix-daemon.log" 2>&1 </dev/null &
    echo $! >"$dir/nix-daemon.pid"
    "${in_root[@]}" /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null &
    wait
  ' "nix-offload-lab-builder-$name" "$dir" "$root" "$LAB_DIR" >>"$dir/holder.log" 2>&1 </dev/null &

  # shellcheck disable=SC2016 # expanded by the inner bash
  if ! wait_until 100 bash -c '[[ -S $1 ]] && (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && [[ -s $3 ]]' _ \
    "$dir/nix/var/nix/daemon-socket/socket" "$port" "$dir/sshd.pid"; then
    builder_status "$name" || true
    tail -n 5 "$dir/holder.log" "$dir/sshd.log" "$dir/nix-daemon.log" >&2 2>/dev/null || true
    die "builder $name did not come up"
  fi
  builder_status "$name"
}

[[ $# -eq 2 ]] || usage
cmd=$1 name=$2
builder_port "$name" >/dev/null
case $cmd in
  start) require_root; builder_start "$name" ;;
  stop) require_root; builder_stop "$name" ;;
  restart) require_root; builder_stop "$name" >/dev/null; builder_start "$name" ;;
  status) builder_status "$name" ;;
  kill-sshd) require_root; builder_kill_sshd "$name" ;;
  kill-listener | reload)
    require_root
    listener=$(read_pidfile "$LAB_DIR/builders/$name/sshd.pid")
    pid_alive_as "$listener" sshd || die "builder $name: no sshd listener running"
    if [[ $cmd == reload ]]; then
      kill -HUP "$listener"
      # sshd re-executes itself on SIGHUP; it listens again once the port answers.
      wait_until 50 port_open "$(builder_port "$name")" || die "builder $name: sshd did not come back after SIGHUP"
    else
      kill -KILL "$listener"
      wait_until 50 bash -c '! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null' _ "$(builder_port "$name")" ||
        die "builder $name: port still open after killing the listener"
    fi
    echo "builder $name: sshd listener $cmd done"
    ;;
  *) usage ;;
esac
