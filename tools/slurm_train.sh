#!/usr/bin/env bash
# Training on a Slurm cluster: srun starts one task per GPU, mmengine reads the SLURM_* variables.
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
#
# Environment: GPUS (8, all tasks), GPUS_PER_NODE (8; lowered to GPUS when GPUS is smaller, so a
# small job does not hold a whole node), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options,
# split into words), PYTHON (python).
# Example: GPUS=16 tools/slurm_train.sh gpu stylegan2 configs/stylegan2_ffhq.py work_dirs/sg2
set -euo pipefail

usage() {
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2
    echo "  env: GPUS=${GPUS:-8} GPUS_PER_NODE=${GPUS_PER_NODE:-8}" \
         "CPUS_PER_TASK=${CPUS_PER_TASK:-5} SRUN_ARGS='${SRUN_ARGS:-}' PYTHON=${PYTHON:-python}" >&2
    exit 2
}
[[ $# -ge 4 ]] || usage

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
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
    "${PYTHON_CMD[@]}" -u "$TOOLS_DIR/train.py" "$CONFIG" --work-dir="$WORK_DIR" \
    --launcher slurm "${@:5}"
