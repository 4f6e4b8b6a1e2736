#!/usr/bin/env bash
# The README's main-job command: install into .venv (if needed), then train the demo StyleGAN2
# on the built-in shapes dataset and write samples, TensorBoard logs and a checkpoint to
# work_dirs/demo. Extra arguments go to `genforce train`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup_env.sh
exec .venv/bin/python tools/demo.py "$@"
