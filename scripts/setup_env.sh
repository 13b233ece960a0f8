#!/usr/bin/env bash
# Build (or refresh) the project environment: .venv/ with the pinned stack and mmcv 2.1.0 with
# compiled CPU ops. Idempotent: a second run only checks and takes seconds.
#
# Variables:
#   DIFFIR_TORCH_VERSION        torch version to install (default: requirements/torch.txt, 2.14.1)
#   DIFFIR_TORCHVISION_VERSION  matching torchvision (default 0.29.1)
#   DIFFIR_PYTHON               interpreter used to create the venv (default python3)
#   DIFFIR_VENV                 venv location (default <repo>/.venv)
#   DIFFIR_CACHE                cache for built mmcv wheels (default ~/.cache/diffir_mm)
#   DIFFIR_MMCV_CUDA=1          build mmcv's CUDA kernels too (slow; DiffIR needs none of them)
#   MAX_JOBS                    parallel compile jobs for the mmcv build (default: nproc)
#   DIFFIR_NO_BROWSER=1         do not install chromium + chromedriver (the web app's browser tests
#                               then skip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DIFFIR_VENV:-$ROOT/.venv}"
PYTHON="${DIFFIR_PYTHON:-python3}"
TORCH_VERSION="${DIFFIR_TORCH_VERSION:-$(sed -n 's/^torch==//p' "$ROOT/requirements/torch.txt")}"
TORCHVISION_VERSION="${DIFFIR_TORCHVISION_VERSION:-$(sed -n 's/^torchvision==//p' "$ROOT/requirements/torch.txt")}"
CACHE="${DIFFIR_CACHE:-$HOME/.cache/diffir_mm}"
MMCV_VERSION=2.1.0
MMAGIC_VERSION=1.2.0
MMCV_FLAVOUR=cpu
[[ "${DIFFIR_MMCV_CUDA:-0}" == 1 ]] && MMCV_FLAVOUR=cuda

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }
PIP() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; return "${PIPESTATUS[0]}"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv at $VENV ($($PYTHON --version))"
  "$PYTHON" -m venv "$VENV"
fi
PY_TAG="$("$VENV/bin/python" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')"

# --- 1. python packages (skipped when the stamp matches) -----------------------------------------
STAMP_KEY="$(cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16)-$TORCH_VERSION-$TORCHVISION_VERSION"
STAMP="$VENV/.diffir_stamp"
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$STAMP_KEY" ]]; then
  log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  PIP install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  log "installing the pinned runtime and test requirements"
  PIP install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
      "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
  PIP install --no-deps "mmagic==$MMAGIC_VERSION"
  PIP install --no-deps --no-build-isolation -e "$ROOT"
  echo "$STAMP_KEY" > "$STAMP"
else
  log "python packages up to date"
fi

# --- 2. mmcv with compiled ops, from the wheel cache -----------------------------------------------
TORCH_TAG="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$PY_TAG-torch$TORCH_TAG-$MMCV_FLAVOUR"
mmcv_ok() {
  "$VENV/bin/python" - <<PYEOF >/dev/null 2>&1
import mmcv, mmcv._ext  # noqa: F401
assert mmcv.__version__ == "$MMCV_VERSION"
PYEOF
}
if mmcv_ok; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  mkdir -p "$CACHE/wheels"
  exec 9>"$CACHE/mmcv-build.lock"
  flock 9  # one build at a time; a concurrent set-up waits and then reuses the wheel
  if [[ -z "$(ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null)" ]]; then
    log "no cached mmcv wheel in $WHEEL_DIR: building mmcv $MMCV_VERSION ($MMCV_FLAVOUR ops) from source (~20 min on 2 cores)"
    BUILD="$(mktemp -d "$CACHE/build.XXXXXX")"
    trap 'rm -rf "$BUILD"' EXIT
    PIP download --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    # Current torch headers need C++20; mmcv 2.1.0 hard-codes c++14/c++17.
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    if [[ "$MMCV_FLAVOUR" == cpu ]]; then
      export CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0   # CPU ops only, even on a GPU machine
    else
      export FORCE_CUDA=1
    fi
    (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$VENV/bin/python" -m pip wheel --no-deps --no-build-isolation -w "$BUILD/dist" . \
        > "$BUILD/build.log" 2>&1) || { tail -40 "$BUILD/build.log"; log "mmcv build failed"; exit 1; }
    mkdir -p "$WHEEL_DIR.tmp" && mv "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR.tmp/" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
    log "cached $(ls "$WHEEL_DIR")"
  else
    log "reusing cached wheel $(ls "$WHEEL_DIR")"
  fi
  flock -u 9
  PIP install --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
  mmcv_ok || { log "mmcv installed but 'import mmcv._ext' fails"; exit 1; }
fi
# --- 3. a headless browser for the web app's tests (Debian's chromium + chromium-driver) ----------
have_browser() { command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; }
if have_browser; then
  log "chromium and chromedriver present"
elif [[ "${DIFFIR_NO_BROWSER:-0}" == 1 ]]; then
  log "DIFFIR_NO_BROWSER=1: no chromium; the web app's browser tests will skip"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  log "installing chromium and chromium-driver (apt) for the web app's browser tests"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$CACHE"
  { apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }; } \
      > "$CACHE/apt-chromium.log" 2>&1 || true
  have_browser || log "could not install chromium (see $CACHE/apt-chromium.log): the web app's browser tests will skip"
else
  log "no chromium/chromedriver and no root apt-get to install them: the web app's browser tests will skip"
fi
log "environment ready: $VENV"
