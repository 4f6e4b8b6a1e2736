"""Arguments and set-up shared by ``genforce train`` and ``genforce test``."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config

from ..config import load_config, parse_cfg_option
from ..engine.launch import init_distributed


class CfgOptionsAction(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` into a dict; a malformed item is a usage error."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values:
            try:
                key, value = parse_cfg_option(item)
            except ValueError as err:
                raise argparse.ArgumentError(self, str(err)) from None
            options[key] = value
        setattr(namespace, self.dest, options)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='config file (mmengine Python config), or the name of a '
                        'packaged config (`genforce configs`), or PACKAGE::PATH')
    parser.add_argument('--work-dir', help='where logs, samples and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        metavar='KEY=VALUE',
                        help='override config entries, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher, set by tools/dist_*.sh and tools/slurm_*.sh '
                        '(default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='start a new run in a work dir that holds another run, deleting '
                        "that run's checkpoints and samples (default: refuse)")
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='full console output (environment, config) and tracebacks')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def prepare_config(args: argparse.Namespace) -> Config:
    """Load and check the config, apply CLI overrides, protect the work dir (train), and join
    the process group if launched so."""
    from ..engine.workdir import claim_work_dir
    from ..validate import validate_config

    if getattr(args, 'verbose', False):
        os.environ['GENFORCE_VERBOSE'] = '1'
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        # cfg.filename: a packaged config's name or PACKAGE::PATH resolved to its file
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(cfg.filename))[0])
    training = getattr(args, 'command', None) == 'train'
    validate_config(cfg, args.config, train=training)
    if training and int(os.environ.get('RANK', '0')) == 0:
        claim_work_dir(cfg.work_dir, resume=bool(cfg.get('resume')) or bool(
            getattr(args, 'resume', None)), overwrite=getattr(args, 'overwrite', False))
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    init_distributed(args.launcher, backend=_usable_backend(backend))
    return cfg


def _usable_backend(backend: str | None) -> str | None:
    """NCCL needs GPUs; a config written for GPUs still runs on CPU with gloo."""
    import torch

    if backend == 'nccl' and not torch.cuda.is_available():
        return 'gloo'
    return backend
