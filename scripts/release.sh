#!/usr/bin/env bash
# Makes a release of nix-offload: runs the checks, then tags HEAD as vX.Y.Z (annotated, with its CHANGELOG.md
# section as the message) and moves the major tag vX to it, the tag that `uses: nix-offload/nix-offload@vX` follows.
#
#   scripts/release.sh [--lab] [--push] [--remote NAME] X.Y.Z
#
# First move CHANGELOG.md's [Unreleased] entries into a "## [X.Y.Z] - YYYY-MM-DD" section, set package.json's
# "version" to X.Y.Z, and commit both on main. The script refuses, before running anything:
#   - a version that is not X.Y.Z (no "v", no pre-release);
#   - a branch other than main, or a detached HEAD;
#   - a tree with uncommitted changes or untracked files;
#   - a CHANGELOG.md with no "## [X.Y.Z]" section, or a package.json of another version;
#   - a tag vX.Y.Z that exists already, or a version below the newest vX.*.* (vX only moves forward).
# Checks: npm ci, typecheck, lint, unit tests, and dist/ rebuilt by `npm run bundle` with no difference. With --lab,
# the whole test command instead (scripts/test-all.sh: the same checks, plus the lab tests on every pair of Nix
# versions; as root, on a machine that can run the lab).
# Then it tags, and prints the `git push` commands; with --push it runs them (main, vX.Y.Z, and vX with --force).
# The pushed tag vX.Y.Z starts .github/workflows/release.yml, which makes the GitHub Release from the same CHANGELOG.md
# section (scripts/changelog-section.sh).
#
# --skip-checks exists for this script's own unit test (__tests__/unit/release.test.ts): it skips the checks, says
# so, and cannot be combined with --push.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

die() {
  echo "release: $*" >&2
  exit 1
}

usage="usage: scripts/release.sh [--lab] [--push] [--remote NAME] X.Y.Z"
lab=false
push=false
skip_checks=false
remote=origin
version=
while (($# > 0)); do
  case $1 in
    --lab) lab=true ;;
    --push) push=true ;;
    --skip-checks) skip_checks=true ;;
    --remote)
      (($# > 1)) || die "--remote needs a name. $usage"
      remote=$2
      shift
      ;;
    -h | --help)
      echo "$usage"
      exit 0
      ;;
    -*) die "unknown option $1. $usage" ;;
    *)
      [[ -z $version ]] || die "one version only. $usage"
      version=$1
      ;;
  esac
  shift
done

[[ -n $version ]] || die "no version given. $usage"
[[ $version =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] ||
  die "'$version' is not a version X.Y.Z (three numbers, no leading zeros, no 'v', no pre-release)"
major=${BASH_REMATCH[1]}
tag=v$version
major_tag=v$major
if $skip_checks && $push; then
  die "--skip-checks cannot be combined with --push: nothing is published without the checks"
fi
if $lab && [[ $(id -u) -ne 0 ]]; then
  die "--lab runs scripts/test-all.sh, which must run as root (the lab starts daemons and creates users)"
fi

# --- the repository --------------------------------------------------------------------------------------------------
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$(pwd) is not a git work tree"
branch=$(git symbolic-ref --quiet --short HEAD) || die "HEAD is detached: release from the branch main"
[[ $branch == main ]] || die "on branch '$branch': release from the branch main"
dirty=$(git status --porcelain --untracked-files=normal)
if [[ -n $dirty ]]; then
  echo "$dirty" >&2
  die "the work tree has uncommitted changes or untracked files (above): commit or remove them first"
fi

# --- the changelog and package.json -----------------------------------------------------------------------------------
[[ -f CHANGELOG.md ]] || die "there is no CHANGELOG.md"
notes=$(awk -v heading="## [$version]" '
  index($0, heading) == 1 && (length($0) == length(heading) || substr($0, length(heading) + 1, 1) == " ") {
    found = 1; print; next
  }
  found && /^## / { exit }
  found && /^\[[^]]+\]: / { exit }
  found { print }
' CHANGELOG.md)
[[ -n $notes ]] ||
  die "CHANGELOG.md has no '## [$version]' section: move the [Unreleased] entries into '## [$version] - $(date +%F)'"
[[ $(printf '%s\n' "$notes" | grep -c '^- ') -gt 0 ]] || die "CHANGELOG.md's '## [$version]' section lists nothing"
package_version=$(node -p 'require("./package.json").version' 2>/dev/null) || die "cannot read package.json with node"
[[ $package_version == "$version" ]] ||
  die "package.json says version '${package_version:-?}', not $version: set it and commit"

# --- the tags ---------------------------------------------------------------------------------------------------------
if git rev-parse --quiet --verify "refs/tags/$tag" >/dev/null; then
  die "the tag $tag exists already (on $(git rev-parse --short "$tag^{commit}"))"
fi
newest=$(git tag --list "v$major.*" | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
if [[ -n $newest ]] && [[ $(printf '%s\n%s\n' "$newest" "$tag" | sort -V | tail -n 1) != "$tag" ]]; then
  die "$newest is newer than $tag: $major_tag only moves forward"
fi

# --- the checks -------------------------------------------------------------------------------------------------------
if $skip_checks; then
  echo "== checks SKIPPED (--skip-checks): this tag has not been checked" >&2
elif $lab; then
  echo "== the whole test command: bash scripts/test-all.sh"
  bash scripts/test-all.sh
else
  command -v node >/dev/null 2>&1 || die "node is not on PATH (Node.js 20 or later)"
  (($(node -p 'process.versions.node.split(".")[0]') >= 20)) || die "Node.js $(node --version) is too old: 20 or later"
  echo "== npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "== typecheck, lint, format"
  npm run --silent typecheck
  npm run --silent lint
  echo "== unit tests"
  npm run --silent test:unit
  echo "== dist/ is the bundle of src/"
  npm run --silent bundle >/dev/null
  if ! git diff --quiet --exit-code -- dist || [[ -n $(git status --porcelain --untracked-files=all -- dist) ]]; then
    git --no-pager diff --stat -- dist
    git status --porcelain --untracked-files=all -- dist
    die "dist/ differs from a fresh bundle of src/: run 'npm run bundle', commit dist/, and release again"
  fi
fi
dirty=$(git status --porcelain --untracked-files=normal)
if [[ -n $dirty ]]; then
  echo "$dirty" >&2
  die "the checks left changes in the work tree (above): nothing was tagged"
fi

# --- tag --------------------------------------------------------------------------------------------------------------
commit=$(git rev-parse HEAD)
git tag --annotate --cleanup=whitespace "$tag" --message "nix-offload $tag" --message "$notes" "$commit"
git tag --force --annotate "$major_tag" --message "nix-offload $major_tag: the newest $major_tag.x.y release, $tag" \
  "$commit" >/dev/null
echo "== tagged $tag and moved $major_tag to $(git rev-parse --short "$commit")"

commands=(
  "git push $remote $branch"
  "git push $remote refs/tags/$tag"
  "git push --force $remote refs/tags/$major_tag"
)
if $push; then
  for command in "${commands[@]}"; do
    echo "== $command"
    # shellcheck disable=SC2086 # each command is split into its words on purpose
    if ! $command; then
      echo "The tags exist locally. Fix the cause, then run what is left of:" >&2
      printf '  %s\n' "${commands[@]}" >&2
      die "'$command' failed"
    fi
  done
  echo "== released $tag"
else
  echo "To publish, push the branch, the new tag, and the moved major tag:"
  printf '  %s\n' "${commands[@]}"
fi
