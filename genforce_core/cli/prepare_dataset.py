"""``genforce prepare-dataset``: write a folder of images as a zip or LMDB training dataset."""
from __future__ import annotations

import argparse

from genforce_core.data.prepare import TRANSFORMS, prepare_dataset

from .helpfmt import HelpFormatter


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``prepare-dataset`` subcommand."""
    parser = subparsers.add_parser(
        'prepare-dataset', formatter_class=HelpFormatter,
        help='convert a folder of images into a zip or LMDB dataset',
        description='Convert a folder of images (or a zip / LMDB) into a training dataset: '
                    'crop and resize to a square resolution, attach labels, and write PNGs into '
                    'a zip (NVIDIA layout, dataset.json) or an LMDB. Written atomically.')
    parser.add_argument('src', metavar='SRC', help='folder of images, .zip or LMDB directory')
    parser.add_argument('dest', metavar='DEST', help='output .zip file or LMDB directory')
    parser.add_argument('--format', choices=('zip', 'lmdb'), default=None,
                        help='output format (default: zip if DEST ends in .zip, else lmdb)')
    parser.add_argument('--resolution', type=int, default=None, metavar='R',
                        help='output side length in pixels (default: keep the source size)')
    parser.add_argument('--transform', choices=TRANSFORMS, default=None,
                        help='center-crop: square crop + Lanczos resize; center-crop-wide: 2:1 '
                             'crop letterboxed on a square; none: images must already be RxR '
                             '(default: center-crop with --resolution, else none)')
    parser.add_argument('--labels', default=None, metavar='FILE',
                        help='JSON {"labels": [[relpath, label], ...]} or {relpath: label}; '
                             'default: the source\'s dataset.json if any')
    parser.add_argument('--max-images', type=int, default=None, metavar='N',
                        help='write only the first N images, sorted by path (default: all)')
    parser.add_argument('--channels', type=int, choices=(1, 3), default=3,
                        help='3 converts to RGB (default), 1 to grayscale')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip images that cannot be decoded instead of failing')
    parser.add_argument('--compress-level', type=int, default=1, choices=range(10),
                        metavar='0-9', help='PNG compression level (default 1)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing DEST')
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Handle ``genforce prepare-dataset``."""
    prepare_dataset(args.src, args.dest, fmt=args.format, resolution=args.resolution,
                    transform=args.transform, labels=args.labels, max_images=args.max_images,
                    channels=args.channels, overwrite=args.overwrite, skip_bad=args.skip_bad,
                    compress_level=args.compress_level)
    return 0
