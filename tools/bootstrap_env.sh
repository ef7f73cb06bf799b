#!/usr/bin/env bash
# Create (or refresh) the project-local environment `.venv` with the OpenMMLab stack that
# genview_mm is verified against, plus genview_mm itself (editable).
#
#   bash tools/bootstrap_env.sh          # idempotent: a second run takes seconds
#
# Environment variables:
#   GENVIEW_VENV        where the venv lives            (default: <repo>/.venv)
#   GENVIEW_CACHE       where built wheels are cached   (default: ~/.cache/genview_mm)
#   PYTHON              interpreter that creates the venv (default: python3)
#   FORCE_CUDA=1        build mmcv's CUDA ops even if no GPU is visible (needs nvcc);
#                       by default they are built exactly when torch sees a GPU.
#   GENVIEW_TORCH_SPEC  pip spec for torch/torchvision (default: torch==2.14.1 torchvision==0.29.1),
#                       pip options included, e.g. '--index-url https://download.pytorch.org/whl/cpu
#                       torch==2.14.1 torchvision==0.29.1'
#   MAX_JOBS            compile jobs of the mmcv build (default: the CPUs this process may use,
#                       at most its cgroup's CPU quota)
set -euo pipefail

unset CDPATH  # a relative cd would print its CDPATH match into $(...)
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GENVIEW_VENV:-$REPO/.venv}"
CACHE="${GENVIEW_CACHE:-$HOME/.cache/genview_mm}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${GENVIEW_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
MMCV_VERSION=2.1.0
# every other version (what the stack pulls in too): tools/constraints.txt, given to each pip
# install below but torch's (it pins what is verified: a new release cannot change the venv)
CONSTRAINTS="$REPO/tools/constraints.txt"
STACK=(
  "mmengine==0.10.7" "mmpretrain==1.2.0" "mmdet==3.3.0"
  "diffusers==0.42.1" "transformers==5.23.0" "huggingface-hub>=1.32"
  "numpy>=2,<2.5" "timm==1.0.31" "scikit-image" "scikit-learn" "pycocotools" "tqdm" "pytest==9.2.0" "ninja" "psutil"
  "tensorboard" "accelerate" "ruff==0.17.6"
)

# one bootstrap of a venv at a time (tools/run_demo.sh and tools/run_tests.sh started together
# would both pip-install into it): the second waits, then finds it up to date
# (a filesystem without locks, or a lock file of another user: on without it)
lock="$CACHE/bootstrap-$(printf '%s' "$VENV" | sha256sum | cut -c1-16).lock"
if command -v flock >/dev/null 2>&1 && mkdir -p "$CACHE" 2>/dev/null && touch "$lock" 2>/dev/null \
   && [ -w "$lock" ]; then
  exec 9>>"$lock"
  held=0; flock -n 9 || held=$?
  if [ "$held" = 1 ]; then
    echo "[bootstrap] another bootstrap of $VENV is running: waiting for it to finish"
    flock 9 || held=$?
  fi
  [ "$held" = 0 ] || [ "$held" = 1 ] || echo "[bootstrap] cannot lock $lock (flock status $held): going on without the lock"
fi

step() { printf '\n[bootstrap] %s\n' "$*"; }
fail() { printf '\n[bootstrap] FAILED at step: %s\n[bootstrap] fix: %s\n' "$1" "$2" >&2; exit 1; }

[ -f "$CONSTRAINTS" ] || fail "constraints" "$CONSTRAINTS is missing: run from a full clone of the repository"
# Everything that decides what gets installed goes into the stamp; same stamp -> nothing to do.
# A visible GPU too: a venv bootstrapped on a CPU node has mmcv without CUDA ops (step 4).
gpu=""; if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=gpu; fi
stamp_src="$(cat "${BASH_SOURCE[0]}" "$REPO/setup.py" "$CONSTRAINTS"; echo "$TORCH_SPEC ${FORCE_CUDA:-} $gpu")"
stamp="$(printf '%s' "$stamp_src" | sha256sum | cut -d' ' -f1)"
# The editable install serves genview_mm/.mim/{configs,tools} as links to configs/ and tools/; a
# copy there (left by an older non-editable build) goes stale silently: reinstall to relink.
mim_ok=1
for name in configs tools; do
  link="$REPO/genview_mm/.mim/$name"
  if [ ! -e "$link" ] && [ ! -L "$link" ]; then
    mim_ok=0  # not installed yet (a fresh clone)
  elif [ ! -L "$link" ] || [ "$(cd "$link" 2>/dev/null && pwd -P)" != "$(cd "$REPO/$name" && pwd -P)" ]; then
    echo "[bootstrap] genview_mm/.mim/$name is not a link to $name/ (a stale copy?): reinstalling genview_mm"
    mim_ok=0
  fi
