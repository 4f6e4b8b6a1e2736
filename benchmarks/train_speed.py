"""Training speed of one full GAN iteration for a config: img/s, sec/kimg, peak memory.

Builds the config's model and optimizers exactly as training does, feeds synthetic uint8
batches (so the data loader is not measured; see data_loading.py for that), runs a few warm-up
iterations and then times ``--iters`` iterations — long enough to include the lazy
regularization passes at their intervals. Prints a table and writes JSON.

    python benchmarks/train_speed.py CONFIG [CONFIG ...] [--resolution R] [--batch 32]
        [--iters 32] [--device cpu|cuda] [--ops cuda ref] [--precision fp32 fp16 amp]
        [--cfg-options k=v ...] [--out FILE]

Every config is timed for each combination of ``--ops`` (StyleGAN2 ops through their CUDA
kernels or the pure-PyTorch reference) and ``--precision``: ``fp32`` (no float16 layers),
``fp16`` (the config's float16 top resolutions, the official mixed precision; CUDA only) and
``amp`` (float32 layers under ``torch.autocast``, mmengine's AmpOptimWrapper; CUDA only).
Combinations that cannot run on the device are skipped.

With ``--ada-p P [P ...]`` it instead measures the cost of adaptive discriminator augmentation
(genforce-plugin-stylegan2ada) for each StyleGAN2 config: the plain model and the same model
as ``StyleGAN2ADA`` with the ``--ada-preset`` pipeline at fixed probabilities P, timed in
interleaved rounds of ``--iters`` iterations (so a busy machine slows all variants alike);
the median round gives the iteration time and the overhead in % of the plain iteration.

    python benchmarks/train_speed.py configs/demo.py --ada-p 0.2 0.6 1.0 \
        --iters 16 --rounds 3   # -> benchmarks/results/train_speed_ada.json

StyleGAN3 (genforce-plugin-stylegan3): its configs work as they are (``fp16``: the float16
layers of both networks, ``fp32``: none); R variants of the small T configs are in
``benchmarks/configs`` (``stylegan3r_shapes32.py``, ``stylegan3r_cifar10.py``):

    python benchmarks/train_speed.py configs/stylegan3t_shapes32.py \
        benchmarks/configs/stylegan3r_shapes32.py --batch 8 --iters 16 --warmup 2
    python benchmarks/train_speed.py configs/stylegan3t_cifar10.py \
        benchmarks/configs/stylegan3r_cifar10.py --batch 8 --iters 1 --warmup 1  # ~3 min each
    # both -> benchmarks/results/train_speed_stylegan3.json (merged)
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import platform
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import torch

DEFAULT_OUT = Path(__file__).parent / 'results' / 'train_speed.json'
DEFAULT_ADA_OUT = Path(__file__).parent / 'results' / 'train_speed_ada.json'


def build(config: str, batch: int, cfg_options: dict | None, device: str):
    from mmengine.registry import DefaultScope

    from genforce_core.config import load_config
    from genforce_core.engine.optim import GANOptimWrapperConstructor
    from genforce_core.plugins import load_plugins
    from genforce_core.registry import MODELS

    load_plugins()
    cfg = load_config(config, cfg_options)
    if device == 'cuda':  # as the Runner sets it from env_cfg (training, official too: on)
        torch.backends.cudnn.benchmark = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark'))
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


def resolution_options(resolution: int | None) -> dict:
    """cfg options that train ``config`` at ``resolution`` (empty when None)."""
    if resolution is None:
        return {}
    return {'model.generator.img_resolution': resolution,
            'model.discriminator.img_resolution': resolution,
            'train_dataloader.dataset.resolution': resolution}


def precision_options(config: str, cfg_options: dict | None, precision: str) -> dict | None:
    """cfg options for a precision, or None when the config has no such setting."""
    from genforce_core.config import load_config

    model = load_config(config, cfg_options).model
    keys = [k for k, present in (
        ('model.generator.synthesis_kwargs.num_fp16_res',
         'num_fp16_res' in model.generator.get('synthesis_kwargs', {})),
        ('model.generator.num_fp16_res', 'num_fp16_res' in model.generator),  # StyleGAN3
        ('model.discriminator.num_fp16_res', 'num_fp16_res' in model.discriminator)) if present]
    if precision == 'fp16':
        return {} if keys else None
    return {k: 0 for k in keys}  # fp32 and amp: no float16 layers


def skip_reason(device: str, ops: str, precision: str) -> str | None:
    if device != 'cuda' and ops == 'cuda':
        return 'CUDA kernels need a CUDA device'
    if device != 'cuda' and precision in ('fp16', 'amp'):
        return f'{precision} runs only on CUDA (CPU layers stay float32)'
    return None


def ops_implementation(ops: str) -> AbstractContextManager[None]:
    """Every plugin's ops through their CUDA kernels ('cuda') or the reference path ('ref')."""
    from genforce_core.api import reference_ops

    return reference_ops(ops == 'ref')


