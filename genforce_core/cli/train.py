"""``genforce train CONFIG``: train a GAN with mmengine's Runner.

Familiar flags work too: ``--outdir``/``--work_dir`` (= ``--work-dir``), ``--data PATH``
(= ``--cfg-options train_dataloader.dataset.path=PATH``), ``--kimg N``
(= ``--cfg-options train_cfg.total_kimg=N``) and ``--gpus N``, which starts N local processes
itself (torchrun underneath; CPU processes with gloo when there is no GPU).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..engine.runner import build_runner
from ..engine.workdir import find_latest_complete_checkpoint
from ..errors import ConfigError, UsageError
from ..models import NonFiniteLossError
from .common import add_run_arguments, prepare_config
from .helpfmt import add_command

# Familiar flag -> the config key it sets.
CONFIG_ALIASES = {'data': 'train_dataloader.dataset.path', 'kimg': 'train_cfg.total_kimg'}


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'train', help='train a model from a config',
                         description=__doc__)
    add_run_arguments(parser)
    add_work_dir_aliases(parser, '--outdir', '--work_dir')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help="resume from CKPT, or without a value from the work dir's "
                        'latest complete checkpoint (default: start a new run)')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a CUDA GPU)')
    parser.add_argument('--data', metavar='PATH',
                        help='training dataset: folder, zip or LMDB; sets '
                        'train_dataloader.dataset.path (default: the config\'s)')
    parser.add_argument('--kimg', type=positive(float), metavar='N',
                        help="train for N thousand images; sets train_cfg.total_kimg "
                        "(default: the config's)")
    parser.add_argument('--gpus', type=positive(int), default=1, metavar='N',
                        help='start N local processes, one per GPU (N CPU processes with gloo '
                        'when there is no GPU); batch sizes in configs are per process')
    parser.set_defaults(func=run)


def add_work_dir_aliases(parser: argparse.ArgumentParser, *names: str) -> None:
    """``--outdir`` (NVIDIA) and ``--work_dir`` (original GenForce) for ``--work-dir``."""
    parser.add_argument(*names, dest='work_dir', metavar='WORK_DIR', default=None,
                        help='the same as --work-dir')


def positive(kind: type) -> Callable[[str], Any]:
    """An argparse ``type`` accepting numbers of ``kind`` greater than 0."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f'{text} is not greater than 0')
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def apply_config_aliases(args: argparse.Namespace) -> None:
    """Fold ``--data``/``--kimg`` into ``args.cfg_options`` (a clash with an explicit
    ``--cfg-options`` value is an error, not a silent choice)."""
    options = dict(args.cfg_options or {})
    for flag, key in CONFIG_ALIASES.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if key in options and options[key] != value:
            raise UsageError(f'--{flag} {value} and --cfg-options {key}={options[key]} '
                             'disagree; give only one of them')
        options[key] = value
        setattr(args, flag, None)
    args.cfg_options = options or None


def run(args: argparse.Namespace) -> int:
    apply_config_aliases(args)
    if args.gpus > 1:
        from .launch_local import launch_local

        if args.launcher != 'none':
            raise UsageError(f'--gpus {args.gpus} starts its own processes; drop '
                             f'--launcher {args.launcher}, or drop --gpus when a launcher '
                             'such as tools/dist_train.sh starts them')
        prepare_config(args)  # fail fast, and protect the work dir, before starting anything
        return launch_local(args.gpus, train_worker, args)
    cfg = prepare_config(args)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.amp:
        enable_amp(cfg)
    keep_freed_memory_on_cpu()
    runner = build_runner(cfg)
    try:
        runner.train()
    except NonFiniteLossError as exc:
        last = find_latest_complete_checkpoint(runner.work_dir)
        raise NonFiniteLossError(f'{exc}\nlast complete checkpoint: {last}') from None
    return 0


def train_worker(args: argparse.Namespace) -> int:
    """One process of ``--gpus N``: ``run`` as if started by torchrun."""
    args.gpus, args.launcher = 1, 'pytorch'
    return run(args)


def keep_freed_memory_on_cpu() -> None:
    """Training on the CPU: reuse freed memory instead of faulting it in again (glibc)."""
    import torch

    from ..engine.cpu_memory import keep_freed_memory

    if not torch.cuda.is_available():
        keep_freed_memory()


def enable_amp(cfg) -> None:
    """Switch every optimizer wrapper of the config to mmengine's AmpOptimWrapper."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError('--amp (automatic mixed precision) needs a CUDA GPU, and none is '
                          'visible; train without --amp on this machine')
    optim = cfg.optim_wrapper
    wrappers = [optim] if 'optimizer' in optim else [
        v for k, v in optim.items() if isinstance(v, dict) and 'optimizer' in v]
    for wrapper in wrappers:
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
