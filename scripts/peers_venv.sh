#!/usr/bin/env bash
# Build the peer trackers' venvs for benchmarks/tracker_peers.py (not the product, tests or CI).
#
#   .cache/peers-venv    roboflow `trackers` (numpy 2). trackers and supervision go in with
#                        --no-deps because they declare opencv-python (non-headless); we give them
#                        opencv-python-headless and the small pure-Python deps they import instead.
#   .cache/norfair-venv  norfair, which pins numpy<2, so it cannot share a venv with the product.
#
# Idempotent: an existing venv that already imports its tracker is left as it is.
# Usage: bash scripts/peers_venv.sh   (from anywhere; needs PyPI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [ -x "$root/.venv/bin/python" ]; then
    # the product venv's interpreter (same Python version as the product)
    python="$(readlink -f "$root/.venv/bin/python")"
fi

make_venv() {  # make_venv DIR: a fresh venv with an up-to-date pip
    "$python" -m venv "$1"
    "$1/bin/python" -m pip install -q --upgrade pip
}

peers="$root/.cache/peers-venv"
if ! "$peers/bin/python" -c 'import trackers' >/dev/null 2>&1; then
    echo "peers_venv: building $peers" >&2
    rm -rf "$peers"
    make_venv "$peers"
    "$peers/bin/pip" install -q 'numpy>=2' scipy opencv-python-headless rich 'pydeprecate<0.14' \
        requests pyyaml defusedxml pillow tqdm matplotlib
    "$peers/bin/pip" install -q --no-deps trackers==2.6.1 supervision==0.31.2
    "$peers/bin/python" -c 'import trackers, cv2; print("trackers", trackers.__name__, "cv2", cv2.__version__)'
fi

norfair="$root/.cache/norfair-venv"
if ! "$norfair/bin/python" -c 'import norfair' >/dev/null 2>&1; then
    echo "peers_venv: building $norfair" >&2
    rm -rf "$norfair"
    make_venv "$norfair"
    "$norfair/bin/pip" install -q 'numpy<2' norfair==2.3.0
    "$norfair/bin/python" -c 'import norfair, numpy; print("norfair ok, numpy", numpy.__version__)'
fi
echo "peers_venv: ready ($peers, $norfair)" >&2
