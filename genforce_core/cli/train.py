"""``genforce train CONFIG``: train a GAN with mmengine's Runner."""
from __future__ import annotations

import argparse

from ..engine.runner import build_runner
from ..engine.workdir import find_latest_complete_checkpoint
from ..errors import ConfigError
from ..models import NonFiniteLossError
from .common import add_run_arguments, prepare_config


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser('train', help='train a model from a config',
                                   description=__doc__)
    add_run_arguments(parser)
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help='resume from CKPT, or without a value from the newest complete '
                        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = prepare_config(args)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.amp:
        enable_amp(cfg)
    runner = build_runner(cfg)
    try:
        runner.train()
    except NonFiniteLossError as exc:
        last = find_latest_complete_checkpoint(runner.work_dir)
        raise NonFiniteLossError(f'{exc}\nlast complete checkpoint: {last}') from None
    return 0


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