done
if [ "$mim_ok" = 1 ] && [ -f "$VENV/.genview_stamp" ] && [ "$(cat "$VENV/.genview_stamp")" = "$stamp" ] \
   && "$VENV/bin/python" -c "import genview_mm" >/dev/null 2>&1; then
  # a venv shared by two checkouts (GENVIEW_VENV) serves the last one installed: outside its
  # folder, and for genview_mm:: configs, this checkout would run the other one's code
  served="$(cd / && "$VENV/bin/python" -c 'import os, genview_mm; print(os.path.dirname(os.path.realpath(genview_mm.__file__)))' 2>/dev/null)" \
    || served="a checkout that is gone"
  if [ -n "$served" ] && [ "$served" != "$(cd "$REPO" && pwd -P)/genview_mm" ]; then
    echo "[bootstrap] $VENV serves genview_mm from $served: installing this checkout instead"
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation -e "$REPO" \
      || fail "genview_mm" "run from a full clone of the repository"
  fi
  echo "[bootstrap] environment $VENV is up to date"
  exit 0
fi

step "1/6 virtual environment at $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || fail "create venv" "install python3-venv (Debian: apt-get install python3-venv) or set PYTHON=/path/to/python3.11"
elif ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  # a venv whose creation stopped before pip (Debian without python3-venv, or Ctrl-C)
  echo "[bootstrap] $VENV has no pip (its creation stopped early?): adding it with ensurepip"
  "$VENV/bin/python" -m ensurepip --upgrade >/dev/null \
    || fail "venv pip" "install python3-venv (Debian: apt-get install python3-venv), or delete $VENV, and run again"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail "python version" "$VENV has Python $("$PY" -c 'import platform; print(platform.python_version())'); the pinned torch needs 3.10 or newer (3.11 verified): delete $VENV and set PYTHON=/path/to/python3.11"
PIP=("$PY" -m pip --disable-pip-version-check)

# mmcv is built from source where no wheel is cached: a missing compiler, or Python's headers
# (Python.h: Debian's python3 has none without python3-dev), is named now, not after torch's
# download (~3 GB) and minutes into the compile
if ! "$PY" -c "import mmcv.ops" >/dev/null 2>&1 \
   && ! ls "$CACHE"/wheels/mmcv-"$MMCV_VERSION"-*/mmcv-*.whl >/dev/null 2>&1; then
  if ! command -v "${CXX:-c++}" >/dev/null 2>&1; then
    fail "C++ compiler" "mmcv $MMCV_VERSION is built from source here (no wheel in $CACHE/wheels): install a C++20 compiler (gcc>=10; Debian: apt-get install g++) or set CXX, and run again"
  fi
  if ! "$PY" -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
    fail "Python headers" "mmcv $MMCV_VERSION is built from source here (no wheel in $CACHE/wheels) and needs Python.h, which $("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null) lacks: install Python's headers for $("$PY" -c 'import platform; print("Python", platform.python_version())' 2>/dev/null) (Debian/Ubuntu: apt-get install python3-dev, or python3.X-dev for PYTHON=python3.X; Fedora: dnf install python3-devel), and run again"
  fi
fi

step "2/6 build tools (pip, setuptools>=77,<81: mmcv and mmengine still import pkg_resources)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --upgrade pip "setuptools>=77,<81" wheel \
  || fail "build tools" "check network access to PyPI"

