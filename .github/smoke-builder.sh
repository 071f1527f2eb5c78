#!/usr/bin/env bash
# The builder of ci.yml's smoke job, on a GitHub-hosted Ubuntu runner after cachix/install-nix-action: user
# nixbuilder behind an sshd of its own on 127.0.0.1:2222, whose sessions see a Nix store of their own, served by a
# nix-daemon of their own with build users of their own, as lab/builder.sh makes the lab's builders. The store holds
# the installer's Nix at the same store path, which `remote-program` names: a non-interactive SSH session has no Nix
# on its PATH there. Run as root with that Nix on PATH; prints the action's inputs for it, and the store's directory,
# as GITHUB_OUTPUT lines.
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
host=127.0.0.1
port=2222
user=nixbuilder
dir=/var/lib/nix-offload-smoke
build_group=nixbld-smoke

nix_bin=$(dirname "$(readlink -f "$(command -v nix-daemon)")")
[[ -x $nix_bin/nix-daemon ]] || { echo "no nix-daemon beside $nix_bin/nix" >&2; exit 1; }
[[ -x /usr/sbin/sshd ]] || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
}

install -d -m 0755 "$dir" "$dir/etc-nix" /run/sshd
ssh-keygen -q -t ed25519 -N '' -C nix-offload-smoke -f "$dir/client_key"
ssh-keygen -q -t ed25519 -N '' -C nix-offload-smoke-builder -f "$dir/host_key"

useradd --system --user-group --create-home --shell /bin/bash "$user"
# sshd without PAM refuses a locked account (useradd leaves `!`), whatever the key.
usermod -p '*' "$user"
install -d -m 0700 -o "$user" -g "$user" "/home/$user/.ssh"
install -m 0600 -o "$user" -g "$user" "$dir/client_key.pub" "/home/$user/.ssh/authorized_keys"

# A nix-daemon kills every process of a build user before it uses one: the runner's daemon has the installer's
# nixbld users, so the builder's has others.
groupadd --system "$build_group"
for i in 1 2 3 4; do
  useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin --gid "$build_group" \
    --groups "$build_group" "$build_group-$i"
done
# No sandbox, as on the lab's builders: a build's /bin/sh is the runner's own, so the store needs no shell of its own.
cat >"$dir/etc-nix/nix.conf" <<EOF
build-users-group = $build_group
experimental-features = nix-command
sandbox = false
EOF

# The store: Nix's own closure, with a database of its own. Nothing else is valid there until the action sends it.
nix --extra-experimental-features nix-command copy --no-check-sigs --to "$dir/store" "$(dirname "$nix_bin")"

cat >"$dir/sshd_config" <<EOF
ListenAddress $host:$port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AllowUsers $user
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF

# In a mount namespace of its own, /nix is the builder's store and /etc/nix its configuration, for its nix-daemon
# and for every session its sshd starts.
# shellcheck disable=SC2016 # expanded by the inner bash
setsid nohup unshare --mount --propagation private bash -c '
  set -eu
  mount --bind "$1/store/nix" /nix
  mount --bind "$1/etc-nix" /etc/nix
  "$2/nix-daemon" >>"$1/nix-daemon.log" 2>&1 </dev/null &
  exec /usr/sbin/sshd -D -f "$1/sshd_config" -E "$1/sshd.log"
' nix-offload-smoke-builder "$dir" "$nix_bin" >"$dir/holder.log" 2>&1 </dev/null &

for ((i = 0; i < 100; i++)); do
  if [[ -S $dir/store/nix/var/nix/daemon-socket/socket ]] && (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if ((i == 100)); then
  tail -n 20 "$dir"/*.log >&2 || true
  echo "the builder did not come up" >&2
  exit 1
fi

delimiter=EOF-$RANDOM$RANDOM
cat <<EOF
host=$host
port=$port
user=$user
remote-program=$nix_bin
host-public-key=$(cat "$dir/host_key.pub")
store=$dir/store
ssh-private-key<<$delimiter
$(cat "$dir/client_key")
$delimiter
EOF
