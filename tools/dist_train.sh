#!/usr/bin/env bash
# Distributed training with torch.distributed.run (torchrun), one process per GPU.
#
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# CONFIG: a config file, the name of a packaged config (`genforce configs` lists them, e.g.
# stylegan2ada_cifar10) or PACKAGE::PATH (genforce_stylegan2ada::stylegan2ada_cifar10.py).
#
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1) for several
# nodes -- run the same command on every node with its own NODE_RANK; PYTHON picks the
# interpreter (words are split, so PYTHON="python -X faulthandler" works; default: the
# repository's .venv/bin/python when it exists, else python3).
# Example: NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh configs/stylegan2_ffhq.py 8
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_torchrun.sh"

usage() {
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    torchrun_env_help
    exit 2
}
[[ $# -ge 2 ]] || usage
[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$0: GPUS must be a positive integer, got '$2'" >&2; usage; }

torchrun_exec train.py "$2" "$1" --launcher pytorch "${@:3}"
