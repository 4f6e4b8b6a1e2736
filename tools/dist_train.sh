#!/usr/bin/env bash
# Distributed training with torch.distributed.run (torchrun), one process per GPU.
#
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1) for several
# nodes -- run the same command on every node with its own NODE_RANK; PYTHON (python) picks the
# interpreter (words are split, so PYTHON="python -X faulthandler" works).
# Example: NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh configs/stylegan2_ffhq.py 8
set -euo pipefail

usage() {
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    echo "  env: NNODES=${NNODES:-1} NODE_RANK=${NODE_RANK:-0} PORT=${PORT:-29500}" \
         "MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} PYTHON=${PYTHON:-python}" >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$0: GPUS must be a positive integer, got '$2'" >&2; usage; }

CONFIG=$1
GPUS=$2
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
    "$TOOLS_DIR/train.py" \
    "$CONFIG" \
    --launcher pytorch \
    "${@:3}"
