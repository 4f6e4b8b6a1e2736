#!/usr/bin/env bash
# Distributed evaluation with torch.distributed.run (torchrun), one process per GPU.
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#
# CONFIG: a config file, the name of a packaged config (`genforce configs` lists them, e.g.
# stylegan2ada_cifar10) or PACKAGE::PATH (genforce_stylegan2ada::stylegan2ada_cifar10.py).
#
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1) for several
# nodes; PYTHON picks the interpreter (words are split; default: the repository's
# .venv/bin/python when it exists, else python3).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_torchrun.sh"

usage() {
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    torchrun_env_help
    exit 2
}
[[ $# -ge 3 ]] || usage
[[ $3 =~ ^[1-9][0-9]*$ ]] || { echo "$0: GPUS must be a positive integer, got '$3'" >&2; usage; }

torchrun_exec test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
