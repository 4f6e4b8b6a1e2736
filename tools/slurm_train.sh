#!/usr/bin/env bash
# Training on a Slurm cluster: srun starts one task per GPU, mmengine reads the SLURM_* variables.
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
#
# CONFIG: a config file, the name of a packaged config (`genforce configs` lists them, e.g.
# stylegan2ada_cifar10) or PACKAGE::PATH (genforce_stylegan2ada::stylegan2ada_cifar10.py).
#
# Environment: GPUS (8, all tasks), GPUS_PER_NODE (8; lowered to GPUS when GPUS is smaller, so a
# small job does not hold a whole node), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options,
# split into words), PYTHON (default: the repository's .venv/bin/python when it exists, else
# python3).
# Example: GPUS=16 tools/slurm_train.sh gpu stylegan2 configs/stylegan2_ffhq.py work_dirs/sg2
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_srun.sh"

usage() {
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2
    srun_env_help
    exit 2
}
[[ $# -ge 4 ]] || usage

srun_exec "$1" "$2" train.py "$3" --work-dir="$4" --launcher slurm "${@:5}"
