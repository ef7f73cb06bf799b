#!/usr/bin/env bash
# Distributed testing with torchrun.  Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (same on every node).
# The test data, annotations and checkpoint are checked once before the processes start.
set -euo pipefail
USAGE="usage: $0 CONFIG CHECKPOINT GPUS [test.py options]"
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
help_of_tool test.py "$USAGE" "$@"  # before the arguments are read: a missing one too
if [ $# -lt 3 ]; then echo "$USAGE" >&2; exit 2; fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
require_count GPUS "$GPUS" 1 "$USAGE"
require_torchrun_env "$USAGE"  # NNODES, NODE_RANK, PORT: set, checked
run_child "$PYTHON" "$GENVIEW_ROOT/tools/check_config.py" "$CONFIG" "$CHECKPOINT" \
  --quiet --procs-per-node="$GPUS" "${@:4}"
stop_after_preflight "${@:4}"
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
  --nproc_per_node="$GPUS" \
  "$GENVIEW_ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch --skip-preflight "${@:4}"
