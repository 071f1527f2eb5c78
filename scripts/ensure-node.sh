# shellcheck shell=bash
# Sourced by the top-level scripts: makes sure Node.js 20+ and npm exist and the npm packages are installed.
ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "installing Node.js and npm from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if ((major < 20)); then
    echo "Node.js $(node --version) is too old: nix-offload needs Node.js 20 or newer" >&2
    exit 1
  fi
  # .npmrc sets ignore-scripts: no package needs its install script, and dist/ must not embed native addons.
  npm ci --no-audit --no-fund --loglevel=error
}
