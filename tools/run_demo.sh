#!/usr/bin/env bash
# The main job: the whole GenView pipeline on an embedded default, bootstrapping .venv if needed.
#   bash tools/run_demo.sh [--out-dir DIR] [--unclip ID_OR_DIR] [--scorer-clip ID_OR_DIR]
#                          [--num-images N] [--epochs N] [--gpus N]   (--help: what each means)
# A relative --out-dir is relative to the directory you run this from.
set -euo pipefail
unset CDPATH  # a relative cd would print its CDPATH match into $(...)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tools/_signals.sh"
for arg in "$@"; do  # the help needs no venv (the demo's options parse before any import)
  case "$arg" in -h|--help) exec "${PYTHON:-python3}" "$ROOT/tools/genview_demo.py" --help ;; esac
done
run_child bash "$ROOT/tools/bootstrap_env.sh"
exec "${GENVIEW_VENV:-$ROOT/.venv}/bin/python" "$ROOT/tools/genview_demo.py" "$@"
