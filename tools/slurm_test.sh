#!/usr/bin/env bash
# Testing on a Slurm cluster.
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 MASTER_PORT=29500 SRUN_ARGS=...] \
#        bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
set -euo pipefail
USAGE="usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5] $0 PARTITION JOB_NAME \
CONFIG CHECKPOINT [test.py options]"
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
help_of_tool test.py "$USAGE" "$@"  # before the arguments are read: a missing one too
if [ $# -lt 4 ]; then echo "$USAGE" >&2; exit 2; fi
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; CHECKPOINT=$4
GPUS=${GPUS:-8}; GPUS_PER_NODE=${GPUS_PER_NODE:-8}; CPUS_PER_TASK=${CPUS_PER_TASK:-5}
for var in GPUS GPUS_PER_NODE CPUS_PER_TASK; do require_count "$var" "${!var}" 1 "$USAGE"; done
require_whole_nodes "$GPUS" "$GPUS_PER_NODE" "$USAGE"  # sets ON_NODE
export_slurm_port "$USAGE"  # MASTER_PORT, else PORT, else 29500
# check the prerequisites once, here, before the job starts (tools/check_config.py)
run_child "$PYTHON" "$GENVIEW_ROOT/tools/check_config.py" "$CONFIG" "$CHECKPOINT" --quiet "${@:5}"
stop_after_preflight "${@:5}"
# shellcheck disable=SC2086
exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$ON_NODE" --ntasks="$GPUS" \
  --ntasks-per-node="$ON_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
  ${SRUN_ARGS:-} "$PYTHON" -u "$GENVIEW_ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" \
  --launcher=slurm --skip-preflight "${@:5}"
