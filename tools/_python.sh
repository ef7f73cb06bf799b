# Sourced by the launch scripts: picks the Python interpreter that has genview_mm.
# Order: $PYTHON if set; the active virtualenv/conda env; $GENVIEW_VENV (bootstrap_env.sh's
# venv, default the repo's .venv); python3.
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

source "$_tools_dir/_signals.sh"
