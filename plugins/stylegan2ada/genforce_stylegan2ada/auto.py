"""The StyleGAN2-ADA ``auto`` configuration: hyper-parameters from the resolution and GPU count.

The heuristic of the paper's ``cfg=auto`` (used for its new small datasets):

* global batch ``max(min(gpus * min(4096 // res, 32), 64), gpus)``;
* minibatch-std group ``min(batch // gpus, 4)``;
* channel base 32768 from 512x512 on, 16384 below (``fmaps`` 1 or 0.5), at most 512;
* learning rate 0.002 from 1024x1024 on, 0.0025 below;
* R1 ``gamma = 0.0002 * res**2 / batch``;
* EMA half-life ``batch * 10 / 32`` kimg with ramp-up 0.05; 2-layer mapping network.

Write a config for your data and GPUs (then train it as any other config)::

    python -m genforce_stylegan2ada.auto --resolution 512 --gpus 4 \\
        --data data/mydata512.zip --out configs/my_ada512.py
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

# A packaged config (genforce_core.config resolves PACKAGE::PATH in _base_).
DEFAULT_BASE = 'genforce_stylegan2ada::stylegan2ada_auto.py'


def auto_settings(resolution: int, gpus: int) -> dict[str, Any]:
    """The ``auto`` hyper-parameters (``batch`` is global; ``batch_per_gpu`` per GPU)."""
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f'resolution must be a power of two >= 4, got {resolution}')
    if gpus < 1:
        raise ValueError(f'gpus must be >= 1, got {gpus}')
    batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    if batch % gpus:
        raise ValueError(f'the auto batch {batch} does not split over {gpus} GPUs')
    return dict(
        batch=batch,
        batch_per_gpu=batch // gpus,
        mbstd_group=min(batch // gpus, 4),
        channel_base=32768 if resolution >= 512 else 16384,
        lr=0.002 if resolution >= 1024 else 0.0025,
        gamma=0.0002 * resolution ** 2 / batch,
        ema_kimg=batch * 10 / 32,
        ema_rampup=0.05,
        mapping_layers=2,
    )


def auto_cfg_options(resolution: int, gpus: int) -> dict[str, Any]:
    """``--cfg-options``-style overrides that turn an ADA config into the ``auto`` one."""
    s = auto_settings(resolution, gpus)
    return {
        'model.generator.img_resolution': resolution,
        'model.generator.mapping_kwargs.num_layers': s['mapping_layers'],
        'model.generator.synthesis_kwargs.channel_base': s['channel_base'],
        'model.discriminator.img_resolution': resolution,
        'model.discriminator.channel_base': s['channel_base'],
        'model.discriminator.epilogue_kwargs.mbstd_group_size': s['mbstd_group'],
        'model.d_reg.gamma': s['gamma'],
        'model.ema.half_life_kimg': s['ema_kimg'],
        'model.ema.rampup': s['ema_rampup'],
        'optim_wrapper.generator.optimizer.lr': s['lr'],
        'optim_wrapper.discriminator.optimizer.lr': s['lr'],
        'train_dataloader.batch_size': s['batch_per_gpu'],
        'train_dataloader.dataset.resolution': resolution,
    }


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split('.')
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def write_auto_config(path: str | os.PathLike, resolution: int, gpus: int,
                      data: str | None = None, base: str | None = None) -> Path:
    """Write a genforce config that inherits ``base`` (default: this plugin's packaged
    ``genforce_stylegan2ada::stylegan2ada_auto.py``, so it works from a wheel) with the ``auto``
    settings for ``resolution`` and ``gpus`` and, if given, the dataset ``data``."""
    path = Path(path)
    if base is None:
        base = DEFAULT_BASE
    flat = auto_cfg_options(resolution, gpus)
    if data is not None:
        flat['train_dataloader.dataset.path'] = data
    s = auto_settings(resolution, gpus)
    body = ''.join(f'{k} = {v!r}\n' for k, v in _nest(flat).items())
    header = (f'# StyleGAN2-ADA cfg=auto for {resolution}x{resolution} on {gpus} GPU(s): '
              f'global batch {s["batch"]}, gamma {s["gamma"]:.4g}, EMA {s["ema_kimg"]:.4g} '
              'kimg.\n# Written by `python -m genforce_stylegan2ada.auto`.\n')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{header}_base_ = [{base!r}]\n{body}')
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Write a StyleGAN2-ADA cfg=auto config.')
    parser.add_argument('--resolution', type=int, required=True)
    parser.add_argument('--gpus', type=int, default=1)
    parser.add_argument('--data', help='dataset path (folder, zip or LMDB)')
    parser.add_argument('--base', help=f'config to inherit (default {DEFAULT_BASE})')
    parser.add_argument('--out', help='config file to write (default: print the settings)')
    args = parser.parse_args(argv)
    try:
        if args.out is None:
            for key, value in auto_settings(args.resolution, args.gpus).items():
                print(f'{key:<14} {value}')
            return 0
        path = write_auto_config(args.out, args.resolution, args.gpus, args.data, args.base)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
