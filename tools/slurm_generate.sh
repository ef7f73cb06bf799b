#!/usr/bin/env bash
# Adaptive view generation as a Slurm job array (one task per share), then a merge job.
#
# Usage: [NTASKS=8 GPUS_PER_TASK=1 CPUS_PER_TASK=8 MAX_RUNNING= SBATCH_ARGS=...] \
#        bash tools/slurm_generate.sh PARTITION JOB_NAME SOURCE OUT_DIR --pca PCA \
#            [generate_views.py options]
# e.g.   NTASKS=64 bash tools/slurm_generate.sh gpu genview data/imagenet/train \
#            data/genview/views --pca data/genview/pca/generator.pth \
#            --pretrained /models/sd21-unclip --batch-size 16
#
# It submits `sbatch --array=0-(NTASKS-1)`: array task i runs tools/generate_views.py with
# --rank i --world-size NTASKS (no process group), so it makes the shards s with
# s % NTASKS == i and exits; the task that finds every shard done merges them. A second job, held
# until every task succeeded (--dependency=afterok; cancelled by Slurm if one failed, not left
# pending forever), reports with tools/merge_manifests.py
# OUT_DIR --source SOURCE --check-files (an idempotent merge). MAX_RUNNING=k caps the tasks
# running at once (--array=...%k). Logs: OUT_DIR/slurm/.
#
# Requeue-safe: tasks are submitted with --requeue; a requeued or resubmitted task skips its
# finished shards and resumes the others (lost outputs and transient failures redone), and while
# an earlier copy of it still runs, the shard lock refuses the newcomer (it waits --lock-wait
# 120 s first). If a task failed, submit the same command again (any NTASKS works: the shards
# are fixed): finished shards end in seconds.
# The arguments, paths and OUT_DIR's settings record are checked before anything is
# submitted (generate_views.py --check-args: exit 2 and one error; a settings mismatch lists
# each differing setting on a line of its own). --overwrite is refused with
# NTASKS > 1: delete OUT_DIR first instead.
set -euo pipefail

# needs VAR...: the variables the submission exported to a job (a spooled copy of this script
# runs there), or one line saying how to keep them
needs() {
  local var missing=""
  for var in "$@"; do
    if [ -z "${!var:-}" ]; then missing="${missing:+$missing, }$var"; fi
  done
  if [ -n "$missing" ]; then
    echo "slurm_generate.sh: the job has no $missing from its submission: keep the environment" \
      "(SBATCH_ARGS without --export=NONE; --export=ALL) and submit again" >&2
    exit 2
  fi
}
if [ "${1:-}" = "--array-task" ]; then  # inside the allocation of one array task
  needs PYTHON GENVIEW_ROOT GENVIEW_NTASKS
  shift
  export RANK="$SLURM_ARRAY_TASK_ID" WORLD_SIZE="$GENVIEW_NTASKS"
  exec "$PYTHON" -u "$GENVIEW_ROOT/tools/generate_views.py" --lock-wait 120 "$@" \
    --rank "$RANK" --world-size "$WORLD_SIZE"
fi
if [ "${1:-}" = "--merge-task" ]; then  # after all array tasks succeeded
  needs PYTHON GENVIEW_ROOT
  shift
  exec "$PYTHON" -u "$GENVIEW_ROOT/tools/merge_manifests.py" "$@" --check-files
fi

USAGE="usage: [NTASKS=8 GPUS_PER_TASK=1 CPUS_PER_TASK=8 MAX_RUNNING=] $0 PARTITION JOB_NAME \
SOURCE OUT_DIR --pca PCA [generate_views.py options]"
if [ $# -lt 4 ]; then echo "$USAGE" >&2; exit 2; fi
PARTITION=$1; JOB_NAME=$2; SOURCE=$3; OUT_DIR=$4; shift 4
NTASKS=${NTASKS:-8}; GPUS_PER_TASK=${GPUS_PER_TASK:-1}; CPUS_PER_TASK=${CPUS_PER_TASK:-8}
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
require_count NTASKS "$NTASKS" 1 "$USAGE"
require_count GPUS_PER_TASK "$GPUS_PER_TASK" 0 "$USAGE"  # 0: a CPU partition
require_count CPUS_PER_TASK "$CPUS_PER_TASK" 1 "$USAGE"
if [ -n "${MAX_RUNNING:-}" ]; then require_count MAX_RUNNING "$MAX_RUNNING" 1 "$USAGE"; fi
export GENVIEW_ROOT PYTHON PYTHONPATH GENVIEW_NTASKS="$NTASKS"
# the tasks' arguments and paths, checked once here before anything is submitted (a bad one
# failed every task after queueing, and left the merge job pending forever)
run_child "$PYTHON" "$GENVIEW_ROOT/tools/generate_views.py" "$SOURCE" --out-dir "$OUT_DIR" "$@" \
  --rank 0 --world-size "$NTASKS" --check-args

# the options the merge needs to list the same source images
MERGE_ARGS=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --data-root|--dataset-key|--num-variations) MERGE_ARGS+=("${args[$i]}" "${args[$((i + 1))]}");;
    --data-root=*|--dataset-key=*|--num-variations=*) MERGE_ARGS+=("${args[$i]}");;
  esac
done

mkdir -p "$OUT_DIR/slurm"
GRES=()  # none for a CPU partition: sbatch refuses gpu:0 where no gpu GRES is configured
if [ "$GPUS_PER_TASK" -gt 0 ]; then GRES=(--gres=gpu:"$GPUS_PER_TASK"); fi
ARRAY="0-$((NTASKS - 1))${MAX_RUNNING:+%$MAX_RUNNING}"
# shellcheck disable=SC2086
JOB=$(sbatch --parsable -p "$PARTITION" --job-name="$JOB_NAME" --array="$ARRAY" --requeue \
  --ntasks=1 ${GRES[@]+"${GRES[@]}"} --cpus-per-task="$CPUS_PER_TASK" \
  --output="$OUT_DIR/slurm/%A_%a.log" ${SBATCH_ARGS:-} \
  "$0" --array-task "$SOURCE" --out-dir "$OUT_DIR" "$@")
JOB=${JOB%%;*}
# shellcheck disable=SC2086
MERGE=$(sbatch --parsable -p "$PARTITION" --job-name="$JOB_NAME-merge" \
  --dependency=afterok:"$JOB" --kill-on-invalid-dep=yes --ntasks=1 --cpus-per-task=2 \
  --output="$OUT_DIR/slurm/%j_merge.log" ${SBATCH_ARGS:-} \
  "$0" --merge-task "$OUT_DIR" --source "$SOURCE" ${MERGE_ARGS[@]+"${MERGE_ARGS[@]}"})
echo "submitted generation array job $JOB (tasks 0-$((NTASKS - 1))) and merge job ${MERGE%%;*}"
echo "logs: $OUT_DIR/slurm/; merged manifest: $OUT_DIR/manifest.jsonl"
