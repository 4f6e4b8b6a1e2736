# Shared by dist_train.sh and dist_test.sh (sourced): start one process per GPU with torchrun.
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1), PYTHON (the
# interpreter: default the repository's .venv/bin/python if present, else python3; see _python.sh).

source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"

torchrun_env_help() {
    echo "  env: NNODES=${NNODES:-1} NODE_RANK=${NODE_RANK:-0} PORT=${PORT:-29500}" \
         "MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} PYTHON=$(genforce_python)" >&2
}

# torchrun_exec SCRIPT GPUS [SCRIPT ARGS...]: replaces the shell with the torchrun command.
torchrun_exec() {
    local script=$1 gpus=$2
    shift 2
    local tools_dir python_cmd
    tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    read -r -a python_cmd <<< "$(genforce_python)"
    export PYTHONPATH="$tools_dir/..${PYTHONPATH:+:$PYTHONPATH}"
    exec "${python_cmd[@]}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$gpus" \
        --master_port="${PORT:-29500}" \
        "$tools_dir/$script" "$@"
}
