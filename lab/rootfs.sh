#!/usr/bin/env bash
# Make the root filesystem in which the lab runs Nix VERSION (2.26: Debian
# trixie's nix-bin, 2.34: sid's), with mmdebstrap from the Debian mirror apt
# already uses on a Debian host, or from deb.debian.org on another (Ubuntu,
# where mmdebstrap checks the suites with debian-archive-keyring's keys, which
# lab/lib.sh ensure_packages installs). Safe to re-run: a finished root
# filesystem is left alone, apart from the accounts and files below, which are
# checked every time.
#
#   lab/rootfs.sh VERSION
#
# Inside it: the accounts a runner and a builder need (runner with
# passwordless sudo and group nix-users; nixbuilder and nixnopath, unlocked),
# the build users of every store that runs from it, the host's Node (the action
# runs on it). lab/up.sh writes the nix.conf of the runner that runs from it.
set -euo pipefail
HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source=lab/lib.sh
source "$HERE/lib.sh"

[[ $# -eq 1 ]] || { echo "usage: $0 VERSION" >&2; exit 2; }
require_root
version=$1
root=$(rootfs_of "$version")
[[ -n $root ]] || die "Nix $version is the host's own: it needs no root filesystem"
suite=$(nix_suite "$version")

# The ssh client is the one the runner's nix-daemon opens connections with;
# zstd is what @actions/cache compresses with on a GitHub runner.
packages=nix-bin,openssh-server,openssh-client,procps,iproute2,ca-certificates,sudo,zstd
# .lab-ready holds the package list it was made with. A list that grew is
# installed in place: the root filesystem may be in use by running daemons.
if [[ -f $root/.lab-ready && $(cat "$root/.lab-ready") != "$packages" ]]; then
  log "installing $packages in $root"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" apt-get -qq -o Acquire::Check-Valid-Until=false update >/dev/null
  # Only the missing ones: naming an installed package would upgrade it (sid moves).
  missing=()
  for package in ${packages//,/ }; do
    chroot "$root" dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -qq -o Acquire::Check-Valid-Until=false install -y \
    --no-upgrade "${missing[@]}" >/dev/null 2>&1 || die "apt-get install ${missing[*]} in $root failed"
  echo "$packages" >"$root/.lab-ready"
fi
if [[ ! -f $root/.lab-ready ]]; then
  log "making the $suite root filesystem for Nix $version in $root"
  rm -rf "$root.tmp"
  mkdir -p "$LAB_ROOTFS_DIR"
  # Check-Valid-Until: the mirror's sid Release file reads as expired against
  # this machine's clock. apt inside the chroot would need the same option.
  mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include="$packages" \
    "$suite" "$root.tmp" "$(debian_mirror)" >"$LAB_ROOTFS_DIR/$suite.log" 2>&1 ||
    { tail -n 20 "$LAB_ROOTFS_DIR/$suite.log" >&2; die "mmdebstrap $suite failed"; }
  rm -rf "$root"
  mv "$root.tmp" "$root"
  echo "$packages" >"$root/.lab-ready"
fi

# From dpkg: nix itself needs /proc, which only the lab's namespaces mount.
have_nix=$(chroot "$root" dpkg-query -W -f '${Version}' nix-bin 2>/dev/null | grep -oE '^[0-9]+\.[0-9]+' || true)
[[ $have_nix == "$version" ]] || die "$root has Nix '$have_nix', not $version"

in_root() { chroot "$root" "$@"; }

# Builders bind their own /etc/nix over this one; the runner writes it (lab/up.sh).
mkdir -p "$root/etc/nix"
# sudo looks the host name up.
echo "127.0.0.1 localhost $(hostname)" >"$root/etc/hosts"

# --- accounts, as on the host (lab/up.sh) --------------------------------------
in_root getent group nix-users >/dev/null || in_root groupadd -r nix-users
runner_uid=$(id -u "$LAB_RUNNER_USER")
runner_gid=$(id -g "$LAB_RUNNER_USER")
if ! in_root id "$LAB_RUNNER_USER" >/dev/null 2>&1; then
  # The host's uid and primary gid, so that files the tests make for the runner belong to it on both sides. The
  # group may not be named after the user: a GitHub-hosted runner's `runner` has the primary group `docker`.
  in_root getent group "$runner_gid" >/dev/null || in_root groupadd -g "$runner_gid" "$(id -gn "$LAB_RUNNER_USER")"
  in_root useradd -m -u "$runner_uid" -g "$runner_gid" -d /home/"$LAB_RUNNER_USER" -s /bin/bash -G nix-users \
    "$LAB_RUNNER_USER"
fi
echo "$LAB_RUNNER_USER ALL=(ALL) NOPASSWD:ALL" >"$root/etc/sudoers.d/nix-offload-lab-runner"
chmod 0440 "$root/etc/sudoers.d/nix-offload-lab-runner"
for user in "${LAB_BUILDER_ACCOUNTS[@]}"; do
  # The host's uids here too: a system uid picked inside could be one the host uses for something else.
  uid=$(id -u "$user")
  in_root id "$user" >/dev/null 2>&1 || in_root useradd -r -m -u "$uid" -d /home/"$user" -s /bin/bash "$user"
  [[ $(in_root id -u "$user") == "$uid" ]] || in_root usermod -u "$uid" "$user"
  [[ $(in_root getent shadow "$user" | cut -d: -f2) == '*' ]] || in_root usermod -p '*' "$user"
done

# --- build users of every store that runs from this root filesystem ------------
for store in "${LAB_STORES[@]}"; do
  case $store in
    runner-"$version" | ?-"$version") ensure_build_users "$store" "$root" ;;
  esac
done

# --- Node, for the action when this root filesystem is the runner ---------------
node=$(command -v node) || die "node not found on the host"
if ! cmp -s "$node" "$root/usr/local/bin/node"; then install -m 0755 "$node" "$root/usr/local/bin/node"; fi

echo "root filesystem for Nix $version: $root ($suite)"
