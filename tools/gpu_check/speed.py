"""GPU check step ``speed``: ``benchmarks/train_speed.py`` for StyleGAN2 at 256x256.

Two settings, as in the StyleGAN2-ADA paper: ``paper256`` (``configs/stylegan2_ffhq256.py``:
8-layer mapping, channel base 16384, gamma 1, no augmentation) and ``auto`` for one GPU
(``configs/stylegan2ada_auto.py`` with ``genforce_stylegan2ada.auto.auto_cfg_options(256, 1)``:
2-layer mapping, mbstd group 4, batch 16, ADA 'bgc' at a fixed p = 0.2, as a running ADA
training has it). Each measurement is one ``train_speed.measure`` call (warm-up, then timed
iterations that include the lazy R1 and path-length passes), in the order below, most important
first; the JSON is rewritten after each, so a timeout keeps what was measured, and no new
measurement starts that would end after ``--deadline`` seconds (judged by the longest so far).
``auto`` at batch 16 with the CUDA ops and fp16 is the setting of NVIDIA's published
12.53 s/kimg (A100).

StyleGAN3 T and R (genforce-plugin-stylegan3) at 256x256: ``sg3t256``/``sg3r256`` are the
FFHQ 1024 configs (``configs/stylegan3t_ffhq1024.py``, ``stylegan3r_ffhq1024.py``) trained at
256, batch 16, ``fp16`` being both networks' official float16 layers; their rows also say
which path ``filtered_lrelu`` took (``filtered_lrelu``: ``cuda`` or the reference path and
why).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {'paper256': REPO / 'configs' / 'stylegan2_ffhq256.py',
           'auto': REPO / 'configs' / 'stylegan2ada_auto.py',
           'sg3t256': REPO / 'configs' / 'stylegan3t_ffhq1024.py',
           'sg3r256': REPO / 'configs' / 'stylegan3r_ffhq1024.py'}
STYLEGAN3 = ('sg3t256', 'sg3r256')
# (setting, batch, ops, precision), most important first.
PLAN = [
    ('auto', 16, 'cuda', 'fp16'),
    ('paper256', 64, 'cuda', 'fp16'),
    ('sg3t256', 16, 'cuda', 'fp16'),
    ('sg3r256', 16, 'cuda', 'fp16'),
    ('auto', 32, 'cuda', 'fp16'),
    ('paper256', 32, 'cuda', 'fp16'),
    ('auto', 64, 'cuda', 'fp16'),
    ('paper256', 64, 'ref', 'fp16'),
    ('auto', 32, 'ref', 'fp16'),
    ('paper256', 64, 'cuda', 'fp32'),
    ('paper256', 64, 'cuda', 'amp'),
    ('auto', 32, 'cuda', 'fp32'),
    ('auto', 32, 'cuda', 'amp'),
    ('paper256', 64, 'ref', 'fp32'),
]
REHEARSAL_PLAN = [('auto', 4, 'ref', 'fp32'), ('paper256', 4, 'ref', 'fp32'),
                  ('sg3t256', 4, 'ref', 'fp32'), ('sg3r256', 4, 'ref', 'fp32')]
# Rehearsal on the CPU: the same code paths with networks small enough for seconds.
TINY = {'model.generator.z_dim': 32, 'model.generator.w_dim': 32,
        'model.generator.mapping_kwargs.num_layers': 2,
        'model.generator.synthesis_kwargs.channel_base': 512,
        'model.generator.synthesis_kwargs.channel_max': 32,
        'model.discriminator.channel_base': 512, 'model.discriminator.channel_max': 32}
TINY_SG3 = {'model.generator.z_dim': 32, 'model.generator.w_dim': 32,
            'model.generator.channel_base': 512, 'model.generator.channel_max': 32,
            'model.generator.num_layers': 4, 'model.generator.num_critical': 1,
            'model.generator.margin_size': 2,
            'model.discriminator.channel_base': 512, 'model.discriminator.channel_max': 32}


def load_train_speed():
    """``benchmarks/train_speed.py`` as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location('train_speed',
                                                  REPO / 'benchmarks' / 'train_speed.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setting_options(setting: str, resolution: int, tiny: bool = False) -> dict:
    """cfg options of a setting at ``resolution`` (``tiny``: with toy networks)."""
    if setting == 'auto':
        from genforce_stylegan2ada.auto import auto_cfg_options
        options = {**auto_cfg_options(resolution, 1), 'model.augment.p': 0.2,
                   'model.ada_target': None}
    else:
        options = {'model.generator.img_resolution': resolution,
                   'model.discriminator.img_resolution': resolution,
                   'train_dataloader.dataset.resolution': resolution}
    if not tiny:
        return options
    return {**options, **(TINY_SG3 if setting in STYLEGAN3 else TINY)}


def ops_used() -> str:
    """Which path the StyleGAN2 ops took ('cuda', or 'reference' when the kernels fell back)."""
    from genforce_stylegan2.ops import _dispatch
    paths = {_dispatch.status('upfirdn2d'), _dispatch.status('bias_act')}
    return paths.pop() if len(paths) == 1 else 'mixed'


def plugin_ops(plugin: str) -> dict[str, str]:
    """The op paths a plugin reports (its ``genforce_op_status`` hook)."""
    from genforce_core.plugins import load_plugins

    manager = load_plugins()
    manager.collect_op_status()
    info = manager.plugins.get(plugin)
    return dict(info.ops) if info is not None else {}


def measure_one(bench, setting: str, batch: int, ops: str, precision: str, *, resolution: int,
                iters: int, warmup: int, device: str, tiny: bool = False) -> dict:
    import torch

    row = dict(setting=setting, batch=batch, ops=ops, precision=precision)
    start = time.monotonic()
    try:
        torch.manual_seed(0)
        row.update(bench.measure(str(CONFIGS[setting]), batch, iters, warmup, device,
                                 setting_options(setting, resolution, tiny), ops, precision))
        row['ops_used'] = ops_used() if ops == 'cuda' else 'ref'
        if setting in STYLEGAN3:
            row['filtered_lrelu'] = (plugin_ops('stylegan3').get('filtered_lrelu', 'unknown')
                                     if ops == 'cuda' else 'ref')
    except Exception as exc:  # noqa: BLE001 - record (e.g. out of memory), measure the rest
        traceback.print_exc()
        row['error'] = f'{type(exc).__name__}: {exc}'[:500]
    row['wall_s'] = round(time.monotonic() - start, 1)
    if device == 'cuda':
        torch.cuda.empty_cache()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', type=Path, required=True)
    parser.add_argument('--deadline', type=float, default=600,
                        help='start no measurement that would end after this many seconds '
                        '(judged by the longest one so far)')
    parser.add_argument('--iters', type=int, default=16, help='timed iterations (one R1 pass)')
    parser.add_argument('--warmup', type=int, default=4)
    parser.add_argument('--resolution', type=int, default=256)
    parser.add_argument('--rehearse', action='store_true',
                        help='on the CPU: 32x32, batch 4, 1 iteration, reference ops, fp32')
    args = parser.parse_args(argv)

    start = time.monotonic()
    bench = load_train_speed()
    device = 'cpu' if args.rehearse else 'cuda'
    plan, resolution, iters, warmup = ((REHEARSAL_PLAN, 32, 1, 1) if args.rehearse else
                                       (PLAN, args.resolution, args.iters, args.warmup))
    result = dict(machine=bench.machine_info(device), resolution=resolution, iters=iters,
                  warmup=warmup, results=[], not_measured=[])
    longest = 0.0  # the longest measurement so far: one more must fit before the deadline
    for i, (setting, batch, ops, precision) in enumerate(plan):
        if time.monotonic() - start + longest > args.deadline:
            result['not_measured'] = [dict(setting=s, batch=b, ops=o, precision=p)
                                      for s, b, o, p in plan[i:]]
            print(f'[speed] deadline of {args.deadline:.0f} s reached: '
                  f'{len(plan) - i} measurement(s) left out', flush=True)
            break
        row = measure_one(bench, setting, batch, ops, precision, resolution=resolution,
                          iters=iters, warmup=warmup, device=device, tiny=args.rehearse)
        longest = max(longest, row['wall_s'])
        print(f'[speed] {json.dumps(row)}', flush=True)
        result['results'].append(row)
        args.json.write_text(json.dumps(result, indent=2))
    errors = [r for r in result['results'] if r.get('error')]
    fallback = [r for r in result['results'] if r.get('ops_used') not in (None, 'ref', 'cuda')
                or (r['ops'] == 'cuda' and r.get('ops_used') == 'reference')]
    notes = [f'{len(result["results"]) - len(errors)}/{len(plan)} measured']
    if errors:
        notes.append(f'{len(errors)} error(s)')
    if fallback:
        notes.append(f'{len(fallback)} cuda row(s) ran the reference ops')
    sg3_reference = [r for r in result['results']
                     if r['ops'] == 'cuda' and r.get('filtered_lrelu', 'cuda') != 'cuda']
    if sg3_reference:  # noted, not a failure: StyleGAN3's kernel may be missing or not built
        notes.append(f'{len(sg3_reference)} StyleGAN3 cuda row(s) ran filtered_lrelu\'s '
                     'reference path')
    if args.rehearse:
        notes.insert(0, 'rehearsal on the CPU')
    result['note'] = ', '.join(notes)
    args.json.write_text(json.dumps(result, indent=2))
    return 1 if errors or fallback or not result['results'] else 0


if __name__ == '__main__':
    sys.exit(main())