def measure(config: str, batch: int, iters: int, warmup: int, device: str,
            cfg_options: dict | None, ops: str = 'ref', precision: str = 'fp32') -> dict:
    with ops_implementation(ops):
        return _measure(config, batch, iters, warmup, device, cfg_options, ops, precision)


def _measure(config: str, batch: int, iters: int, warmup: int, device: str,
             cfg_options: dict | None, ops: str, precision: str) -> dict:
    options = precision_options(config, cfg_options, precision)
    if options is None:
        raise SystemExit(f'{config}: no num_fp16_res setting, so no {precision!r} variant')
    options = {**(cfg_options or {}), **options}
    if precision == 'amp':
        options['optim_wrapper.generator.type'] = 'AmpOptimWrapper'
        options['optim_wrapper.discriminator.type'] = 'AmpOptimWrapper'
    model, optim, data, res = build(config, batch, options, device)
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
                ops=ops, precision=precision, iters=iters, img_per_s=images / seconds,
                sec_per_kimg=seconds / images * 1000,
                peak_mem_mb=(torch.cuda.max_memory_allocated() / 2**20
                             if device == 'cuda' else None),
                cudnn_benchmark=torch.backends.cudnn.benchmark if device == 'cuda' else None)


def ada_variants(config: str, cfg_options: dict | None, ps: list[float],
                 preset: str) -> list[tuple[float | None, dict]]:
    """``(p, cfg_options)`` for the plain model (p None) and ADA at each fixed ``p``."""
    from genforce_core.config import load_config

    base = dict(cfg_options or {})
    plain = dict(base)
    if load_config(config, cfg_options).model.get('type') == 'StyleGAN2ADA':
        plain.update({'model.augment.p': 0.0, 'model.ada_target': None})  # pipe skipped
    variants: list[tuple[float | None, dict]] = [(None, plain)]
    for p in ps:
        variants.append((p, {**base, 'model.type': 'StyleGAN2ADA', 'model.ada_target': None,
                             'model.augment': dict(type='AugmentPipe', preset=preset, p=p)}))
    return variants


def measure_ada(config: str, batch: int, iters: int, warmup: int, rounds: int, device: str,
                cfg_options: dict | None, ps: list[float], preset: str) -> list[dict]:
    """Iteration time without and with ADA, timed in interleaved rounds."""
    import statistics

    built = []
    for p, options in ada_variants(config, cfg_options, ps, preset):
        torch.manual_seed(0)
        model, optim, data, res = build(config, batch, options, device)
        model.train()
        for _ in range(warmup):
            model.train_step(data, optim)
        built.append((p, model, optim, data))
    seconds: dict[int, list[float]] = {i: [] for i in range(len(built))}
    for _ in range(rounds):
        for i, (_, model, optim, data) in enumerate(built):
            if device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(iters):
                model.train_step(data, optim)
            if device == 'cuda':
                torch.cuda.synchronize()
            seconds[i].append((time.perf_counter() - start) / iters)
    plain = statistics.median(seconds[0])
    rows = []
    for i, (p, *_) in enumerate(built):
        sec = statistics.median(seconds[i])
        rows.append(dict(config=osp.basename(config), resolution=res, batch=batch,
                         device=device, ada_preset=None if p is None else preset, ada_p=p,
                         iters=iters, rounds=rounds, sec_per_iter=sec, img_per_s=batch / sec,
                         overhead_pct=(sec / plain - 1) * 100,
                         round_sec_per_iter=seconds[i]))
    return rows


