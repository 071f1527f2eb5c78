#!/usr/bin/env bash
# Bring up the nix-offload test lab (as root). Safe to re-run: it only fixes
# what is missing or different, and restarts daemons that died.
#
# What it sets up (all state under /var/lib/nix-offload-lab):
#   - user `runner` (passwordless sudo, group nix-users), like a GitHub runner;
#   - /etc/nix/nix.conf for the host and a host nix-daemon (lab/local-daemon.sh);
#   - builders a (127.0.0.1:2201) and b (127.0.0.1:2202), each an sshd plus a
#     nix-daemon with its own store, in its own mount namespace (lab/builder.sh);
#   - builders a and b run the host's own Nix (2.8 on Debian 12, 2.18 on Ubuntu
#     24.04: `nix --version`, recorded in lab.json "hostNix");
#   - the same two builders on Nix 2.26 (:2211, :2212) and 2.34 (:2221, :2222),
#     run from root filesystems of Debian trixie and sid (lab/rootfs.sh), and a
#     runner on each of those versions (lab/runner.sh); every store has its own
#     build users;
#   - builder accounts nixbuilder and nixnopath (same key, both trusted; the
#     latter's SSH sessions have no Nix on PATH: lab.json "noNixUser");
#   - client_key (authorised on both builders) and other_key (authorised nowhere);
#   - lab.json describing all of the above for the tests; known_hosts pinning
#     both builders' host keys.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lab/lib.sh
source "$HERE/lib.sh"

require_root
ensure_packages
stop_system_nix_daemon
host=$(host_nix)

# write_if_changed FILE MODE < content: returns 0 if the file was (re)written.
write_if_changed() {
  local file=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    chmod "$mode" "$file"
    return 1
  fi
  install -m "$mode" -o root -g root "$tmp" "$file"
  rm -f "$tmp"
  return 0
}

