"""Training speed of one full GAN iteration for a config: img/s, sec/kimg, peak memory.

Builds the config's model and optimizers exactly as training does, feeds synthetic uint8
batches (so the data loader is not measured; see data_loading.py for that), runs a few warm-up
iterations and then times ``--iters`` iterations — long enough to include the lazy
regularization passes at their intervals. Prints a table and writes JSON.

    python benchmarks/train_speed.py CONFIG [CONFIG ...] [--batch 32] [--iters 32]
        [--device cpu|cuda] [--cfg-options k=v ...] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import platform
import sys
import time
from pathlib import Path

import torch

DEFAULT_OUT = Path(__file__).parent / 'results' / 'train_speed.json'


def build(config: str, batch: int, cfg_options: dict | None, device: str):
    from mmengine.registry import DefaultScope

    from genforce_core.config import load_config
    from genforce_core.engine.optim import GANOptimWrapperConstructor
    from genforce_core.plugins import load_plugins
    from genforce_core.registry import MODELS

    load_plugins()
    cfg = load_config(config, cfg_options)
    DefaultScope.get_instance(f'bench-{time.time()}', scope_name='genforce')
    model = MODELS.build(cfg.model).to(device)
    optim_cfg = {k: v for k, v in cfg.optim_wrapper.to_dict().items() if k != 'constructor'}
    optim = GANOptimWrapperConstructor(optim_cfg)(model)
    res = cfg.train_dataloader.dataset.get('resolution') or 32
    c_dim = getattr(model.generator, 'c_dim', 0)
    data = dict(img=torch.randint(0, 256, (batch, 3, res, res), dtype=torch.uint8),
                label=torch.eye(max(c_dim, 1))[torch.randint(0, max(c_dim, 1), (batch,))]
                [:, :c_dim])
    return model, optim, data, res


def measure(config: str, batch: int, iters: int, warmup: int, device: str,
            cfg_options: dict | None) -> dict:
    model, optim, data, res = build(config, batch, cfg_options, device)
    model.train()
    for _ in range(warmup):
        model.train_step(data, optim)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        model.train_step(data, optim)
    if device == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    images = batch * iters
    return dict(config=osp.basename(config), resolution=res, batch=batch, device=device,
                iters=iters, img_per_s=images / seconds, sec_per_kimg=seconds / images * 1000,
                peak_mem_mb=(torch.cuda.max_memory_allocated() / 2**20
                             if device == 'cuda' else None))


def main(argv: list[str] | None = None) -> int:
    from genforce_core.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--iters', type=int, default=32)
    parser.add_argument('--warmup', type=int, default=4)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    rows = [measure(c, args.batch, args.iters, args.warmup, args.device, args.cfg_options)
            for c in args.configs]
    print(f'{"config":<28} {"res":>4} {"batch":>5} {"device":>6} {"img/s":>8} '
          f'{"sec/kimg":>9} {"peak MB":>8}')
    for r in rows:
        peak = '-' if r['peak_mem_mb'] is None else f'{r["peak_mem_mb"]:.0f}'
        print(f'{r["config"]:<28} {r["resolution"]:>4} {r["batch"]:>5} {r["device"]:>6} '
              f'{r["img_per_s"]:>8.1f} {r["sec_per_kimg"]:>9.2f} {peak:>8}')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = dict(platform=platform.platform(), python=platform.python_version(),
                   torch=torch.__version__, threads=torch.get_num_threads(),
                   gpu=torch.cuda.get_device_name() if args.device == 'cuda' else None)
    args.out.write_text(json.dumps(dict(machine=machine, results=rows), indent=2))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
