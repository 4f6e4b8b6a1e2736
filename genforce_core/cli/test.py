"""``genforce test CONFIG CHECKPOINT``: evaluate a checkpoint with the config's metrics."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from ..engine.runner import build_runner
from ..errors import ConfigError
from .common import add_run_arguments, prepare_config
from .helpfmt import add_command
from .train import add_work_dir_aliases


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'test', help='evaluate a checkpoint', description=__doc__)
    add_run_arguments(parser)
    add_work_dir_aliases(parser, '--work_dir')
    parser.add_argument('checkpoint', help='checkpoint file to evaluate')
    parser.add_argument('--inception', metavar='PATH',
                        help='Inception weights for FID/KID/IS metrics that do not name their '
                        'own; sets $GENFORCE_INCEPTION_WEIGHTS (default: that variable, else '
                        'the cache folder)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    if getattr(args, 'inception', None):
        os.environ['GENFORCE_INCEPTION_WEIGHTS'] = os.path.abspath(args.inception)
    cfg = prepare_config(args)
    missing = [k for k in ('test_dataloader', 'test_cfg', 'test_evaluator') if not cfg.get(k)]
    if missing:
        raise ConfigError(f'{args.config} has no {", ".join(missing)}: nothing to evaluate. '
                          'Add a metric (e.g. FID from genforce-plugin-metrics-fid) to the '
                          'config.')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    runner = build_runner(cfg)
    metrics = runner.test()
    for name, value in (metrics or {}).items():
        print(f'{name}: {value}')
    return 0
