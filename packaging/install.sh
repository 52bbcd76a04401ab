#!/usr/bin/env bash
# LoRA Studio installer for Linux: a private Python environment with the PyTorch build that suits
# this computer's GPU, the studio itself, a `lora-studio` command and an entry in the applications
# menu. No administrator rights are needed; nothing outside your home folder is touched.
#
#   packaging/install.sh               install, or upgrade an earlier install in place
#   packaging/install.sh --cpu         the same without the GPU (CPU build of PyTorch)
#   packaging/install.sh --uninstall   remove what the installer added (your runs and settings stay)
#   packaging/install.sh --detect      only say which GPU was found and which PyTorch build suits it
#
# See packaging/README.md (or --help) for every option.
set -euo pipefail

# Keep in step with the README's commands (`pip install torch==2.13.0 ...`).
TORCH_VERSION="2.13.0"
BNB_REQUIREMENT="bitsandbytes>=0.45"
PYTORCH_INDEX_BASE="https://download.pytorch.org/whl"
MARKER=".lora-studio-install"       # in the prefix: "this folder was made by the installer"
MANIFEST="install-manifest.txt"     # in the prefix: what the installer put outside it

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}"
BIN_HOME="$HOME/.local/bin"          # the XDG base-directory spec's place for user executables

PREFIX="$DATA_HOME/lora-studio/app"
SOURCE="$(cd "$SCRIPT_DIR/.." && pwd)"
PYTHON=""
FORCE_CPU=0
TORCH_INDEX="${LORA_STUDIO_TORCH_INDEX:-}"
ACTION="install"
DESKTOP=1

usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

