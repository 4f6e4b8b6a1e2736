"""``genforce fid-stats DATASET``: precompute the real-image statistics of a dataset."""
from __future__ import annotations

import argparse

from genforce_core.api import add_command

from .inception import MODES


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, 'fid-stats',
        help='precompute the FID/KID real-image statistics of a dataset',
        description=__doc__ + ' Later evaluations with the same dataset content, detector, '
        'mode and mirror setting read them from the cache.')
    parser.add_argument('dataset', help='folder, .zip or LMDB directory of images')
    parser.add_argument('--inception', metavar='PATH',
                        help='Inception weights (inception-2015-12-05.pt or '
                        'pt_inception-2015-12-05-*.pth); default $GENFORCE_INCEPTION_WEIGHTS, '
                        'the cache folder, or the download')
    parser.add_argument('--mode', choices=MODES, default='nvidia',
                        help='whose numbers to reproduce: nvidia (default; StyleGAN papers), '
                        'pytorch_fid or clean (clean-fid)')
    parser.add_argument('--max-items', type=int, help='use the first N images (default: all)')
    parser.add_argument('--mirror', action='store_true', help='add x-flipped images')
    parser.add_argument('--batch-size', type=int, default=64, help='images per batch')
    parser.add_argument('--num-workers', type=int, default=2,
                        help='image decoding workers')
    parser.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    parser.add_argument('--cache-dir', help='default $GENFORCE_CACHE_DIR/fid_stats or '
                        '~/.cache/genforce/fid_stats')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='split the extraction over the processes of a distributed launch')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from genforce_core.api import init_distributed

    from .evaluation import get_detector
    from .stats_cache import real_features

    init_distributed(args.launcher)
    device = args.device or (f'cuda:{torch.cuda.current_device()}' if torch.cuda.is_available()
                             else 'cpu')
    detector = get_detector(args.inception, device, args.mode)
    stats = real_features(detector, args.dataset, max_items=args.max_items, mirror=args.mirror,
                          batch_size=args.batch_size, num_workers=args.num_workers,
                          cache_dir=args.cache_dir)
    print(f'{len(stats["feats"])} images: statistics in {stats["path"]}')
    return 0
