# Sourced by the launch scripts: picks the Python interpreter that has genview_mm.
# Order: $PYTHON if set; the active virtualenv/conda env; $GENVIEW_VENV (bootstrap_env.sh's
# venv, default the repo's .venv); python3.
# Also defines require_count, the launchers' check of their numeric arguments.
_tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GENVIEW_ROOT="$(dirname "$_tools_dir")"
if [ -z "${PYTHON:-}" ]; then
  if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then PYTHON=python
  elif [ -x "${GENVIEW_VENV:-$GENVIEW_ROOT/.venv}/bin/python" ]; then
    PYTHON="${GENVIEW_VENV:-$GENVIEW_ROOT/.venv}/bin/python"
  else PYTHON=python3
  fi
fi
export PYTHONPATH="$GENVIEW_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# require_count NAME VALUE MIN USAGE: exit 2 with one line (what is wrong, then USAGE) unless
# VALUE is a whole number >= MIN, written plainly (no leading zero: bash reads 08 as octal). The
# launchers call it before they start anything: a swapped argument (`dist_train.sh 8 CONFIG`) or
# GPUS=0 gave a torchrun traceback, and a bad NTASKS a Slurm job array '0--1'.
require_count() {
  if [[ ! "$2" =~ ^(0|[1-9][0-9]{0,8})$ ]] || (( $2 < $3 )); then
    echo "$(basename "$0"): $1 must be a whole number >= $3, not '$2'; $4" >&2
    exit 2
  fi
}

source "$_tools_dir/_signals.sh"
