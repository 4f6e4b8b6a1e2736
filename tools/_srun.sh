# Shared by slurm_train.sh and slurm_test.sh (sourced): one srun task per GPU.
# Environment: GPUS (8, all tasks), GPUS_PER_NODE (8; lowered to GPUS when GPUS is smaller, so a
# small job does not hold a whole node), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options, split
# into words), PYTHON (the interpreter: default the repository's .venv/bin/python if present,
# else python3; see _python.sh).

source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"

srun_env_help() {
    echo "  env: GPUS=${GPUS:-8} GPUS_PER_NODE=${GPUS_PER_NODE:-8}" \
         "CPUS_PER_TASK=${CPUS_PER_TASK:-5} SRUN_ARGS='${SRUN_ARGS:-}' PYTHON=$(genforce_python)" >&2
}

# srun_exec PARTITION JOB_NAME SCRIPT [SCRIPT ARGS...]: replaces the shell with srun; calls
# `usage` (defined by the caller) on a bad number in the environment.
srun_exec() {
    local partition=$1 job_name=$2 script=$3
    shift 3
    local gpus=${GPUS:-8} per_node=${GPUS_PER_NODE:-8} cpus=${CPUS_PER_TASK:-5}
    local name value
    for name in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
        value=${!name:-1}
        [[ $value =~ ^[1-9][0-9]*$ ]] || {
            echo "$0: $name must be a positive integer, got '$value'" >&2; usage; }
    done
    (( gpus < per_node )) && per_node=$gpus
    local tools_dir srun_extra python_cmd
    tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    read -r -a srun_extra <<< "${SRUN_ARGS:-}"
    read -r -a python_cmd <<< "$(genforce_python)"
    export PYTHONPATH="$tools_dir/..${PYTHONPATH:+:$PYTHONPATH}"
    exec srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"$per_node" \
        --ntasks="$gpus" \
        --ntasks-per-node="$per_node" \
        --cpus-per-task="$cpus" \
        --kill-on-bad-exit=1 \
        ${srun_extra[@]+"${srun_extra[@]}"} \
        "${python_cmd[@]}" -u "$tools_dir/$script" "$@"
}
