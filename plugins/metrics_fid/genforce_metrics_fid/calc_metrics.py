"""``genforce metrics CHECKPOINT --metrics fid50k_full,pr50k3_full --data PATH``: NVIDIA's
``calc_metrics.py`` for genforce checkpoints (converted official pickles included).

For each metric: load the EMA generator, compute, and append one JSON line to
``metric-<name>.jsonl`` in the run folder (the checkpoint's folder, or ``--run-dir``) with
StyleGAN2-ADA's keys: ``results``, ``metric``, ``total_time``, ``total_time_str``,
``num_gpus``, ``snapshot_pkl`` (relative to the run folder), ``timestamp``; the line is also
printed. ``--num N`` (quick checks) overrides every metric's image / sample count and adds
``"num_override": N`` to the line; ``--mode pytorch_fid|clean`` (FID/KID/IS) adds ``"mode"``.

``--gpus N`` starts N processes with torchrun (NCCL on GPUs, gloo on CPU); each computes its
share and rank 0 writes. Under ``tools/dist_*.sh``/srun use ``--launcher pytorch|slurm``.
As in NVIDIA's code, ``--mirror`` (x-flipped real images) applies to the metrics without
``_full`` (``fid50k``, ``kid50k``, ``pr50k3``); ``*_full`` metrics always use the dataset as is.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass

from genforce_core.api import add_command

DEFAULT_METRICS = 'fid50k_full'


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, 'metrics',
        help='compute FID/KID/IS/PR/PPL/EQ of a checkpoint into metric-<name>.jsonl',
        description=__doc__)
    parser.add_argument('checkpoint', help='genforce checkpoint (or a converted official '
                        'pickle: `genforce convert` first)')
    parser.add_argument('--metrics', default=DEFAULT_METRICS,
                        help='comma-separated: fid50k_full, kid50k_full, is50k, pr50k3_full, '
                        'ppl2_wend, ppl_zfull, ppl_wfull, ppl_zend, ppl_wend, eqt50k_int, '
                        'eqt50k_frac, eqr50k (StyleGAN3), fid50k, kid50k, pr50k3, or other '
                        'counts (fid10k_full, pr500_3_full, eqt10k_int) '
                        '(default: %(default)s)')
    parser.add_argument('--data', help='real images: folder, .zip or LMDB (FID, KID, PR; the '
                        'labels of a conditional generator) (default: none; '
                        'PPL, IS and EQ need none)')
    parser.add_argument('--mirror', action='store_true',
                        help='add x-flipped real images (metrics without _full)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes to start (one per GPU; gloo on CPU)')
    parser.add_argument('--run-dir', help='where metric-<name>.jsonl goes (default: the '
                        "checkpoint's folder)")
    parser.add_argument('--num', '--num-images', type=int, dest='num',
                        help='override the image/sample count of every metric (quick checks; '
                        'recorded as num_override; default: the count in the metric name)')
    parser.add_argument('--mode', choices=['nvidia', 'pytorch_fid', 'clean'], default='nvidia',
                        help='FID/KID/IS input path: whose numbers to reproduce (default: '
                        '%(default)s; another is recorded in the line as "mode")')
    parser.add_argument('--inception', metavar='PATH', help='Inception weights for FID/KID/IS '
                        '(default $GENFORCE_INCEPTION_WEIGHTS, the cache, or the download)')
    parser.add_argument('--vgg16', metavar='PATH', help="VGG16 for PR/PPL: NVIDIA's vgg16.pt "
                        "or torchvision's vgg16-397923af.pth (default $GENFORCE_VGG16_WEIGHTS, "
                        'the cache, or the download)')
    parser.add_argument('--lpips', metavar='PATH', help="the lpips package's vgg.pth for PPL "
                        "with torchvision's VGG16 (default $GENFORCE_LPIPS_WEIGHTS, the cache, "
                        'an installed lpips package, or the download)')
    parser.add_argument('--config', help='config file to rebuild the model with (default: '
                        'the one stored in the checkpoint)')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per detector batch and process (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='latent seed (default: 0)')
    parser.add_argument('--cache-dir', help='real-feature cache (default '
                        '$GENFORCE_CACHE_DIR/fid_stats)')
    parser.add_argument('--num-workers', type=int, default=2, help='image decoding workers')
    parser.add_argument('--device', help='default: cuda:<local rank> if available, else cpu')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='join the process group of an external launcher')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    parser.set_defaults(func=run)


def format_time(seconds: float) -> str:
    """``12s``, ``3m 04s``, ``2h 05m 09s``, ``1d 02h 03m`` (StyleGAN2-ADA's format)."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 3600:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 86400:
        return f'{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {s // 3600 % 24:02d}h {s // 60 % 60:02d}m'


@dataclass
class MetricJob:
    """One requested metric: the object that computes it and how its result keys read."""

    name: str
    metric: object
    rename: dict  # computed key -> reported key


def build_job(name: str, args: argparse.Namespace) -> MetricJob:
    """The metric object for ``name`` with the command's options."""
    from genforce_core.api import UsageError

    from .equivariance import EQ, is_eq_name
    from .evaluation import parse_metric_name
    from .metrics import FID, IS, KID
    from .ppl import PPL_METRICS
    from .pr_ppl import PPL, PR, is_pr_name
    from .scores import MetricError

    mirror = bool(args.mirror) and not name.endswith('_full')
    common = dict(batch_size=args.batch_size, cache_dir=args.cache_dir, seed=args.seed,
                  progress=not args.no_progress)
    if name in PPL_METRICS:
        return MetricJob(name, PPL(name, vgg16=args.vgg16, lpips=args.lpips,
                                   num_samples=args.num, dataset=args.data, seed=args.seed,
                                   progress=not args.no_progress), {})
    if is_eq_name(name):
        return MetricJob(name, EQ(name, num_samples=args.num, dataset=args.data, seed=args.seed,
                                  progress=not args.no_progress), {})
    if is_pr_name(name):
        return MetricJob(name, PR(name, dataset=args.data, vgg16=args.vgg16, mirror=mirror,
                                  num_workers=args.num_workers, num_gen=args.num, **common), {})
    try:
        spec = parse_metric_name(name)
    except MetricError:
        raise UsageError(f'unknown metric {name!r}: use fid50k_full, kid50k_full, is50k, '
                         f'pr50k3_full, {", ".join(PPL_METRICS)}, eqt50k_int, eqt50k_frac, '
                         'eqr50k, or another count such as fid10k_full or pr500_3_full'
                         ) from None
    computed = name
    if args.num:  # the same kind with the other count (and real images as the name says)
        computed = f'{spec.kind}{args.num}' + ('_full' if spec.max_real is None
                                               and spec.kind != 'is' else '')
    cls = {'fid': FID, 'kid': KID, 'is': IS}[spec.kind]
    metric = cls(name=computed, dataset=args.data, inception=args.inception, mirror=mirror,
                 num_workers=args.num_workers, mode=args.mode, **common)
    if spec.kind == 'is':  # NVIDIA reports is50k_mean / is50k_std
        return MetricJob(name, metric, {computed: f'{name}_mean',
                                        f'{computed}_std': f'{name}_std'})
    return MetricJob(name, metric, {computed: name})


def report(line: dict, run_dir: str | None) -> None:
    """Print the JSON line and append it to ``run_dir/metric-<name>.jsonl``."""
    text = json.dumps(line)
    print(text, flush=True)
    if run_dir is not None:
        os.makedirs(run_dir, exist_ok=True)
        with open(osp.join(run_dir, f'metric-{line["metric"]}.jsonl'), 'a') as f:
            f.write(text + '\n')


def _child_argv(args: argparse.Namespace) -> list[str]:
    """The command line of one process of a ``--gpus N`` run."""
    argv = [args.checkpoint, '--metrics', args.metrics, '--launcher', 'pytorch',
            '--mode', args.mode, '--batch-size', str(args.batch_size), '--seed', str(args.seed),
            '--num-workers', str(args.num_workers)]
    # --num-images, not --num: torchrun would take --num for its own --numa-binding.
    for option in ('data', 'run_dir', 'num_images', 'inception', 'vgg16', 'lpips', 'config',
                   'cache_dir', 'device'):
        value = getattr(args, 'num' if option == 'num_images' else option)
        if value is not None:
            argv += [f'--{option.replace("_", "-")}', str(value)]
    if args.mirror:
        argv.append('--mirror')
    if args.no_progress:
        argv.append('--no-progress')
    return argv


def launch(args: argparse.Namespace) -> int:
    """Run this command in ``args.gpus`` processes with torchrun; its exit code."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={args.gpus}', '-m', 'genforce_core.cli.main', 'metrics',
               *_child_argv(args)]
    return subprocess.run(command).returncode


def run(args: argparse.Namespace) -> int:
    import torch
    from mmengine.dist import get_dist_info

    from genforce_core.api import UsageError, init_distributed, load_generator

    from .equivariance import EQ
    from .pr_ppl import PPL, PR

    if args.gpus < 1:
        raise UsageError(f'--gpus must be at least 1, got {args.gpus}')
    if args.num is not None and args.num < 1:
        raise UsageError(f'--num must be at least 1, got {args.num}')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    names = [n.strip() for n in args.metrics.split(',') if n.strip()]
    jobs = [build_job(name, args) for name in names]  # unknown names fail before any work
    if args.gpus > 1 and args.launcher == 'none':
        return launch(args)
    init_distributed(args.launcher)
    rank, world = get_dist_info()
    device = args.device or (f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
                             if torch.cuda.is_available() else 'cpu')
    generator = load_generator(args.checkpoint, device=device, config=args.config)
    run_dir = args.run_dir or osp.dirname(osp.abspath(args.checkpoint))
    shared: dict = {}
    for job in jobs:
        start = time.time()
        computed = job.metric.evaluate_model(generator, args.data, shared, device)
        total = time.time() - start
        results = {job.rename.get(key, key): value for key, value in computed.items()}
        line = dict(results=results, metric=job.name, total_time=total,
                    total_time_str=format_time(total), num_gpus=world,
                    snapshot_pkl=osp.relpath(osp.abspath(args.checkpoint), run_dir),
                    timestamp=time.time())
        if args.num:
            line['num_override'] = args.num
        if args.mode != 'nvidia' and not isinstance(job.metric, (PR, PPL, EQ)):
            line['mode'] = args.mode
        if rank == 0:
            report(line, run_dir)
    return 0