step "3/6 PyTorch ($TORCH_SPEC)"
# A CUDA build of torch is ~3 GB of wheels that unpack to ~5.5 GB. One `pip install` holds every
# wheel on disk until all are unpacked, and pip's cache keeps a second copy (CI's fresh machines
# ran out of disk there). So: ask pip what it would install, then install it one wheel at a time
# without the cache: the peak is the venv plus the largest wheel.
free_gb() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }'; }
torch_failed() {
  local tmp="${TMPDIR:-/tmp}"
  fail "torch" "if pip said 'No space left on device': torch with its CUDA libraries takes ~5.5 GB in $VENV ($(free_gb "$VENV") GB free there) and room for one wheel (<1 GB) in $tmp ($(free_gb "$tmp") GB free): free space or set GENVIEW_VENV / TMPDIR to a larger disk. Otherwise set GENVIEW_TORCH_SPEC to a torch/torchvision pair your platform has"
}
# the spec's pip options (an index for a CPU or CUDA build) go to every install below too
read -r -a spec_words <<< "$TORCH_SPEC"
spec_opts=(); i=0
while [ "$i" -lt "${#spec_words[@]}" ]; do
  case "${spec_words[$i]}" in
    # pip install's options that take a value (pip 26); --opt=value forms are one word
    -i|--index-url|--extra-index-url|-f|--find-links|--trusted-host|-c|--constraint|-r|\
    --requirement|--build-constraint|--proxy|--cert|--client-cert|--timeout|--retries|\
    --no-binary|--only-binary|--platform|--python-version|--implementation|--abi|-C|\
    --config-settings|--keyring-provider|--use-feature|--use-deprecated|--progress-bar|\
    --exists-action|--upgrade-strategy|--resume-retries|--log|--cache-dir|--uploaded-prior-to)
      spec_opts+=("${spec_words[$i]}" "${spec_words[$((i + 1))]:-}"); i=$((i + 2)); continue;;
    -*) spec_opts+=("${spec_words[$i]}");;
  esac
  i=$((i + 1))
done
report="$(mktemp)"
# shellcheck disable=SC2086
"${PIP[@]}" install -q --no-cache-dir --dry-run --report "$report" $TORCH_SPEC || torch_failed
pins="$("$PY" -c 'import json, sys
with open(sys.argv[1]) as f:
    text = f.read()
for item in (json.loads(text).get("install", []) if text.strip() else []):
    print(item["metadata"]["name"] + "==" + item["metadata"]["version"])' "$report")" || torch_failed
rm -f "$report"
for pin in $pins; do
  "${PIP[@]}" install -q --no-cache-dir --no-deps ${spec_opts[@]+"${spec_opts[@]}"} "$pin" || torch_failed
done
# shellcheck disable=SC2086
"${PIP[@]}" install -q --no-cache-dir $TORCH_SPEC || torch_failed  # nothing left to fetch: checks

