#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md ("The pair scorer", "View generation") in one script, on
# a machine that has python3 with torch and a GPU but not the OpenMMLab stack or diffusers (such
# as a borrowed GPU machine without network):
#
#   bash tools/benchmarks/gpu_figures.sh prepare            # here, with PyPI: wheels into .whl/
#   bash tools/benchmarks/gpu_figures.sh run OUT [WHAT]     # there: install .whl/, run, logs in OUT
#   bash tools/benchmarks/gpu_figures.sh run OUT [WHAT] --smoke   # the same at CPU size
#
# WHAT: scorer (the scorer alone, default and compiled, and the MoCo v2 / v3 steps), generator
# (real-size Stable unCLIP 2.1 with --compile) or all (default). Each benchmark runs under its own
# timeout and writes OUT/<name>.log, so a slow one leaves the others' figures: scorer at most 9
# minutes, generator under 9 (it prints each figure as it is measured; one command each: a 15-minute lease holds one of them with its
# start, both only if they finish early). `prepare` downloads
# pure-Python wheels for Python $WHEEL_PYTHON (default 3.12) and builds mmcv 2.1.0 without its
# compiled ops (mmcv-lite); none of the benchmarks needs those ops. WHEELS_DIR replaces .whl/;
# PYTHON replaces python3. `run` first checks that every package the benchmarks import is there
# (a missing one ends it in seconds, named in OUT/imports.log). .whl/ is git-ignored: a copy of
# the working tree to the GPU machine must bring it along (the device tool's carry), or `run`
# has no wheels to install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WHEELS="${WHEELS_DIR:-$ROOT/.whl}"
PY="${PYTHON:-python3}"

usage() {
  echo "usage: $0 prepare | run OUT [scorer|generator|all] [--smoke]" >&2
  exit 2
}

prepare() {
  local pip=("$PY" -m pip download -q --no-deps --only-binary=:all: --implementation cp
             --python-version "${WHEEL_PYTHON:-3.12}" --platform manylinux_2_28_x86_64
             --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS")
  mkdir -p "$WHEELS"
  # the stack and its pure-Python needs (model-index imports markdown, diffusers requests); the
  # machine must already have numpy, opencv, timm, transformers, huggingface-hub, safetensors,
  # matplotlib and scikit-image (as the 2026-12-04 H200 had)
  "${pip[@]}" mmengine==0.10.7 mmpretrain==1.2.0 diffusers==0.42.1 addict yapf termcolor \
    platformdirs mat4py modelindex model-index ordered-set importlib_metadata lazy-importer \
    einops rich markdown requests urllib3 idna certifi charset-normalizer
  local build
  build="$(mktemp -d)"
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0 -d "$build"
  tar -xzf "$build/mmcv-2.1.0.tar.gz" -C "$build"
  (cd "$build/mmcv-2.1.0" && MMCV_WITH_OPS=0 "$PY" -m pip wheel -q --no-deps \
    --no-build-isolation . -w "$WHEELS")
  rm -rf "$build"
  ls "$WHEELS"
  du -sh "$WHEELS"
}

# bench NAME SECONDS ARGS...: one benchmark under its own timeout, its log in OUT/NAME.log
bench() {
  local name="$1" limit="$2"
  shift 2
  echo "== $name (limit ${limit}s): $*" >"$OUT/$name.log"
  local rc=0
  timeout "$limit" "$PY" "$@" >>"$OUT/$name.log" 2>&1 || rc=$?
  grep -v -i -e warn -e 'it/s]' "$OUT/$name.log" | tail -n 12
  echo "== $name: exit $rc"
  if [ "$rc" != 0 ]; then FAILED="${FAILED:+$FAILED }$name"; fi
}

run() {
  OUT="$1"
  shift
  local what="" smoke="" arg
  for arg in "$@"; do  # WHAT and --smoke, in either order
    case "$arg" in
      --smoke) [ -z "$smoke" ] || usage; smoke=--smoke ;;
      scorer|generator|all) [ -z "$what" ] || usage; what="$arg" ;;
      *) usage ;;
    esac
  done
  what="${what:-all}"
  mkdir -p "$OUT"
  OUT="$(CDPATH='' cd -- "$OUT" && pwd)"  # a relative OUT still names it after the cd below
  FAILED=""
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    local site
    site="$(mktemp -d)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" "$WHEELS"/*.whl
    export PYTHONPATH="$site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "no wheels in $WHEELS: using the packages $PY already has"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
  cd "$ROOT"
  # every package the benchmarks import, in seconds: a missing one fails here, not in each log
  local needs="genview_mm, mmpretrain, timm, transformers"
  [ "$what" = scorer ] || needs="$needs, diffusers, skimage"  # the generator's (and its photos)
  if ! "$PY" -c "import $needs" >"$OUT/imports.log" 2>&1; then
    tail -n 3 "$OUT/imports.log" >&2
    echo "$0: a package the benchmarks need is missing (see $OUT/imports.log)" >&2
    return 1
  fi
  rm -f "$OUT/imports.log"
  echo "== run $what${smoke:+ $smoke}" >>"$OUT/device.log"  # appended: one OUT for each WHAT
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" | tee -a "$OUT/device.log"
  date -u '+%Y-%m-%d %H:%M UTC' | tee -a "$OUT/device.log"
  local sc=tools/benchmarks/bench_scorer.py gen=tools/benchmarks/bench_generator.py
  if [ -z "$smoke" ]; then
    if [ "$what" != generator ]; then
      bench scorer 120 "$sc" --mode scorer --preset gpu
      bench scorer_compiled 180 "$sc" --mode scorer --preset gpu --set compile=True
      bench step_mocov2 120 "$sc" --preset gpu --method MoCo --scorer convnext --steps 50 --warmup 5
      bench step_mocov3 120 "$sc" --preset gpu --method MoCoV3 --scorer convnext --steps 12 \
        --warmup 3
    fi
    if [ "$what" != scorer ]; then
      bench generator 530 "$gen" --preset real-size --device cuda --compile
    fi
  else  # the same commands at CPU size
    local cpu=(--device cpu --threads 1)
    if [ "$what" != generator ]; then
      bench scorer 300 "$sc" --mode scorer --preset cpu --pairs 2 --blocks 2 --reps 1 "${cpu[@]}"
      bench scorer_compiled 300 "$sc" --mode scorer --preset cpu --pairs 2 --blocks 2 --reps 1 \
        --set compile=True "${cpu[@]}"
      bench step_mocov2 300 "$sc" --preset cpu --method MoCo --steps 2 --warmup 1 "${cpu[@]}"
      bench step_mocov3 300 "$sc" --preset cpu --method MoCoV3 --steps 2 --warmup 1 "${cpu[@]}"
    fi
    if [ "$what" != scorer ]; then
      bench generator 300 "$gen" --preset tiny --images 5 --batch-size 2 --steps 2 \
        --output-size 64 --psnr-images 2 --host-images 2 --compile "${cpu[@]}"
    fi
  fi
  if [ -n "$FAILED" ]; then  # every log is kept; a missing package failed them all silently
    echo "$0: failed: $FAILED (see $OUT/<name>.log)" >&2
    return 1
  fi
}

case "${1:-}" in
  prepare) [ $# -eq 1 ] || usage; prepare ;;
  run) [ $# -ge 2 ] && [ $# -le 4 ] || usage; shift; run "$@" ;;
  *) usage ;;
esac
