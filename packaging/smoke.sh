#!/usr/bin/env bash
# Build the one-folder app with PyInstaller and check that it works, without a display:
#   1. `lora-studio --version` and `lora-studio plan demo --gpu 8GB` from the bundle;
#   2. the window starts offscreen and paints its first page (a screenshot is kept);
#   3. a 2-step training run on the demo model: the bundle starts its own training worker
#      (`lora-studio -m studio.core.training.worker RUN_DIR`), trains, and writes an adapter.
# It prints the build time and the size of the folder.
#
#   packaging/smoke.sh                 build with .venv/bin/python (installs PyInstaller there if needed), then check
#   packaging/smoke.sh --no-build      check the app already in packaging/dist/lora-studio
#   PYTHON=/path/to/python packaging/smoke.sh
#
# Everything it writes goes to packaging/build, packaging/dist and a temporary folder (STUDIO_HOME),
# so it never touches the user's own runs or settings.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DIST="$HERE/dist"
APP="$DIST/lora-studio/lora-studio"
BUILD=1
[ "${1:-}" = "--no-build" ] && BUILD=0

fail() { printf 'SMOKE FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

if [ "$BUILD" = 1 ]; then
    [ -x "$PYTHON" ] || fail "no Python at $PYTHON (make the dev environment first: see README, or set PYTHON=...)"
    if ! "$PYTHON" -c 'import PyInstaller' 2>/dev/null; then
        step "Installing PyInstaller into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
        "$PYTHON" -m pip install --quiet 'pyinstaller>=6'
    fi
    step "Building the one-folder app (PyInstaller $("$PYTHON" -c 'import PyInstaller; print(PyInstaller.__version__)'))"
    started=$(date +%s)
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$HERE/build" \
        "$HERE/lora-studio.spec"
    took=$(( $(date +%s) - started ))
    echo "build time: ${took} s"
fi
[ -x "$APP" ] || fail "$APP was not built"
echo "size: $(du -sh "$DIST/lora-studio" | cut -f1) ($DIST/lora-studio), $(find "$DIST/lora-studio" -type f | wc -l) files"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export STUDIO_HOME="$WORK/home"      # runs, settings and caches of this check only
export HF_HOME="$WORK/hf"            # no hub cache of the user's
export QT_QPA_PLATFORM=offscreen
cd "$WORK"                           # nothing may come from the source checkout

step "lora-studio --version"
"$APP" --version | tee "$WORK/version.txt"
grep -q "LoRA Studio" "$WORK/version.txt" || fail "--version did not name the studio"

step "lora-studio plan demo --gpu 8GB"
"$APP" plan demo --gpu 8GB --seq-len 512 | tee "$WORK/plan.txt"
grep -q "4-bit QLoRA" "$WORK/plan.txt" || fail "the plan has no 4-bit QLoRA line"
grep -q "^total" "$WORK/plan.txt" || fail "the plan has no total"

step "The window, offscreen: first paint"
started=$(date +%s.%N)
STUDIO_STARTUP_PROBE="$WORK/probe.json" STUDIO_STARTUP_SCREENSHOT="$WORK/first-page.png" STUDIO_STARTUP_EXIT=1 \
    timeout 120 "$APP" || fail "the window did not start (exit $?)"
[ -s "$WORK/probe.json" ] || fail "the window never painted (no startup probe)"
"$PYTHON" - "$WORK/probe.json" "$WORK/first-page.png" "$started" <<'PY' || fail "the first paint is not the Model page"
import json, sys
from pathlib import Path
probe = json.loads(Path(sys.argv[1]).read_text())
shot = Path(sys.argv[2])
print(f"painted the {probe['page']!r} page, window {probe['title']!r}, "
      f"{probe['painted_at'] - float(sys.argv[3]):.1f} s after start; screenshot {shot.stat().st_size} bytes")
sys.exit(0 if probe["page"] == "model" and shot.stat().st_size > 10_000 else 1)
PY
cp "$WORK/first-page.png" "$DIST/smoke-first-page.png"

step "A 2-step training run on the demo model (the bundle's own worker)"
"$APP" train --model demo --data demo --steps 2 --seq-len 128 --sample-every 0 --eval-every 0 --quiet \
    --run-dir "$WORK/run" | tail -n 3
[ -s "$WORK/run/adapter/adapter_model.safetensors" ] || fail "the run wrote no adapter"
grep -q '"type": "finished"' "$WORK/run/events.jsonl" || fail "the run has no finished event"

echo "SMOKE PASSED: $APP (screenshot: $DIST/smoke-first-page.png)"
