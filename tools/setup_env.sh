#!/usr/bin/env bash
# Create .venv (once) and install genforce-core, the eight plugins and the test tools into it.
# Idempotent: re-installs only when a pyproject.toml changed. Extra pip arguments (e.g. the
# example plugin: `tools/setup_env.sh -e examples/dcgan_plugin`) are installed as well.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi

PLUGINS=(plugins/stylegan2 plugins/stylegan2ada plugins/pggan plugins/stylegan
         plugins/metrics_fid plugins/converters plugins/inversion plugins/stylegan3)
stamp=.venv/.genforce-installed
want=$(cat pyproject.toml plugins/*/pyproject.toml | sha256sum | cut -c1-16)" $*"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "[setup] .venv is up to date"
    exit 0
fi

echo "[setup] installing genforce-core, ${#PLUGINS[@]} plugins and test tools into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check "setuptools>=77" wheel
# --no-build-isolation: build with the setuptools above instead of downloading it per package.
editable=(-e ".[test]")
for p in "${PLUGINS[@]}"; do editable+=(-e "$p"); done
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation \
    "${editable[@]}" "$@"
echo "$want" > "$stamp"
echo "[setup] done: $(.venv/bin/python -c 'import torch, mmengine; print("torch", torch.__version__, "mmengine", mmengine.__version__)')"
