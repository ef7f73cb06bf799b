# Sourced by the launch scripts: picks the Python interpreter that has genview_mm.
# Order: $PYTHON if set; the active virtualenv/conda env if it has mmengine (conda's base env,
# active by default, often has not); $GENVIEW_VENV (bootstrap_env.sh's venv, default the repo's
# .venv); python3 if it has mmengine; else exit 2 naming the fix.
# Also defines require_count, the launchers' check of their numeric arguments,
# require_torchrun_env, the torchrun launchers' check of NNODES, NODE_RANK and PORT,
# require_whole_nodes, the Slurm launchers' check of GPUS against GPUS_PER_NODE,
# export_slurm_port, their rendezvous port, help_of_tool and stop_after_preflight.
unset CDPATH  # a relative cd would print its CDPATH match into $(...)
_tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GENVIEW_ROOT="$(dirname "$_tools_dir")"
if [ -z "${PYTHON:-}" ]; then
  if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] && python -c 'import importlib.util as u, sys
sys.exit(u.find_spec("mmengine") is None)' >/dev/null 2>&1; then PYTHON=python
  elif [ -x "${GENVIEW_VENV:-$GENVIEW_ROOT/.venv}/bin/python" ]; then
    PYTHON="${GENVIEW_VENV:-$GENVIEW_ROOT/.venv}/bin/python"
  elif python3 -c 'import importlib.util as u, sys
sys.exit(u.find_spec("mmengine") is None)' >/dev/null 2>&1; then PYTHON=python3
  else  # a traceback of the first import (torch) named no fix
    if [ -f "$GENVIEW_ROOT/setup.py" ]; then
      _looked="an active env, ${GENVIEW_VENV:-$GENVIEW_ROOT/.venv} nor python3"
      _fix="run bash $GENVIEW_ROOT/tools/bootstrap_env.sh (it makes ${GENVIEW_VENV:-$GENVIEW_ROOT/.venv})"
    else  # an installed copy (site-packages/genview_mm/.mim): no venv of its own
      _looked="an active env${GENVIEW_VENV:+, $GENVIEW_VENV} nor python3"
      _fix="activate the env genview_mm is installed in"
    fi
    echo "$(basename "$0"): no Python with genview_mm's stack (mmengine) found: neither" \
      "$_looked has it; $_fix, or set PYTHON=/path/to/python" >&2
    exit 2
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

# require_whole_nodes GPUS GPUS_PER_NODE USAGE: exit 2 with one line (what is wrong, then USAGE)
# when GPUS spans more than one node but is not a multiple of GPUS_PER_NODE (GPUS=12 with 8 per
# node reached srun as is). GPUS below GPUS_PER_NODE (part of one node) is fine. Then sets
# ON_NODE, the GPUs (and ranks) to ask of each node: GPUS for part of one node (asking for the
# whole node's held GPUs no rank used). Call it after require_count has checked both numbers.
require_whole_nodes() {
  if (( $1 > $2 && $1 % $2 != 0 )); then
    echo "$(basename "$0"): GPUS=$1 spans several nodes but is not a multiple of" \
      "GPUS_PER_NODE=$2; pass GPUS=$(( $1 / $2 * $2 )) or $(( ($1 / $2 + 1) * $2 )) (whole" \
      "nodes), or a GPUS_PER_NODE that divides it; $3" >&2
    exit 2
  fi
  ON_NODE=$(( $1 < $2 ? $1 : $2 ))
}

# require_port NAME VALUE USAGE: exit 2 with one line unless VALUE is a TCP port (1 to 65535).
require_port() {
  require_count "$1" "$2" 1 "$3"
  if (( $2 > 65535 )); then
    echo "$(basename "$0"): $1 must be a TCP port, 1 to 65535, not '$2'; $3" >&2
    exit 2
  fi
}

