#!/usr/bin/env bash
# Idempotent environment set-up for detectron2-unlock. Source it or run it:
#   source tools/setup_env.sh      -> activates the environment in the current shell
# Uses an already importable detectron2+torch (e.g. a user's CUDA build) when UNLOCK_USE_SYSTEM=1
# or when the active python already has both; otherwise builds .venv/ in the repository root.
set -euo pipefail
_UNLOCK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_UNLOCK_VENV="${UNLOCK_VENV:-$_UNLOCK_ROOT/.venv}"
_UNLOCK_STAMP="$_UNLOCK_VENV/.unlock-setup-done"
_UNLOCK_LOCK="$_UNLOCK_ROOT/requirements-lock.txt"
_UNLOCK_REQ_HASH="$(cat "$_UNLOCK_ROOT/requirements.txt" "$_UNLOCK_LOCK" "$_UNLOCK_ROOT/setup.py" \
  "$_UNLOCK_ROOT/pyproject.toml" | sha1sum | cut -c1-12)"

_unlock_has_stack() { "$1" -c "import torch, detectron2" >/dev/null 2>&1; }

# `<python> -m pip <args>` quietly: pip's progress is hidden and so are the "Location '...' is
# ignored: it is neither a file nor a directory" warnings that a pip.conf naming absent local
# indexes prints for every package. Errors stay visible (on stdout) and pip's exit status is
# kept (pipefail; grep finding nothing is not an error).
_unlock_pip() {
  local py="$1"; shift
  "$py" -m pip "$@" -q --disable-pip-version-check 2>&1 | { grep -v "is ignored: it is neither" || true; }
}

if [[ "${UNLOCK_USE_SYSTEM:-0}" == "1" ]] || { [[ ! -d "$_UNLOCK_VENV" ]] && _unlock_has_stack python3; }; then
  echo "[setup] using the active python ($(command -v python3)) with its own torch/detectron2"
  # Build isolation (pip's default) brings a setuptools recent enough for pyproject.toml.
  _unlock_pip python3 install -e "$_UNLOCK_ROOT" --no-deps
  _unlock_pip python3 install tqdm tabulate scipy pycocotools pytest panopticapi-lite cityscapesscripts==2.3.0
else
  if [[ ! -f "$_UNLOCK_STAMP" ]] || [[ "$(cat "$_UNLOCK_STAMP")" != "$_UNLOCK_REQ_HASH" ]]; then
    t0=$(date +%s)
    echo "[setup] creating $_UNLOCK_VENV (first run takes a few minutes)"
    PY="${UNLOCK_PYTHON:-python3.11}"
    command -v "$PY" >/dev/null || PY=python3
    [[ -x "$_UNLOCK_VENV/bin/python" ]] || "$PY" -m venv "$_UNLOCK_VENV"
    VPY="$_UNLOCK_VENV/bin/python"
    # setuptools >= 77 reads pyproject.toml's license field; the editable install below builds
    # with this setuptools instead of downloading one into an isolated build environment.
    echo "[setup] pip, setuptools, wheel"
    _unlock_pip "$VPY" install --upgrade "pip<25" "setuptools>=77,<81" wheel
    echo "[setup] pinned requirements (requirements.txt, versions from requirements-lock.txt)"
    _unlock_pip "$VPY" install -r "$_UNLOCK_ROOT/requirements.txt" -c "$_UNLOCK_LOCK"
    if ! "$VPY" -c "import detectron2" >/dev/null 2>&1; then
      echo "[setup] detectron2 (sal-detectron2 0.7.2)"
      # detectron2 is not published on PyPI; sal-detectron2 0.7.2 is a faithful pure-python build
      # of upstream (its CUDA extension is skipped on import failure). Its wheel is tagged cp310,
      # the code is version-agnostic, so it is re-tagged py3 before installing.
      wheels="$_UNLOCK_VENV/wheels"; mkdir -p "$wheels"
      _unlock_pip "$VPY" download --no-deps --only-binary=:all: --python-version 3.10 -d "$wheels" sal-detectron2==0.7.2
      cp "$wheels/sal_detectron2-0.7.2-cp310-none-any.whl" "$wheels/sal_detectron2-0.7.2-py3-none-any.whl"
      _unlock_pip "$VPY" install "$wheels/sal_detectron2-0.7.2-py3-none-any.whl" -c <(grep -hv '^#' "$_UNLOCK_ROOT/requirements.txt" "$_UNLOCK_LOCK")
    fi
    echo "[setup] detectron2-unlock (editable: pyproject.toml, PEP 660)"
    _unlock_pip "$VPY" install --no-deps --no-build-isolation -e "$_UNLOCK_ROOT"
    # sal-detectron2's wheel metadata still says cp310, so pip check flags the platform; anything
    # else it reports is a real conflict. The output is captured first: under pipefail, pip
    # check's own failure status would otherwise make the test below always false.
    _unlock_check="$("$VPY" -m pip check 2>&1 || true)"
    if grep -v -e "sal-detectron2 .* is not supported on this platform" \
        -e "^No broken requirements found" <<<"$_unlock_check" | grep .; then
      echo "[setup] pip check found broken requirements" >&2; exit 1
    fi
    echo "$_UNLOCK_REQ_HASH" > "$_UNLOCK_STAMP"
    echo "[setup] environment ready in $(( $(date +%s) - t0 )) s"
  fi
  export PATH="$_UNLOCK_VENV/bin:$PATH"
  export VIRTUAL_ENV="$_UNLOCK_VENV"
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
