#!/usr/bin/env bash
# Evaluation on a Slurm cluster: srun starts one task per GPU, mmengine reads the SLURM_* variables.
#
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#
# CONFIG: a config file, the name of a packaged config (`genforce configs` lists them, e.g.
# stylegan2ada_cifar10) or PACKAGE::PATH (genforce_stylegan2ada::stylegan2ada_cifar10.py).
#
# Environment: GPUS (8, all tasks), GPUS_PER_NODE (8; lowered to GPUS when GPUS is smaller),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun options, split into words), PYTHON (default: the
# repository's .venv/bin/python when it exists, else python3).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_srun.sh"

usage() {
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    srun_env_help
    exit 2
}
[[ $# -ge 4 ]] || usage

srun_exec "$1" "$2" test.py "$3" "$4" --launcher slurm "${@:5}"
