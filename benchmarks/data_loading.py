"""Images per second through a torch DataLoader for folder, zip and LMDB datasets.

Generates its own shape images in a temporary directory, then for every storage, resolution
and worker count runs one epoch (batch 32, default collate) and times everything after the
first batch (worker start-up excluded). Prints a table and writes JSON.

    python benchmarks/data_loading.py [--quick] [--num-images 512] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from genforce_core.data import ImageDataset, make_shapes_images, write_dataset
from genforce_core.data.writer import encode_png

DEFAULT_OUT = Path(__file__).parent / 'results' / 'data_loading.json'


def make_sources(root: Path, num_images: int, resolution: int) -> dict[str, Path]:
    """Write the same images as a folder of PNGs, a zip and an LMDB."""
    images = list(make_shapes_images(num_images, resolution, seed=0))
    folder = root / f'folder{resolution}'
    for name, array in images:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(encode_png(array))
    return {
        'folder': folder,
        'zip': write_dataset(images, root / f'd{resolution}.zip', 'zip', progress=False),
        'lmdb': write_dataset(images, root / f'd{resolution}.lmdb', 'lmdb', progress=False),
    }


def time_loader(path: Path, num_workers: int, batch_size: int = 32) -> dict:
    """One shuffled epoch; images/s after the first batch, and the first batch's latency."""
    dataset = ImageDataset(path, xflip=True)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(0), drop_last=True)
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter()
    count = sum(batch['img'].shape[0] for batch in it)
    end = time.perf_counter()
    return dict(images_per_s=count / max(end - first, 1e-9), first_batch_s=first - start,
                images=count + batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-images', type=int, default=512)
    parser.add_argument('--resolutions', type=int, nargs='+', default=[64, 256])
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--quick', action='store_true', help='128 images (a smoke run)')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    num_images = 128 if args.quick else args.num_images
    torch.set_num_threads(1)

    rows = []
    with tempfile.TemporaryDirectory(prefix='genforce_bench_') as tmp:
        for resolution in args.resolutions:
            sources = make_sources(Path(tmp), num_images, resolution)
            for storage, path in sources.items():
                for workers in args.workers:
                    result = time_loader(path, workers)
                    rows.append(dict(storage=storage, resolution=resolution,
                                     num_workers=workers, **result))
                    print(f'{storage:>6} {resolution:>4}px workers={workers}: '
                          f'{result["images_per_s"]:8.0f} img/s', file=sys.stderr)

    header = '| storage | res | workers | images/s | first batch (s) |'
    print(header)
    print('|---|---:|---:|---:|---:|')
    for r in rows:
        print(f'| {r["storage"]} | {r["resolution"]} | {r["num_workers"]} | '
              f'{r["images_per_s"]:.0f} | {r["first_batch_s"]:.3f} |')
    report = dict(
        benchmark='data_loading', num_images=num_images, xflip=True, batch_size=32,
        quick=args.quick, torch=torch.__version__, python=platform.python_version(),
        cpu_count=os.cpu_count(), machine=platform.machine(), rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + '\n')
    print(f'Wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
