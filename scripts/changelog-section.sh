#!/usr/bin/env bash
# Prints the body of CHANGELOG.md's section for one version: the lines after its "## [X.Y.Z] - YYYY-MM-DD" heading, up
# to the next "## " heading or the link definitions at the end ("[X.Y.Z]: https://…"), without the blank lines around
# them. .github/workflows/release.yml makes these the notes of the GitHub Release of the tag vX.Y.Z.
#
#   scripts/changelog-section.sh X.Y.Z [CHANGELOG.md]
#
# It fails, saying why, on a version that is not X.Y.Z, a missing file, a file with no "## [X.Y.Z]" heading, and a
# section with nothing in it. The heading is matched as scripts/release.sh matches it: "## [0.1.0]" is not "## [0.1.01]".
set -euo pipefail

die() {
  echo "changelog-section: $*" >&2
  exit 1
}

(($# >= 1 && $# <= 2)) || die "usage: scripts/changelog-section.sh X.Y.Z [CHANGELOG.md]"
version=$1
file=${2:-CHANGELOG.md}
[[ $version =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] ||
  die "'$version' is not a version X.Y.Z (three numbers, no leading zeros, no 'v', no pre-release)"
[[ -f $file ]] || die "there is no $file"

# The body is buffered, so that the blank lines before the next heading can be dropped; exit 3: no heading.
section=$(awk -v heading="## [$version]" '
  !found && index($0, heading) == 1 && (length($0) == length(heading) || substr($0, length(heading) + 1, 1) == " ") {
    found = 1; next
  }
  found && (/^## / || /^\[[^]]+\]: /) { exit }
  found && !started && /^[ \t\r]*$/ { next }
  found { started = 1; body = body $0 "\n" }
  END {
    if (!found) exit 3
    sub(/[ \t\r\n]+$/, "", body)
    printf "%s", body
  }
' "$file") || {
  status=$?
  ((status == 3)) && die "$file has no '## [$version]' section"
  die "could not read $file (awk exited with $status)"
}
[[ -n $section ]] || die "$file's '## [$version]' section is empty"
printf '%s\n' "$section"
