#!/usr/bin/env bash
# Stop everything lab/up.sh started (every builder, the runners of the newer Nix
# versions, and the host nix-daemon).
#
#   lab/down.sh            users, keys, configs and stores stay, so the next up.sh is quick
#   lab/down.sh --purge    and then remove all of it: the next up.sh starts from nothing,
#                          as on a machine that never ran the lab
#
# --purge removes the lab's directory and root filesystems, the host's /nix (the
# host store and its database, which the nix-daemon makes anew at start), the
# lab's users and build users, its sudoers file, /etc/nix (Debian's nix.conf is
# put back), and whatever the action's runs may have left on the host: root's
# and the runner's ~/.ssh/nix-offload-* directories and blocks, the shared
# machines file, /run/nix-offload and nix-offload files in /tmp. The Debian
# packages up.sh installed (nix-bin, openssh-server, sudo, mmdebstrap) stay.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lab/lib.sh
source "$HERE/lib.sh"
require_root

purge=0
case ${1:-} in
  '') ;;
  --purge) purge=1 ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

for name in "${LAB_BUILDERS[@]}"; do
  if [[ -d $LAB_DIR/builders/$name ]]; then "$HERE/builder.sh" stop "$name"; fi
done
for version in "${LAB_ROOTFS_RUNNERS[@]}"; do
  if [[ -d $LAB_DIR/runners/$version ]]; then "$HERE/runner.sh" "$version" stop; fi
done
if command -v nix >/dev/null; then "$HERE/local-daemon.sh" stop; fi
((purge)) || exit 0

# Anything of the lab's still running (a test's stray ssh master, a build user's
# process) would keep a store or a mount busy.
for user in "$LAB_RUNNER_USER" "${LAB_BUILDER_ACCOUNTS[@]}"; do
  if id "$user" >/dev/null 2>&1; then pkill -KILL -u "$user" 2>/dev/null || true; fi
done
pkill -KILL -f '^nix-daemon' 2>/dev/null || true

# A mount left in the host's namespace under a lab directory (a rootfs's /proc
# or /dev bound by hand) must go before its directory can.
unmount_under() { # unmount_under DIR
  local target
  while read -r target; do
    umount -l "$target" 2>/dev/null || true
  done < <(awk -v dir="$1" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
unmount_under "$LAB_ROOTFS_DIR"
unmount_under "$LAB_DIR"
unmount_under /nix
# Debian's nix.conf (a conffile of nix-setup-systemd), which up.sh kept before writing the lab's.
original_conf=$(cat "$LAB_DIR/nix.conf.orig" 2>/dev/null) || original_conf=
rm -rf --one-file-system "$LAB_ROOTFS_DIR" "$LAB_DIR" /nix

# Users and groups: the runner, the builder accounts, and every store's build users.
for user in "$LAB_RUNNER_USER" "${LAB_BUILDER_ACCOUNTS[@]}"; do
  if id "$user" >/dev/null 2>&1; then userdel -r "$user" 2>/dev/null || userdel "$user"; fi
  rm -rf "/home/${user:?}"
done
for store in "${LAB_STORES[@]}"; do
  group=$(build_group "$store")
  for ((i = 1; i <= LAB_BUILD_USERS; i++)); do
    if id "$group-$i" >/dev/null 2>&1; then userdel "$group-$i"; fi
  done
  if getent group "$group" >/dev/null; then groupdel "$group"; fi
done
# The host's own runner store is named by its version (runner-2.8 on Debian 12).
while read -r group; do
  for ((i = 1; i <= LAB_BUILD_USERS; i++)); do
    if id "$group-$i" >/dev/null 2>&1; then userdel "$group-$i"; fi
  done
  groupdel "$group"
done < <(getent group | cut -d: -f1 | grep -E '^nixbld-runner-' || true)
if getent group nix-users >/dev/null; then groupdel nix-users; fi
rm -f /etc/sudoers.d/nix-offload-lab-runner

# /etc/nix as Debian's nix-bin leaves it: no file of the lab's, and no block of the action's.
rm -rf /etc/nix
if [[ -n $original_conf ]]; then
  mkdir -p /etc/nix
  printf '%s\n' "$original_conf" >/etc/nix/nix.conf
fi

# What a run of the action may have left on the host.
rm -rf /root/.ssh/nix-offload-* /run/nix-offload /tmp/nix-offload-* /tmp/nix-offload-lock-*
if [[ -f /root/.ssh/config ]]; then
  sed -i '/^# nix-offload [0-9a-f]*: begin/,/^# nix-offload [0-9a-f]*: end/d' /root/.ssh/config
  [[ -s /root/.ssh/config ]] || rm -f /root/.ssh/config
fi
echo "lab: purged; lab/up.sh starts from nothing"
