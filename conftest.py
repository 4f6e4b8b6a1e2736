"""Fixtures shared by the core, plugin and example tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
EXAMPLE_PLUGIN = REPO / 'examples' / 'dcgan_plugin'


def run_genforce(args: list[str], *, cwd: Path | str | None = None, env: dict | None = None,
                 pythonpath: list[Path | str] = (), timeout: float = 600,
                 check: bool = True) -> subprocess.CompletedProcess:
    """Run ``genforce ARGS`` in a fresh interpreter (mmengine keeps global state per process)."""
    full_env = dict(os.environ, **(env or {}))
    paths = [str(p) for p in pythonpath] + [full_env.get('PYTHONPATH', '')]
    full_env['PYTHONPATH'] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.run([sys.executable, '-m', 'genforce_core.cli.main', *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'genforce {" ".join(args)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc


@pytest.fixture(scope='session')
def example_plugin_site(tmp_path_factory) -> Path:
    """The example DCGAN plugin installed with pip into its own folder (put it on
    PYTHONPATH), exactly as a user installs a third-party plugin."""
    target = tmp_path_factory.mktemp('example_plugin_site')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                    '--no-build-isolation', '--no-index', '--target', str(target),
                    str(EXAMPLE_PLUGIN)], check=True, capture_output=True, text=True)
    return target


@pytest.fixture(scope='session')
def example_config(example_plugin_site) -> Path:
    return example_plugin_site / 'genforce_example_dcgan' / 'configs' / 'dcgan_shapes32.py'


@pytest.fixture(scope='session')
def shapes_zip(tmp_path_factory) -> Path:
    """A small built-in shapes dataset (32x32 zip), written through the real writer."""
    from genforce_core.data.builtin import ensure_builtin_dataset

    return Path(ensure_builtin_dataset(tmp_path_factory.mktemp('shapes'), resolution=32,
                                       num_images=64))


@pytest.fixture(scope='session')
def genforce():
    """``genforce(args, ...)`` runs the CLI in a subprocess (see :func:`run_genforce`)."""
    return run_genforce


@pytest.fixture(scope='session')
def tiny_dcgan(example_config, shapes_zip) -> list[str]:
    """``--cfg-options`` that make the example DCGAN train in seconds on 2 CPU cores."""
    return ['model.generator.base_channels=8', 'model.discriminator.base_channels=8',
            'train_dataloader.batch_size=4', f'train_dataloader.dataset.path={shapes_zip}',
            'log_processor.window_size=1', 'default_hooks.logger.interval=1']
