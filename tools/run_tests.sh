#!/usr/bin/env bash
# The README's test command: install into .venv (if needed), lint, compile the CUDA ops (when
# nvcc is present), run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup_env.sh
echo "[test] ruff"
.venv/bin/ruff check .
if command -v nvcc >/dev/null 2>&1 && [ -f tools/compile_ops.py ]; then
    echo "[test] compiling CUDA ops with $(nvcc --version | tail -1)"
    .venv/bin/python tools/compile_ops.py
else
    echo "[test] nvcc not found: CUDA sources not compiled"
fi
echo "[test] pytest"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec .venv/bin/python -m pytest "$@"
