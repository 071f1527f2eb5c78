#!/usr/bin/env bash
# The README's pictures of what the step shows, made from a real lab run:
#   docs/screenshots/summary.png     the job summary of a build offloaded to two builders (summary.md)
#   docs/screenshots/annotation.png  the annotations of a failure: a builder's host key is not the pinned one
#                                    (annotation.txt, the step's own `::error …` lines)
# Each is rendered to HTML with GitHub's Markdown CSS (scripts/render-summary.mjs) and screenshotted with headless
# Chromium, then its empty bottom is cut off (scripts/png-trim.mjs).
#
#   bash scripts/screenshots.sh            from the committed docs/screenshots/*.md and *.txt
#   bash scripts/screenshots.sh --capture  first captures them again from the lab (when it is up: bash lab/up.sh)
#
# Needs `npm ci` done, and Chromium (Debian's `chromium`, installed with apt when missing and run as root) with an
# emoji font (`fonts-noto-color-emoji`). SCALE (default 2) is the device pixel ratio of the pictures.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

dir=docs/screenshots
lab_json=/var/lib/nix-offload-lab/lab.json
scale=${SCALE:-2}
capture=false
for arg in "$@"; do
  case $arg in
    --capture) capture=true ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    *)
      echo "screenshots.sh: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done
[[ $scale =~ ^[1-4]$ ]] || {
  echo "screenshots.sh: SCALE must be 1 to 4, not $scale" >&2
  exit 2
}

for package in marked github-markdown-css; do
  [[ -d node_modules/$package ]] || {
    echo "screenshots.sh: node_modules/$package is missing: run npm ci first" >&2
    exit 1
  }
done

apt_install() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "screenshots.sh: $* missing: install it (Debian: apt-get install $*)" >&2
    exit 1
  fi
  echo "installing $* from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
  apt_install chromium fonts-noto-color-emoji
  chromium=$(command -v chromium)
fi
if ! fc-list 2>/dev/null | grep -qi 'color emoji'; then
  apt_install fonts-noto-color-emoji
fi

if $capture; then
  if [[ -f $lab_json ]]; then
    echo "capturing a summary and a failure's annotations from the lab" >&2
    SUMMARY_CAPTURE_DIR=$dir npx vitest run --project lab __tests__/lab/summary-capture.test.ts
  else
    echo "the lab is not up ($lab_json is missing): using the committed $dir files" >&2
  fi
fi

work=$(mktemp -d /tmp/nix-offload-screenshots-XXXX)
trap 'rm -rf "$work"' EXIT

node scripts/render-summary.mjs summary "$dir/summary.md" "$work/summary.html"
node scripts/render-summary.mjs annotation "$dir/annotation.txt" "$work/annotation.html"

# The page's width: render-summary.mjs's content width plus its padding on both sides.
width=$(node --input-type=module -e \
  "import { CONTENT_WIDTH, PAGE_PADDING } from './scripts/render-summary.mjs'; console.log(CONTENT_WIDTH + 2 * PAGE_PADDING)")

# shot NAME: $work/NAME.html to $dir/NAME.png. Taken taller than the content, then cut to it; taller again if the
# content did not fit.
shot() {
  local name=$1 height=1200 status
  while :; do
    if ! "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --mute-audio \
      --disable-dev-shm-usage --user-data-dir="$work/profile" --force-device-scale-factor="$scale" \
      --window-size="$width,$height" --screenshot="$work/$name.png" "file://$work/$name.html" \
      >"$work/chromium.log" 2>&1 || [[ ! -s $work/$name.png ]]; then
      cat "$work/chromium.log" >&2
      echo "screenshots.sh: chromium did not take $name.png" >&2
      exit 1
    fi
    status=0
    node scripts/png-trim.mjs "$work/$name.png" "$dir/$name.png" --margin $((16 * scale)) || status=$?
    ((status == 3)) || return "$status"
    ((height < 12800)) || {
      echo "screenshots.sh: $name is taller than $height px" >&2
      exit 1
    }
    height=$((height * 2))
    rm -f "$work/$name.png"
  done
}
shot summary
shot annotation
echo "wrote $dir/summary.png and $dir/annotation.png" >&2
