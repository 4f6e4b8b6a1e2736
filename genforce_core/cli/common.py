"""Arguments and set-up shared by ``genforce train`` and ``genforce test``."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config

from ..config import DictAction, load_config
from ..engine.launch import init_distributed


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', help='config file (mmengine Python config)')
    parser.add_argument('--work-dir', help='where logs, samples and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher (set by tools/dist_*.sh and tools/slurm_*.sh)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def prepare_config(args: argparse.Namespace) -> Config:
    """Load the config, apply CLI overrides, and join the process group if launched so."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    init_distributed(args.launcher, backend=_usable_backend(backend))
    return cfg


def _usable_backend(backend: str | None) -> str | None:
    """NCCL needs GPUs; a config written for GPUs still runs on CPU with gloo."""
    import torch

    if backend == 'nccl' and not torch.cuda.is_available():
        return 'gloo'
    return backend