step "4/6 mmcv $MMCV_VERSION with ops (built once, cached in $CACHE)"
# compile jobs (unless MAX_JOBS is set): the CPUs this process may use (its affinity), at most its
# cgroup's CPU quota (a container's --cpus, which nproc does not see; a CUDA build with one
# job per CPU of the host could run out of memory). GENVIEW_CGROUP_ROOT: for the tests.
build_jobs() {
  local n quota period root="${GENVIEW_CGROUP_ROOT:-/sys/fs/cgroup}"
  n="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"  # nproc obeys these: 1 on many clusters
  if [ -r "$root/cpu.max" ]; then  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"
    read -r quota period < "$root/cpu.max"
  elif [ -r "$root/cpu/cpu.cfs_quota_us" ]; then  # v1: -1 for none
    quota="$(cat "$root/cpu/cpu.cfs_quota_us")"; period="$(cat "$root/cpu/cpu.cfs_period_us" 2>/dev/null)"
  fi
  if [[ "${quota:-}" =~ ^[0-9]+$ && "${period:-}" =~ ^[1-9][0-9]*$ ]]; then
    quota=$(( (quota + period - 1) / period ))
    [ "$quota" -lt "$n" ] && n="$quota"
  fi
  echo $(( n < 1 ? 1 : n ))
}
with_cuda="$("$PY" -c 'import os,torch; print(int(torch.cuda.is_available() or os.environ.get("FORCE_CUDA")=="1"))')"
tag="cpu"; [ "$with_cuda" = 1 ] && tag="cuda$("$PY" -c 'import torch; print(torch.version.cuda)')"
torch_ver="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
py_tag="$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
# one cache for every node and venv: the wheel is for one torch, CUDA, Python and machine
wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$torch_ver-$tag-$py_tag-$(uname -m)"
# installed at this version, with CUDA ops where they are to be built (a CUDA build serves CPUs too)
mmcv_ok="import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'; from mmcv.ops import get_compiling_cuda_version as cuda; assert not $with_cuda or cuda() != 'not available'"
if ! "$PY" -c "$mmcv_ok" >/dev/null 2>&1; then
  reinstall=()
  if "$PY" -c "import mmcv" >/dev/null 2>&1; then  # another build of it (pip would keep it)
    echo "[bootstrap] the installed mmcv is not mmcv $MMCV_VERSION with ${tag/cpu/CPU} ops: replacing it"
    reinstall=(--force-reinstall --no-deps)
  fi
  if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
    echo "[bootstrap] no cached wheel in $wheel_dir: building from the sdist (~12 min on 2 cores CPU-only, longer with CUDA)"
    build="$(mktemp -d)"
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build" \
      || fail "mmcv download" "check network access to PyPI (the mmcv $MMCV_VERSION sdist)"
    tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
    # torch>=2.5 headers need C++20; mmcv 2.1.0's setup.py asks for C++14/17.
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
    "${PIP[@]}" install -q -c "$CONSTRAINTS" ninja psutil "numpy>=2,<2.5" addict packaging Pillow pyyaml yapf opencv-python "mmengine==0.10.7" \
      || fail "mmcv build requirements" "check network access to PyPI"
    mkdir -p "$wheel_dir"
    if [ "$with_cuda" = 1 ]; then export FORCE_CUDA=1; fi
    jobs="${MAX_JOBS:-$(build_jobs)}"
    echo "[bootstrap] compiling with MAX_JOBS=$jobs (set MAX_JOBS to change it)"
    (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="$jobs" \
        "${PIP[@]}" wheel --no-build-isolation --no-deps . -w "$wheel_dir.tmp") \
      || fail "mmcv build" "see the compiler output above; a C++20 compiler (gcc>=10) is required; for CUDA ops nvcc must match torch.version.cuda"
    mv "$wheel_dir.tmp"/mmcv-*.whl "$wheel_dir"/
    rm -rf "$wheel_dir.tmp" "$build"
  fi
  "${PIP[@]}" install -q ${reinstall[@]+"${reinstall[@]}"} "$wheel_dir"/mmcv-*.whl \
    || fail "mmcv install" "delete $wheel_dir and run again to rebuild"
fi

step "5/6 OpenMMLab, diffusers, transformers, test tools"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "${STACK[@]}" "mmcv==$MMCV_VERSION" \
  || fail "stack" "check network access to PyPI; versions are pinned in tools/bootstrap_env.sh and tools/constraints.txt"

step "6/6 genview_mm (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$REPO" || fail "genview_mm" "run from a full clone of the repository"
probe_dir="$(mktemp -d)"; probe="$probe_dir/probe_cfg.py"
echo "_base_ = 'genview_mm::demo/mocov2_r18_tiny_cpu.py'" > "$probe"
probe_ok=1
"$PY" -c "import sys, genview_mm; from mmengine.config import Config; Config.fromfile(sys.argv[1])" "$probe" >/dev/null 2>&1 \
  || probe_ok=0
rm -rf "$probe_dir"
[ "$probe_ok" = 1 ] || fail "genview_mm:: config resolution" "check that $REPO/genview_mm/.mim/configs exists (re-run pip install -e $REPO)"
"$PY" -c "import genview_mm, mmcv.ops; print('[bootstrap] genview_mm', genview_mm.__version__, 'ready; mmcv ops', mmcv.__version__)" \
  || fail "import check" "see the traceback above"
echo "$stamp" > "$VENV/.genview_stamp"
echo "[bootstrap] done: activate with 'source $VENV/bin/activate'"
