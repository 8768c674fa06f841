#!/usr/bin/env bash
# Installs mekit into ./.venv (or $MEKIT_VENV) on a fresh machine.
#
#   bash scripts/install.sh          # mekit and everything it needs
#   bash scripts/install.sh --dev    # plus the test tools
#   bash scripts/install.sh --gpu    # a CUDA build of torch (Linux with an NVIDIA driver)
#   bash scripts/install.sh --dev --gpu
#
# Order matters: the CPU build of torch goes in first and is pinned for every
# later pip call (scripts/constraints.txt), otherwise a dependency that admits
# a newer torch pulls a CUDA build with several GB of nvidia-* packages.
# mediapipe is installed with --no-deps: its metadata asks for numpy<2, jax and
# the non-headless OpenCV, none of which it needs to run its bundled models.
# With --gpu, torch 2.13.0 comes from the default index, which on Linux is the CUDA build with
# its nvidia-* runtime packages; the same pin keeps later calls from replacing it, and the
# CPU-only checks at the end are skipped.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MEKIT_VENV:-$here/.venv}
extras=""
gpu=0
for arg in "$@"; do
    case "$arg" in
        --dev) extras="[dev]" ;;
        --gpu) gpu=1 ;;
        *) echo "usage: bash scripts/install.sh [--dev] [--gpu]" >&2; exit 2 ;;
    esac
done

python_bin=${PYTHON:-python3.11}
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
"$python_bin" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"mekit needs Python 3.11, found {sys.version.split()[0]}")
PY

[ -x "$venv/bin/python" ] || "$python_bin" -m venv "$venv"
c=(-c "$here/scripts/constraints.txt")
pip_install() {
    # Quiet, minus the one-line notices some pip configurations print for every absent
    # mirror folder; a failing pip stops the install with its full message.
    local log rc=0
    log=$(mktemp)
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || rc=$?
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    rm -f "$log"
    return "$rc"
}

if [ "$gpu" = 1 ]; then
    # pip would keep an installed CPU build that satisfies the pin; replace it
    if "$venv/bin/python" -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else 1)" 2>/dev/null; then
        pip_install --force-reinstall --no-deps "torch==2.13.0" --no-cache-dir
    fi
fi
pip_install "torch==2.13.0"
pip_install "${c[@]}" --no-deps "mediapipe==0.10.21"
pip_install "${c[@]}" -e "$here$extras"

if [ "$gpu" = 1 ]; then
    "$venv/bin/python" -c "import torch, sys; v=torch.__version__; sys.exit(0 if v.startswith('2.13.0') and torch.version.cuda else f'error: expected a CUDA build of torch 2.13.0, found {v} (cuda={torch.version.cuda})')"
    "$venv/bin/python" -c "import torch; print('CUDA device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none visible (check the NVIDIA driver)')"
    echo "mekit installed in $venv (CUDA build of torch)"
    exit 0
fi
if "$venv/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "error: nvidia-* packages were installed; mekit must stay on the CPU-only torch:" >&2
    "$venv/bin/python" -m pip list 2>/dev/null | grep -i '^nvidia-' >&2
    exit 1
fi
"$venv/bin/python" -c "import torch, sys; v=torch.__version__; sys.exit(0 if v.startswith('2.13.0') and not torch.version.cuda else f'error: expected torch 2.13.0 CPU, found {v} (cuda={torch.version.cuda})')"
echo "mekit installed in $venv"