ensure_key() { # ensure_key PATH COMMENT
  [[ -f $1 && -f $1.pub ]] || { rm -f "$1" "$1.pub"; ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"; }
  chown root:root "$1" "$1.pub"
  chmod 0600 "$1"
  chmod 0644 "$1.pub"
}

install -d -m 0755 "$LAB_DIR" "$LAB_DIR/builders"

# --- users -------------------------------------------------------------------
getent group nix-users >/dev/null || groupadd -r nix-users
if ! id "$LAB_RUNNER_USER" >/dev/null 2>&1; then
  useradd -m -d /home/"$LAB_RUNNER_USER" -s /bin/bash -G nix-users "$LAB_RUNNER_USER"
elif ! id -nG "$LAB_RUNNER_USER" | tr ' ' '\n' | grep -qx nix-users; then
  usermod -aG nix-users "$LAB_RUNNER_USER"
fi
sudoers=/etc/sudoers.d/nix-offload-lab-runner
if write_if_changed "$sudoers" 0440 <<<"$LAB_RUNNER_USER ALL=(ALL) NOPASSWD:ALL"; then
  visudo -cqf "$sudoers" || { rm -f "$sudoers"; die "generated $sudoers is invalid"; }
fi

# Every builder account is set up exactly like $LAB_BUILDER_USER; only what its
# SSH sessions may run differs (see the Match blocks in sshd_config below).
for user in "${LAB_BUILDER_ACCOUNTS[@]}"; do
  if ! id "$user" >/dev/null 2>&1; then
    # bash (not nologin): Nix runs `nix-daemon --stdio` through the login shell.
    useradd -r -m -d /home/"$user" -s /bin/bash "$user"
  fi
  # useradd -r leaves the password field '!' and sshd then refuses even key
  # logins ("account is locked"); '*' means "no password" without the lock.
  if [[ $(getent shadow "$user" | cut -d: -f2) != '*' ]]; then
    usermod -p '*' "$user"
  fi
done

# --- keys --------------------------------------------------------------------
ensure_key "$LAB_DIR/client_key" nix-offload-lab-client
ensure_key "$LAB_DIR/other_key" nix-offload-lab-other-unauthorised
# Authorised with `command="nix-daemon --stdio",restrict`, as hardening guides
# write it: whatever a client asks for, this key runs only the Nix daemon.
ensure_key "$LAB_DIR/daemon_only_key" nix-offload-lab-daemon-only

# --- root filesystems of the newer Nix versions (made at once) ------------------
pids=()
for version in "${LAB_ROOTFS_RUNNERS[@]}"; do
  "$HERE/rootfs.sh" "$version" >/dev/null &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || die "a root filesystem could not be made (see above)"; done

# --- local side ----------------------------------------------------------------
ensure_build_users "runner-$host"
# Debian's file holds only a comment and `sandbox = false`, both kept. Empty
# substituters: there is no internet and every cache lookup costs retries.
if [[ -f /etc/nix/nix.conf && ! -f $LAB_DIR/nix.conf.orig ]]; then
  cp -p /etc/nix/nix.conf "$LAB_DIR/nix.conf.orig"
fi
mkdir -p /etc/nix
local_conf_changed=0
write_if_changed /etc/nix/nix.conf 0644 <<EOF && local_conf_changed=1
# nix-offload test lab (written by lab/up.sh; Debian's original is in
# /var/lib/nix-offload-lab/nix.conf.orig).
# The sandbox does not work with Debian's nix-bin.
sandbox = false
substituters =
trusted-users = root runner
# Its own build users (lab/lib.sh, ensure_build_users).
build-users-group = $(build_group "runner-$host")
EOF
if ((local_conf_changed)) && "$HERE/local-daemon.sh" status >/dev/null; then
  "$HERE/local-daemon.sh" restart >/dev/null # the daemon reads nix.conf only at start
fi
"$HERE/local-daemon.sh" start >/dev/null

# --- runners of the newer Nix versions --------------------------------------------
runners_json=('{"nix":"'"$host"'","root":"","daemonLog":"'"$LAB_DIR"'/local-daemon.log"}')
for version in "${LAB_ROOTFS_RUNNERS[@]}"; do
  root=$(rootfs_of "$version")
  changed=0
  write_if_changed "$root/etc/nix/nix.conf" 0644 <<EOF && changed=1
# nix-offload test lab: the runner's Nix $version (written by lab/up.sh).
# No sandbox: builds use the root filesystem's /bin/sh, as on the host.
sandbox = false
substituters =
trusted-users = root $LAB_RUNNER_USER
build-users-group = $(build_group "runner-$version")
EOF
  if ((changed)) && "$HERE/runner.sh" "$version" status >/dev/null; then
    "$HERE/runner.sh" "$version" restart >/dev/null
  fi
  "$HERE/runner.sh" "$version" start >/dev/null
  runners_json+=("$(printf '{"nix":"%s","root":"%s","daemonLog":"%s"}' \
    "$version" "$root" "$LAB_DIR/runners/$version/nix-daemon.log")")
done

# --- builders ------------------------------------------------------------------
# OpenSSH 9.8+ penalises an address after failed logins (PerSourcePenalties);
# the fault tests make many from 127.0.0.1 on purpose. An older sshd (Debian
# bookworm's 9.2, Ubuntu 24.04's 9.6) has no such option. The version is that
# of the ssh client of the same root (filesystem): both come from one source.
declare -A penalties_of=()
penalties_for() { # penalties_for ROOT (empty: the host)
  local ver major minor chroot_cmd=()
  [[ -n $1 ]] && chroot_cmd=(chroot "$1")
  ver=$("${chroot_cmd[@]}" ssh -V 2>&1 | grep -oE 'OpenSSH_[0-9]+\.[0-9]+' | head -n 1) || true
  [[ -n $ver ]] || die "cannot tell the OpenSSH version of ${1:-the host} (ssh -V)"
  ver=${ver#OpenSSH_} major=${ver%%.*} minor=${ver#*.}
  if ((major > 9 || (major == 9 && minor >= 8))); then echo 'PerSourcePenalties no'; fi
}
known_hosts_lines=()
builders_json=()
for name in "${LAB_BUILDERS[@]}"; do
  dir=$LAB_DIR/builders/$name
  port=$(builder_port "$name")
  features=$(builder_features "$name")
  version=$(builder_version "$name")
  root=$(rootfs_of "$version")
  ensure_build_users "$name" "$root"
  [[ -n ${penalties_of[x$root]+set} ]] || penalties_of[x$root]=$(penalties_for "$root")
  penalties=${penalties_of[x$root]}
  install -d -m 0755 "$dir" "$dir/etc-nix" "$dir/nix"
  # nix-daemon creates the rest; the socket directory must be reachable by
  # nixbuilder, whose `nix-daemon --stdio` forwards to the builder's daemon.
  install -d -m 0755 "$dir/nix/var" "$dir/nix/var/nix" "$dir/nix/var/nix/daemon-socket"
  ensure_key "$dir/ssh_host_ed25519_key" "nix-offload-lab-builder-$name"
  changed=0
  {
    cat "$LAB_DIR/client_key.pub"
    printf 'command="nix-daemon --stdio",restrict %s\n' "$(cut -d' ' -f1,2 "$LAB_DIR/daemon_only_key.pub")"
  } | write_if_changed "$dir/authorized_keys" 0644 && changed=1
  write_if_changed "$dir/sshd_config" 0644 <<EOF && changed=1
# Builder $name of the nix-offload test lab (written by lab/up.sh).
ListenAddress 127.0.0.1
Port $port
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
# Root-owned and outside nixbuilder's home, so a build cannot add keys.
AuthorizedKeysFile $dir/authorized_keys
AllowUsers ${LAB_BUILDER_ACCOUNTS[*]}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# No PAM without systemd-logind; with it off, sshd checks the shadow entry itself.
UsePAM no
# Every path above is root-owned and not group/world writable.
StrictModes yes
PermitRootLogin no
X11Forwarding no
AllowAgentForwarding no
PrintMotd no
# VERBOSE logs the key fingerprint of each accepted or refused key.
LogLevel VERBOSE
$penalties
# Must stay last: a Match block runs to the end of the file. SetEnv is applied
# after sshd sets its default PATH, so it replaces it, and the account's bash
# (non-interactive, skel ~/.bashrc returns early) does not add Nix back: this
# user's commands find no nix-daemon/nix-store, like a builder whose Nix is
# only on a login shell's PATH.
Match User $LAB_NONIX_USER
  SetEnv PATH=/nonexistent
# As NixOS's nix.sshServe writes them (protocol ssh-ng, and its default ssh).
Match User $LAB_DAEMON_ONLY_USER
  ForceCommand nix-daemon --stdio
  PermitTTY no
  AllowTcpForwarding no
  AllowAgentForwarding no
  X11Forwarding no
Match User $LAB_SERVE_ONLY_USER
  ForceCommand nix-store --serve --write
  PermitTTY no
  AllowTcpForwarding no
  AllowAgentForwarding no
  X11Forwarding no
EOF
  write_if_changed "$dir/etc-nix/nix.conf" 0644 <<EOF && changed=1
# Builder $name of the nix-offload test lab (written by lab/up.sh).
sandbox = false
substituters =
# ssh-ng before Nix 2.16 needs the remote user trusted to build input-addressed derivations.
# Every builder account is trusted, so that only what its sessions may run differs.
trusted-users = root ${LAB_BUILDER_ACCOUNTS[*]}
max-jobs = 4
system-features = $features
# Its own build users: uids no other store on the host uses.
build-users-group = $(build_group "$name")
EOF
  touch "$dir/sshd.log"
  if ((changed)) && "$HERE/builder.sh" status "$name" >/dev/null; then
    "$HERE/builder.sh" restart "$name" >/dev/null
  fi
  "$HERE/builder.sh" start "$name" >/dev/null

  hostkey=$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")
  known_hosts_lines+=("[127.0.0.1]:$port $hostkey")
  # shellcheck disable=SC2086 # split the space-separated feature list on purpose
  feats_json=$(printf '"%s",' $features)
  builders_json+=("$(printf '{"name":"%s","nix":"%s","host":"127.0.0.1","port":%d,"user":"%s","hostPublicKey":"%s","hostPublicKeyFile":"%s","storeDir":"%s","sshdLog":"%s","sshdConfig":"%s","nixConf":"%s","systemFeatures":[%s],"maxJobs":4}' \
    "$name" "$version" "$port" "$LAB_BUILDER_USER" "$hostkey" "$dir/ssh_host_ed25519_key.pub" "$dir/nix/store" "$dir/sshd.log" \
    "$dir/sshd_config" "$dir/etc-nix/nix.conf" "${feats_json%,}")")
done

# Ready-made pins for both builders, in the `[host]:port` form ssh looks up.
printf '%s\n' "${known_hosts_lines[@]}" | write_if_changed "$LAB_DIR/known_hosts" 0644 || true

local_system=$(nix --extra-experimental-features nix-command show-config --json 2>/dev/null |
  sed -n 's/.*"system":{[^}]*"value":"\([^"]*\)".*/\1/p')
[[ -n $local_system ]] || local_system="$(uname -m)-linux"

joined=$(IFS=,; echo "${builders_json[*]}")
runners=$(IFS=,; echo "${runners_json[*]}")
printf '{"hostNix":"%s","runners":[%s],"runnerUser":"%s","noNixUser":"%s","daemonOnlyUser":"%s","serveOnlyUser":"%s","daemonOnlyKey":"%s","clientKey":"%s","clientPublicKey":"%s","otherKey":"%s","knownHosts":"%s","localSystem":"%s","nixConf":"/etc/nix/nix.conf","localDaemonLog":"%s","localDaemonCtl":"%s","builderCtl":"%s","builders":[%s]}\n' \
  "$host" "$runners" "$LAB_RUNNER_USER" "$LAB_NONIX_USER" "$LAB_DAEMON_ONLY_USER" "$LAB_SERVE_ONLY_USER" \
  "$LAB_DIR/daemon_only_key" "$LAB_DIR/client_key" "$(cut -d' ' -f1,2 "$LAB_DIR/client_key.pub")" "$LAB_DIR/other_key" \
  "$LAB_DIR/known_hosts" "$local_system" "$LAB_DIR/local-daemon.log" "$HERE/local-daemon.sh" "$HERE/builder.sh" "$joined" |
  write_if_changed "$LAB_DIR/lab.json" 0644 || true

# --- checks the tests rely on --------------------------------------------------
sudo -u "$LAB_RUNNER_USER" sudo -n true || die "runner has no passwordless sudo"
sudo -u "$LAB_RUNNER_USER" nix --extra-experimental-features nix-command store ping >/dev/null 2>&1 ||
  die "runner cannot reach the local nix-daemon"
for version in "${LAB_ROOTFS_RUNNERS[@]}"; do
  "$HERE/runner.sh" "$version" exec sudo -u "$LAB_RUNNER_USER" sudo -n true || die "runner $version: no passwordless sudo"
  "$HERE/runner.sh" "$version" exec sudo -u "$LAB_RUNNER_USER" nix --extra-experimental-features nix-command \
    store info >/dev/null 2>&1 || die "runner $version cannot reach its nix-daemon"
done
# -F /dev/null: root's own ~/.ssh/config (a test may leave aliases there) must
# not change what this check sees.
lab_ssh() { # lab_ssh PORT USER COMMAND
  ssh -F /dev/null -i "$LAB_DIR/client_key" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$LAB_DIR/known_hosts" -p "$1" "$2@127.0.0.1" "$3"
}
for name in "${LAB_BUILDERS[@]}"; do
  port=$(builder_port "$name")
  lab_ssh "$port" "$LAB_BUILDER_USER" 'command -v nix-daemon' >/dev/null 2>&1 ||
    die "builder $name: $LAB_BUILDER_USER cannot log in or finds no nix-daemon on PATH"
  # Exit 1 = logged in, and nix-daemon not found; 255 would be an ssh failure.
  rc=0
  lab_ssh "$port" "$LAB_NONIX_USER" 'command -v nix-daemon' >/dev/null 2>&1 || rc=$?
  ((rc == 1)) || die "builder $name: $LAB_NONIX_USER should log in and find no nix-daemon (ssh exit $rc, want 1)"
done

echo "nix-offload lab is up ($LAB_DIR/lab.json):"
"$HERE/local-daemon.sh" status | sed 's/^/  /'
for version in "${LAB_ROOTFS_RUNNERS[@]}"; do "$HERE/runner.sh" "$version" status | sed 's/^/  /'; done
for name in "${LAB_BUILDERS[@]}"; do "$HERE/builder.sh" status "$name" | sed 's/^/  /'; done
echo "  runner: $(id "$LAB_RUNNER_USER")"
echo "  client key: $LAB_DIR/client_key (other_key: not authorised); pins: $LAB_DIR/known_hosts"
