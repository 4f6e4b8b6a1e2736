"""``genforce resave-checkpoint CHECKPOINT``: store a checkpoint's config as plain data.

Checkpoints written by older genforce versions hold their config as Python source, which is
read only when it is plain literals. This command rewrites such a file with the config stored as
data: from the file itself when it is plain, or from a config file you trust (``--config``).
Nothing from the checkpoint is run; the weights and training state are copied unchanged.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import drop_executable_meta, load_checkpoint, save_checkpoint
from ..config import load_config
from ..errors import CheckpointError
from ..stored_config import config_from_checkpoint, config_to_data
from .helpfmt import HelpFormatter


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        'resave-checkpoint', help="store a checkpoint's config as plain data",
        description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--config', help='the config the checkpoint was trained with '
                        '(default: its stored config, if that is plain data)')
    parser.add_argument('--output', '-o', help='where to write (default: replace CHECKPOINT '
                        'atomically)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.checkpoint)
    checkpoint = dict(load_checkpoint(path))
    cfg = load_config(args.config) if args.config else config_from_checkpoint(checkpoint, path)
    meta = checkpoint.get('meta')
    if meta is not None and not isinstance(meta, dict):
        raise CheckpointError(f'{path}: meta is a {type(meta).__name__}, expected a dict')
    checkpoint['meta'] = dict(meta or {}, cfg=config_to_data(cfg))
    drop_executable_meta(checkpoint)
    out = save_checkpoint(checkpoint, args.output or path)
    print(f'Wrote {out} with its config stored as data')
    return 0
