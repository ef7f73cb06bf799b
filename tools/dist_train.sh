#!/usr/bin/env bash
# Distributed training with torchrun.  Usage: bash tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (same on every node).
# Without CUDA the processes train on CPU over gloo (GPUS = number of processes).
# The config's prerequisites (data, views, models, checkpoints) are checked once before the
# processes start (tools/check_config.py); a missing one stops here with a short checklist.
set -euo pipefail
USAGE="usage: $0 CONFIG GPUS [train.py options]"
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
help_of_tool train.py "$USAGE" "$@"  # before the arguments are read: a missing one too
if [ $# -lt 2 ]; then echo "$USAGE" >&2; exit 2; fi
CONFIG=$1
GPUS=$2
require_count GPUS "$GPUS" 1 "$USAGE"
require_torchrun_env "$USAGE"  # NNODES, NODE_RANK, PORT: set, checked
run_child "$PYTHON" "$GENVIEW_ROOT/tools/check_config.py" "$CONFIG" \
  --mode train --quiet --procs-per-node="$GPUS" "${@:3}"
stop_after_preflight "${@:3}"
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
  --nproc_per_node="$GPUS" \
  "$GENVIEW_ROOT/tools/train.py" "$CONFIG" --launcher pytorch --skip-preflight "${@:3}"