def main_ada(args) -> int:
    rows = [row for c in args.configs
            for row in measure_ada(c, args.batch, args.iters, args.warmup, args.rounds,
                                   args.device, args.cfg_options, args.ada_p, args.ada_preset)]
    print(f'{"config":<28} {"res":>4} {"batch":>5} {"ADA":>10} {"s/iter":>8} {"img/s":>8} '
          f'{"overhead":>9}')
    for r in rows:
        ada = 'off' if r['ada_p'] is None else f'{r["ada_preset"]} {r["ada_p"]:g}'
        print(f'{r["config"]:<28} {r["resolution"]:>4} {r["batch"]:>5} {ada:>10} '
              f'{r["sec_per_iter"]:>8.3f} {r["img_per_s"]:>8.1f} {r["overhead_pct"]:>8.1f}%')
    out = args.out or DEFAULT_ADA_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(machine=machine_info(args.device), results=rows), indent=2))
    print(f'wrote {out}')
    return 0


def machine_info(device: str) -> dict:
    return dict(platform=platform.platform(), python=platform.python_version(),
                torch=torch.__version__, threads=torch.get_num_threads(),
                gpu=torch.cuda.get_device_name() if device == 'cuda' else None)


def main(argv: list[str] | None = None) -> int:
    from genforce_core.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--iters', type=int, default=32)
    parser.add_argument('--warmup', type=int, default=4)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--resolution', type=int, default=None,
                        help="override the config's resolution")
    parser.add_argument('--ops', nargs='+', choices=['cuda', 'ref'], default=None,
                        help='op implementations to time (default: cuda on a GPU, else ref)')
    parser.add_argument('--precision', nargs='+', choices=['fp32', 'fp16', 'amp'],
                        default=['fp32'])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    parser.add_argument('--out', type=Path, default=None,
                        help=f'JSON file (default {DEFAULT_OUT.name}, with --ada-p '
                             f'{DEFAULT_ADA_OUT.name}, in benchmarks/results)')
    parser.add_argument('--ada-p', type=float, nargs='+', default=None,
                        help='compare the plain iteration with ADA at these fixed p')
    parser.add_argument('--ada-preset', default='bgc')
    parser.add_argument('--rounds', type=int, default=3,
                        help='interleaved timing rounds for --ada-p')
    parser.add_argument('--note', default=None,
                        help='a remark stored in the JSON (e.g. that the machine was shared)')
    args = parser.parse_args(argv)
    args.cfg_options = {**(args.cfg_options or {}), **resolution_options(args.resolution)} or None
    if args.ada_p:
        return main_ada(args)
    args.out = args.out or DEFAULT_OUT
    ops_list = args.ops or (['cuda'] if args.device == 'cuda' else ['ref'])

    rows = []
    for config in args.configs:
        for ops in ops_list:
            for precision in args.precision:
                reason = skip_reason(args.device, ops, precision)
                if reason:
                    print(f'skipped {osp.basename(config)} ops={ops} {precision}: {reason}')
                    continue
                rows.append(measure(config, args.batch, args.iters, args.warmup, args.device,
                                    args.cfg_options, ops, precision))
    print(f'{"config":<24} {"res":>4} {"batch":>5} {"device":>6} {"ops":>4} {"prec":>5} '
          f'{"img/s":>8} {"sec/kimg":>9} {"peak MB":>8}')
    for r in rows:
        peak = '-' if r['peak_mem_mb'] is None else f'{r["peak_mem_mb"]:.0f}'
        print(f'{r["config"]:<24} {r["resolution"]:>4} {r["batch"]:>5} {r["device"]:>6} '
              f'{r["ops"]:>4} {r["precision"]:>5} {r["img_per_s"]:>8.1f} '
              f'{r["sec_per_kimg"]:>9.2f} {peak:>8}')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = dict(machine=machine_info(args.device), results=rows)
    if args.note:
        result['note'] = args.note
    args.out.write_text(json.dumps(result, indent=2))
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