# export_slurm_port USAGE: the Slurm launchers' rendezvous port, exported as MASTER_PORT (what
# MMEngine's Slurm start reads): MASTER_PORT, else PORT (the torchrun launchers' name), else
# 29500; exit 2 unless a TCP port. PORT alone was taken by the CPU start only: a GPU job kept
# 29500, where a second job on its first node could not start.
export_slurm_port() {
  MASTER_PORT=${MASTER_PORT:-${PORT:-29500}}
  require_port MASTER_PORT "$MASTER_PORT" "$1"
  export MASTER_PORT
}

# require_torchrun_env USAGE: the torchrun launchers' check of NNODES, NODE_RANK and PORT, set to
# their defaults (1, 0, 29500) when unset: exit 2 with one line (what is wrong, then USAGE)
# unless NNODES >= 1 (or torchrun's elastic MIN:MAX), 0 <= NODE_RANK < NNODES (MAX) and PORT is a
# TCP port. NODE_RANK=1 with NNODES unset (the second node's command without it) or
# NODE_RANK=NNODES (ranks counted from 1) started torchrun, which waited silently, forever, for
# nodes that never came; NNODES=0 or NNODES=two was a torchrun traceback, after the preflight.
# NODE_RANK > 0 also needs MASTER_ADDR (the default, 127.0.0.1, is node 0 only on node 0).
require_torchrun_env() {
  NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; PORT=${PORT:-29500}
  local most=$NNODES
  if [[ "$NNODES" =~ ^([1-9][0-9]{0,8}):([1-9][0-9]{0,8})$ ]] && \
      (( BASH_REMATCH[1] <= BASH_REMATCH[2] )); then
    most=${BASH_REMATCH[2]}
  fi
  require_count NNODES "$most" 1 "$1"
  require_count NODE_RANK "$NODE_RANK" 0 "$1"
  require_port PORT "$PORT" "$1"
  if (( NODE_RANK >= most )); then
    echo "$(basename "$0"): NODE_RANK=$NODE_RANK with NNODES=$NNODES: node ranks are 0 to" \
      "NNODES-1; set NNODES to the number of nodes (the same on every node) and NODE_RANK to" \
      "this node's rank; $1" >&2
    exit 2
  fi
  if (( NODE_RANK > 0 )) && [ -z "${MASTER_ADDR:-}" ]; then  # torchrun then looked for node 0
    # at 127.0.0.1, this node itself, and waited silently for a rendezvous that never came
    echo "$(basename "$0"): NODE_RANK=$NODE_RANK without MASTER_ADDR: this node would look for" \
      "node 0 at 127.0.0.1 (itself) and wait; set MASTER_ADDR to node 0's address (the same" \
      "on every node; 127.0.0.1 only when all nodes are this machine); $1" >&2
    exit 2
  fi
}

# help_of_tool TOOL USAGE ARGS...: print USAGE (the launcher's own arguments) and tools/TOOL's
# --help, and exit 0, when ARGS, all the launcher's arguments, hold -h or --help. The launchers
# call it before they read their arguments: check_config.py answered --help with its own options
# (--mode, --quiet: not the tool's), then every rank printed the tool's help; `dist_train.sh
# CONFIG --help` (no GPUS) was a GPUS error, `slurm_test.sh P J CONFIG --help` that help again.
help_of_tool() {
  local tool=$1 usage=$2 arg
  shift 2
  for arg in "$@"; do
    if [ "$arg" = -h ] || [ "$arg" = --help ]; then
      printf "%s\n\n" "$usage"
      exec "$PYTHON" "$GENVIEW_ROOT/tools/$tool" --help
    fi
  done
}

# stop_after_preflight ARGS...: exit 0 when the user's options hold --preflight. The launchers
# call it after tools/check_config.py has printed the checklist: without it every process that
# torchrun or srun started printed the checklist again, once per rank.
stop_after_preflight() {
  local arg
  for arg in "$@"; do
    if [ "$arg" = --preflight ]; then exit 0; fi
  done
}

source "$_tools_dir/_signals.sh"