Installs LoRA Studio for this user: a private environment in PREFIX, a \`lora-studio\` command in
$BIN_HOME and an entry in the applications menu. Run it again to upgrade in place.

Options:
  --prefix DIR        where the environment goes (default: $PREFIX)
  --from DIR          install the studio from this source checkout (default: $SOURCE)
  --python PYTHON     the Python to build the environment with (default: python3.11, else the newest
                      python3.x >= 3.10 found)
  --cpu               do not look for a GPU: install the CPU build of PyTorch
  --torch-index URL   take PyTorch from this wheel index; 'pip' = from pip's own configuration
                      (default: $PYTORCH_INDEX_BASE/<cpu|cu126|cu128|cu130>, chosen from the GPU driver)
  --no-desktop        no applications-menu entry and icon (e.g. on a server)
  --detect            only print the GPU found and the PyTorch build that suits it; install nothing
  --uninstall         remove what the installer added; your runs, settings and models stay
  -h, --help          this text

Your runs ($DATA_HOME/lora-studio/runs), settings ($CONFIG_HOME/lora-studio) and downloaded
models (the Hugging Face cache) are never touched by this script.
EOF
}

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf 'what to do: %s\n' "$2" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --from) [ $# -ge 2 ] || die "--from needs a folder"; SOURCE="$2"; shift 2 ;;
        --from=*) SOURCE="${1#*=}"; shift ;;
        --python) [ $# -ge 2 ] || die "--python needs a program"; PYTHON="$2"; shift 2 ;;
        --python=*) PYTHON="${1#*=}"; shift ;;
        --torch-index) [ $# -ge 2 ] || die "--torch-index needs a URL or 'pip'"; TORCH_INDEX="$2"; shift 2 ;;
        --torch-index=*) TORCH_INDEX="${1#*=}"; shift ;;
        --cpu) FORCE_CPU=1; shift ;;
        --no-desktop) DESKTOP=0; shift ;;
        --detect) ACTION="detect"; shift ;;
        --uninstall) ACTION="uninstall"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
if [ "$ACTION" = install ]; then
    [ -d "$SOURCE" ] || die "the source folder $SOURCE does not exist." "Pass --from with a LoRA Studio checkout."
    SOURCE="$(cd "$SOURCE" && pwd)"  # pip must see a path, not a package name
fi
PREFIX="${PREFIX%/}"
VENV="$PREFIX/venv"
LAUNCHER="$PREFIX/bin/lora-studio"
APPS_DIR="$DATA_HOME/applications"
ICONS_DIR="$DATA_HOME/icons/hicolor"
DESKTOP_FILE="$APPS_DIR/lora-studio.desktop"
LINK="$BIN_HOME/lora-studio"

# ---------------------------------------------------------------------------------------------
# Safety: the prefix must never hold the user's runs, because --uninstall deletes the prefix.
# ---------------------------------------------------------------------------------------------

check_prefix() {
    local runs="$DATA_HOME/lora-studio/runs" p
    for p in "$HOME" "$DATA_HOME" "$DATA_HOME/lora-studio" "$CONFIG_HOME" "$CONFIG_HOME/lora-studio" "/" "${STUDIO_HOME:-/nonexistent}"; do
        [ "${PREFIX}" = "${p%/}" ] && die "the prefix $PREFIX would hold your own files (runs, settings)." \
            "Choose a folder of its own, e.g. --prefix $DATA_HOME/lora-studio/app (the default)."
    done
    case "$runs/" in "$PREFIX"/*) die "the prefix $PREFIX contains the runs folder $runs." \
        "Choose a folder of its own, e.g. --prefix $DATA_HOME/lora-studio/app (the default)." ;; esac
    if [ -d "$PREFIX" ] && [ ! -e "$PREFIX/$MARKER" ] && [ -n "$(ls -A "$PREFIX" 2>/dev/null)" ]; then
        die "$PREFIX already holds files that this installer did not put there." \
            "Choose an empty or new folder with --prefix."
    fi
}

# A word for a POSIX shell script, in single quotes.
sh_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# A path as an argument of a desktop entry's Exec key (quoted when it needs to be).
desktop_quote() {
    set -- "$(printf '%s' "$1" | sed 's/%/%%/g')"  # a literal % is %% in Exec
    case "$1" in
        *[[:space:]\"\'\\\>\<\~\|\&\;\$\*\?\#\(\)\`]*)
            # shellcheck disable=SC2016  # the sed expressions are meant literally
            printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\\\\\/g' -e 's/"/\\\\"/g' -e 's/`/\\\\`/g' -e 's/\$/\\\\$/g')" ;;
        *) printf '%s' "$1" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# The GPU, and the PyTorch build that suits it
# ---------------------------------------------------------------------------------------------

GPU_LINES=""        # "name, memory, driver" per GPU (nvidia-smi)
CUDA_VERSION=""     # the newest CUDA the driver supports, e.g. 12.8
TORCH_TAGS="cpu"    # wheel index names to try, best first
GPU_ADVICE=""

# cu130 → needs a driver for CUDA 13.0; cu128 → 12.8 (RTX 50xx need this or newer); cu126 runs on any
# CUDA 12 driver (525 or newer) thanks to CUDA's minor-version compatibility.
tags_for_cuda() {
    local major minor n
    major="${1%%.*}"; minor="${1#*.}"; minor="${minor%%.*}"
    case "$major$minor" in *[!0-9]*|"") echo ""; return ;; esac
    n=$((major * 10 + minor))
    if [ "$n" -ge 130 ]; then echo "cu130 cu128 cu126"
    elif [ "$n" -ge 128 ]; then echo "cu128 cu126"
    elif [ "$n" -ge 120 ]; then echo "cu126"
    else echo ""
    fi
}

# The CUDA version a driver supports, for an nvidia-smi whose header does not say it.
cuda_for_driver() {
    local major="${1%%.*}"
    case "$major" in *[!0-9]*|"") echo ""; return ;; esac
    if [ "$major" -ge 580 ]; then echo "13.0"
    elif [ "$major" -ge 570 ]; then echo "12.8"
    elif [ "$major" -ge 560 ]; then echo "12.6"
    elif [ "$major" -ge 525 ]; then echo "12.0"
    else echo "11.x"
    fi
}

detect_gpu() {
    if [ "$FORCE_CPU" = 1 ]; then
        TORCH_TAGS="cpu"
        GPU_ADVICE="--cpu was given: the CPU build of PyTorch (training runs on the processor, slowly)."
        return
    fi
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        TORCH_TAGS="cpu"
        if command -v lspci >/dev/null 2>&1 && lspci 2>/dev/null | grep -qi 'vga.*nvidia\|3d.*nvidia'; then
            GPU_ADVICE="An NVIDIA card is in this computer but its driver is not installed (no nvidia-smi). Install the NVIDIA driver (e.g. 'sudo ubuntu-drivers install' or your distribution's nvidia-driver package), restart, and run this installer again. Until then: the CPU build."
        else
            GPU_ADVICE="No NVIDIA GPU found (no nvidia-smi): the CPU build of PyTorch. Training works on the processor, slowly: fine for the demo model, not for real models."
        fi
        return
    fi
    GPU_LINES="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true)"
    if [ -z "$GPU_LINES" ]; then
        TORCH_TAGS="cpu"
        GPU_ADVICE="nvidia-smi is installed but found no working GPU (is the driver loaded? try 'nvidia-smi' and restart after a driver update). Until then: the CPU build."
        return
    fi
    CUDA_VERSION="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' | head -n 1 || true)"
    if [ -z "$CUDA_VERSION" ]; then
        CUDA_VERSION="$(cuda_for_driver "$(printf '%s\n' "$GPU_LINES" | head -n 1 | awk -F', ' '{print $3}')")"
    fi
    TORCH_TAGS="$(tags_for_cuda "$CUDA_VERSION")"
    if [ -z "$TORCH_TAGS" ]; then
        TORCH_TAGS="cpu"
        GPU_ADVICE="The NVIDIA driver supports only CUDA $CUDA_VERSION; PyTorch $TORCH_VERSION needs CUDA 12 (driver 525 or newer). Update the NVIDIA driver and run this installer again. Until then: the CPU build."
    else
        GPU_ADVICE="NVIDIA driver with CUDA $CUDA_VERSION: the CUDA build of PyTorch (${TORCH_TAGS%% *}) and bitsandbytes for 4-bit training on the GPU."
    fi
}

print_detection() {
    if [ -n "$GPU_LINES" ]; then
        printf '%s\n' "$GPU_LINES" | while IFS= read -r line; do note "GPU: $line"; done
        note "CUDA (driver): $CUDA_VERSION"
    else
        note "GPU: none found"
    fi
    note "PyTorch build: ${TORCH_TAGS%% *} (torch==$TORCH_VERSION from $(torch_index_for "${TORCH_TAGS%% *}"))"
    note "$GPU_ADVICE"
}

torch_index_for() {
    if [ -n "$TORCH_INDEX" ]; then printf '%s' "$TORCH_INDEX"; else printf '%s/%s' "$PYTORCH_INDEX_BASE" "$1"; fi
}

# ---------------------------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------------------------

python_ok() {  # $1: a Python program; true when it is >= 3.10 and can make a virtual environment
    "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

find_python() {
    if [ -n "$PYTHON" ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "the Python '$PYTHON' was not found." "Give the full path with --python."
        python_ok "$PYTHON" || die "$PYTHON is older than 3.10 or cannot make virtual environments." \
            "Install Python 3.11 with its venv module (Debian/Ubuntu: sudo apt install python3.11-venv) and pass --python python3.11."
        return
    fi
    local candidate
    for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            PYTHON="$candidate"
            return
        fi
    done
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
        die "python3 cannot make virtual environments (its venv/ensurepip module is missing)." \
            "Debian/Ubuntu: sudo apt install python3-venv   Fedora: sudo dnf install python3   then run this installer again."
    fi
    die "no Python 3.10 or newer was found." \
        "Install Python 3.11 (Debian/Ubuntu: sudo apt install python3.11 python3.11-venv; Fedora: sudo dnf install python3.11), then run this installer again."
}

# ---------------------------------------------------------------------------------------------
# Install / upgrade
# ---------------------------------------------------------------------------------------------

MANIFEST_ENTRIES=()
record() { MANIFEST_ENTRIES+=("$1"); }

pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

index_reachable() {  # $1: a wheel index URL
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
url = sys.argv[1].rstrip("/") + "/torch/"
with urllib.request.urlopen(url, timeout=15) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}

install_torch() {
    local variant_file="$PREFIX/torch-variant" previous="" force=() tag index
    [ -f "$variant_file" ] && previous="$(cat "$variant_file")"
    for tag in $TORCH_TAGS; do
        index="$(torch_index_for "$tag")"
        if [ -n "$previous" ] && [ "$previous" != "$tag" ]; then
            force=(--force-reinstall)  # e.g. a driver was installed since: swap the CPU build for the CUDA one
            note "switching PyTorch from the $previous build to the $tag build"
        fi
        if [ "$index" = "pip" ]; then
            say "Installing PyTorch $TORCH_VERSION (from pip's configured index)"
            if pip install --upgrade ${force[@]+"${force[@]}"} -c "$PREFIX/constraints.txt" "torch==$TORCH_VERSION"; then
                echo "$tag" > "$variant_file"; return 0
            fi
            continue
        fi
        if ! index_reachable "$index"; then
            warn "the PyTorch index $index cannot be reached from here; trying pip's configured index instead."
            note "(On Linux, PyPI's torch is a CUDA 12 build: it also runs on the CPU, but is a larger download.)"
            say "Installing PyTorch $TORCH_VERSION (from pip's configured index)"
            if pip install --upgrade ${force[@]+"${force[@]}"} -c "$PREFIX/constraints.txt" "torch==$TORCH_VERSION"; then
                echo "$tag" > "$variant_file"; return 0
            fi
            continue
        fi
        say "Installing PyTorch $TORCH_VERSION, $tag build, from $index"
        [ "$tag" != cpu ] && note "(a CUDA build is a download of about 2-3 GB: this can take a while)"
        if pip install --upgrade ${force[@]+"${force[@]}"} -c "$PREFIX/constraints.txt" "torch==$TORCH_VERSION" --index-url "$index"; then
            echo "$tag" > "$variant_file"; return 0
        fi
        warn "PyTorch $TORCH_VERSION is not available as a $tag build; trying the next one."
    done
    die "PyTorch $TORCH_VERSION could not be installed." \
        "Check the internet connection; if your Python is very new, try an older one with --python python3.11."
}

write_launcher() {
    mkdir -p "$PREFIX/bin"
    local tmp="$LAUNCHER.tmp"
    cat > "$tmp" <<EOF
#!/bin/sh
# LoRA Studio, installed by packaging/install.sh. With no arguments: the window.
# With arguments: the \`studio\` command (lora-studio plan demo --gpu 8GB, lora-studio doctor, ...).
PREFIX=$(sh_quote "$PREFIX")
export STUDIO_RESOURCES="\${STUDIO_RESOURCES:-\$PREFIX/resources}"
if [ "\${1:-}" = "--version" ]; then
    exec "\$PREFIX/venv/bin/python" -c 'import studio; print("LoRA Studio", studio.__version__)'
fi
exec "\$PREFIX/venv/bin/studio" "\$@"
EOF
    chmod 755 "$tmp"
    mv -f "$tmp" "$LAUNCHER"
}

copy_resources() {
    # The demo model and data, the model catalog and the icons: what resources_dir() must find (the
    # launcher points STUDIO_RESOURCES here). A pip-installed studio does not carry them itself.
    local tmp="$PREFIX/resources.new" sub
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for sub in demo-model demo-data catalog icons; do
        [ -d "$SOURCE/resources/$sub" ] || die "$SOURCE/resources/$sub is missing." "Use --from with a complete source checkout."
        cp -R "$SOURCE/resources/$sub" "$tmp/$sub"
    done
    rm -rf "$tmp/demo-model/corpus"  # only for rebuilding the demo model
    find "$tmp" -name '__pycache__' -prune -exec rm -rf {} + 2>/dev/null || true
    rm -rf "$PREFIX/resources"
    mv "$tmp" "$PREFIX/resources"
}

install_desktop_entry() {
    local template="$SCRIPT_DIR/lora-studio.desktop" tmp size
    [ -f "$template" ] || template="$SOURCE/packaging/lora-studio.desktop"
    [ -f "$template" ] || die "the desktop entry template lora-studio.desktop is missing."
    mkdir -p "$APPS_DIR"
    for size in 256 48; do
        local src="$PREFIX/resources/icons/lora-studio.png"
        [ "$size" = 48 ] && src="$PREFIX/resources/icons/lora-studio-48.png"
        mkdir -p "$ICONS_DIR/${size}x${size}/apps"
        cp "$src" "$ICONS_DIR/${size}x${size}/apps/lora-studio.png"
        record "$ICONS_DIR/${size}x${size}/apps/lora-studio.png"
    done
    mkdir -p "$ICONS_DIR/scalable/apps"
    cp "$PREFIX/resources/icons/lora-studio.svg" "$ICONS_DIR/scalable/apps/lora-studio.svg"
    record "$ICONS_DIR/scalable/apps/lora-studio.svg"

    tmp="$DESKTOP_FILE.tmp"
    # The template runs `lora-studio` from PATH; the installed entry names the launcher itself, as a
    # desktop session's PATH often lacks ~/.local/bin.
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            Exec=*) printf 'Exec=%s\n' "$(desktop_quote "$LAUNCHER")" ;;
            TryExec=*) printf 'TryExec=%s\n' "$LAUNCHER" ;;
            *) printf '%s\n' "$line" ;;
        esac
    done < "$template" > "$tmp"
    printf 'X-LoRA-Studio-Prefix=%s\n' "$PREFIX" >> "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$DESKTOP_FILE"
    record "$DESKTOP_FILE"
    if command -v desktop-file-validate >/dev/null 2>&1; then
        desktop-file-validate "$DESKTOP_FILE" || warn "desktop-file-validate has remarks on $DESKTOP_FILE (see above)."
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q "$APPS_DIR" 2>/dev/null || true; fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$ICONS_DIR/index.theme" ]; then
        gtk-update-icon-cache -q -t -f "$ICONS_DIR" 2>/dev/null || true
    fi
}

link_command() {
    mkdir -p "$BIN_HOME"
    if [ -e "$LINK" ] || [ -L "$LINK" ]; then
        if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$LAUNCHER" ]; then
            record "$LINK"
            return
        fi
        if [ -L "$LINK" ] && grep -q 'installed by packaging/install.sh' "$LINK" 2>/dev/null; then
            rm -f "$LINK"  # our launcher from another prefix: this install takes the name over
        else
            warn "$LINK exists and is not from this installer: left alone. Start the studio with $LAUNCHER."
            return
        fi
    fi
    ln -s "$LAUNCHER" "$LINK"
    record "$LINK"
}

write_manifest() {
    local tmp="$PREFIX/$MANIFEST.tmp" entry
    {
        echo "# Written by packaging/install.sh on $(date '+%Y-%m-%d %H:%M:%S'). --uninstall removes these and the prefix."
        echo "prefix $PREFIX"
        for entry in ${MANIFEST_ENTRIES[@]+"${MANIFEST_ENTRIES[@]}"}; do echo "file $entry"; done
    } > "$tmp"
    mv -f "$tmp" "$PREFIX/$MANIFEST"
}

do_install() {
    local started upgrading=0
    started=$(date +%s)
    check_prefix
    if [ ! -f "$SOURCE/pyproject.toml" ] || [ ! -d "$SOURCE/studio" ]; then
        die "$SOURCE is not a LoRA Studio source checkout." "Run the installer from the checkout (packaging/install.sh) or pass --from DIR."
    fi
    [ -e "$PREFIX/$MARKER" ] && upgrading=1
    find_python
    say "LoRA Studio installer: $( [ $upgrading = 1 ] && echo "upgrading $PREFIX" || echo "installing into $PREFIX")"
    note "Python: $PYTHON ($("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"
    note "from: $SOURCE"
    detect_gpu
    print_detection

    mkdir -p "$PREFIX"
    touch "$PREFIX/$MARKER"
    if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        warn "the environment in $VENV no longer runs (was its Python removed or upgraded?): making it again."
        rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "Creating a private Python environment in $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    say "Updating pip"
    pip install --upgrade --quiet pip || warn "pip could not be updated; going on with $(pip --version | cut -d' ' -f1-2)."
    # Later steps must not swap the PyTorch build chosen here for another one.
    printf 'torch==%s\n' "$TORCH_VERSION" > "$PREFIX/constraints.txt"

    install_torch
    say "Installing bitsandbytes (4-bit and 8-bit)"
    pip install --upgrade -c "$PREFIX/constraints.txt" "$BNB_REQUIREMENT"
    say "Installing LoRA Studio from $SOURCE"
    # Not editable: the install keeps working when the checkout moves or goes. --upgrade with the
    # default only-if-needed strategy refreshes the studio and leaves suitable dependencies alone.
    pip install --upgrade -c "$PREFIX/constraints.txt" "$SOURCE"
    copy_resources
    write_launcher
    link_command
    if [ "$DESKTOP" = 1 ]; then
        say "Adding LoRA Studio to the applications menu"
        install_desktop_entry
    fi
    write_manifest

    say "Checking the installation (lora-studio doctor)"
    local doctor
    if doctor="$("$LAUNCHER" doctor --json 2>/dev/null)"; then
        "$VENV/bin/python" - "$doctor" <<'PY' || true
import json, sys
r = json.loads(sys.argv[1])
gpus = r.get("gpus") or []
print("    GPU:", ", ".join(f"{g['name']} ({g['total_gib']} GiB)" for g in gpus) if gpus else "none found")
print("    PyTorch:", r.get("torch"), "- CUDA build:", r.get("cuda_build"), "- CUDA available:", r.get("cuda_available"))
print("    bitsandbytes:", r.get("bitsandbytes"), "-", r.get("bitsandbytes_backend"))
print("    4-bit training on the GPU:", "yes" if str(r.get("bitsandbytes_backend", "")).startswith("cuda") else "no")
missing = r.get("window_libraries_missing") or []
if missing:
    from studio.core.window_libraries import debian_package
    print("    The window needs system libraries this computer lacks:", ", ".join(missing))
    print("    Install them with:  sudo apt install " + " ".join(debian_package(lib) for lib in missing))
PY
    else
        warn "'lora-studio doctor' did not run: see the messages above."
    fi

    local took=$(( $(date +%s) - started ))
    echo
    say "Done in $((took / 60)) min $((took % 60)) s. LoRA Studio $("$LAUNCHER" --version | awk '{print $NF}') is installed."
    note "Start it from the applications menu (LoRA Studio), or run: lora-studio"
    [ "$(command -v lora-studio 2>/dev/null || true)" = "$LINK" ] || \
        note "($BIN_HOME is not on your PATH: run $LAUNCHER, or add $BIN_HOME to PATH)"
    note "Commands: lora-studio plan demo --gpu 8GB, lora-studio train ..., lora-studio doctor"
    note "Installed: $VENV (environment), $LAUNCHER, $LINK"
    [ "$DESKTOP" = 1 ] && note "           $DESKTOP_FILE and the icon in $ICONS_DIR"
    note "Your runs go to $DATA_HOME/lora-studio/runs; settings to $CONFIG_HOME/lora-studio."
    note "Upgrade: run this installer again.  Remove: $SCRIPT_DIR/install.sh --uninstall$( [ "$PREFIX" != "$DATA_HOME/lora-studio/app" ] && printf ' --prefix %s' "$(sh_quote "$PREFIX")")"
}

# ---------------------------------------------------------------------------------------------
# Uninstall: exactly what the manifest lists, then the prefix. Runs and settings stay.
# ---------------------------------------------------------------------------------------------

do_uninstall() {
    check_prefix
    if [ ! -e "$PREFIX/$MARKER" ]; then
        say "Nothing to remove: no LoRA Studio installation in $PREFIX."
        return 0
    fi
    say "Removing LoRA Studio from $PREFIX"
    if [ -f "$PREFIX/$MANIFEST" ]; then
        local kind path
        while IFS=' ' read -r kind path; do
            [ "$kind" = "file" ] || continue
            if [ -L "$path" ] || [ -f "$path" ]; then
                rm -f "$path" && note "removed $path"
            fi
        done < "$PREFIX/$MANIFEST"
    fi
    rm -rf "$PREFIX"
    note "removed $PREFIX"
    rmdir "$DATA_HOME/lora-studio" 2>/dev/null || true  # only if nothing else (runs) is in it
    if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q "$APPS_DIR" 2>/dev/null || true; fi
    local runs="$DATA_HOME/lora-studio/runs"
    if [ -d "$runs" ]; then
        say "Done. Your runs are still in $runs and your settings in $CONFIG_HOME/lora-studio."
    else
        say "Done. Your settings (if any) are still in $CONFIG_HOME/lora-studio."
    fi
}

case "$ACTION" in
    detect) detect_gpu; say "GPU detection"; print_detection ;;
    uninstall) do_uninstall ;;
    install) do_install ;;
esac
