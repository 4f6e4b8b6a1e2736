#!/usr/bin/env bash
# GPU verification in one command (docs/gpu_check.md): compile the CUDA ops, run the CUDA tests,
# fp16 and --amp training smokes with checkpoint/resume, training speed at 256x256 and FID
# extraction speed; JSON, logs and a summary table in OUT (argument, else $OUT, else
# work_dirs/gpu_check). Without a CUDA GPU it says why, writes a "skipped" summary, exits 0.
#
#   tools/gpu_check.sh [OUT] [--only STEPS] [--skip STEPS] [--budget S] [--pack] ...
#   tools/gpu_check.sh --prepare [DIR]     # here, with network: wheels to carry (.gpu_wheels)
#   tools/gpu_check.sh --list | --dry-run | --rehearse (all steps on the CPU, toy sizes)
#
# PYTHON picks the interpreter (default: .venv/bin/python if present, else python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
elif [ -x .venv/bin/python ]; then
    py=.venv/bin/python
else
    py=python3
fi

if [ "${1:-}" = "--prepare" ]; then
    shift
    exec "$py" tools/gpu_check/prepare.py "$@"
fi

# Options that need no GPU: pass straight to the orchestrator.
for arg in "$@"; do
    case "$arg" in
        -h|--help|--list|--dry-run|--rehearse) exec "$py" tools/gpu_check/run.py "$@" ;;
    esac
done

# Usage errors first (exit 2), before the slow probe below.
"$py" tools/gpu_check/run.py "$@" --check-args

# Is a CUDA GPU visible? Prints "ok ARCH NAME" or "no REASON".
probe=$("$py" - <<'EOF' 2>&1 || true
try:
    import torch
except Exception as exc:  # noqa: BLE001
    print(f'no torch cannot be imported ({type(exc).__name__}: {exc})')
else:
    if not torch.cuda.is_available():
        print(f'no no CUDA GPU visible (torch {torch.__version__}: '
              'torch.cuda.is_available() is False)')
    else:
        major, minor = torch.cuda.get_device_capability(0)
        print(f'ok {major}.{minor} {torch.cuda.get_device_name(0)}')
EOF
)
probe=$(printf '%s\n' "$probe" | tail -n 1)
case "$probe" in
    "ok "*)
        rest=${probe#ok }
        arch=${rest%% *}
        gpu=${rest#* }
        exec "$py" tools/gpu_check/run.py "$@" --arch "$arch" --gpu "$gpu"
        ;;
    "no "*)
        exec "$py" tools/gpu_check/run.py "$@" --skip-reason "${probe#no }"
        ;;
    *)
        exec "$py" tools/gpu_check/run.py "$@" --skip-reason \
            "$py could not check for a GPU: ${probe:-no output}"
        ;;
esac
