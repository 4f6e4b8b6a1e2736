#!/usr/bin/env bash
# Distributed evaluation with torch.distributed.run (torchrun), one process per GPU.
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1) for several
# nodes; PYTHON (python) picks the interpreter (words are split).
set -euo pipefail

usage() {
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    echo "  env: NNODES=${NNODES:-1} NODE_RANK=${NODE_RANK:-0} PORT=${PORT:-29500}" \
         "MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} PYTHON=${PYTHON:-python}" >&2
    exit 2
}
[[ $# -ge 3 ]] || usage
[[ $3 =~ ^[1-9][0-9]*$ ]] || { echo "$0: GPUS must be a positive integer, got '$3'" >&2; usage; }

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
read -r -a PYTHON_CMD <<< "${PYTHON:-python}"
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON_CMD[@]}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS_DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch \
    "${@:4}"
