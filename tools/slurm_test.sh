#!/usr/bin/env bash
# Evaluation on a Slurm cluster: srun starts one task per GPU, mmengine reads the SLURM_* variables.
#
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#
# Environment: GPUS (8, all tasks), GPUS_PER_NODE (8; lowered to GPUS when GPUS is smaller),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun options, split into words), PYTHON (python).
set -euo pipefail

usage() {
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    echo "  env: GPUS=${GPUS:-8} GPUS_PER_NODE=${GPUS_PER_NODE:-8}" \
         "CPUS_PER_TASK=${CPUS_PER_TASK:-5} SRUN_ARGS='${SRUN_ARGS:-}' PYTHON=${PYTHON:-python}" >&2
    exit 2
}
[[ $# -ge 4 ]] || usage

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
read -r -a SRUN_EXTRA <<< "${SRUN_ARGS:-}"
read -r -a PYTHON_CMD <<< "${PYTHON:-python}"
for var in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || {
        echo "$0: $var must be a positive integer, got '${!var}'" >&2; usage; }
done
if (( GPUS < GPUS_PER_NODE )); then
    GPUS_PER_NODE=$GPUS
fi
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}"
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_EXTRA[@]+"${SRUN_EXTRA[@]}"} \
    "${PYTHON_CMD[@]}" -u "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher slurm "${@:5}"
