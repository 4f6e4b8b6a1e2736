"""Speed of precision/recall and perceptual path length, part by part.

1. ``pr``: :func:`precision_recall` on ``n`` real and ``n`` generated random features of
   ``--dim`` (4096 = VGG16 fc2) for each ``--num``: 4 n^2 distances (radii and coverage of both
   sets), in row batches of 10000. ``pr50k3_full`` does this with n = 50k generated and up to
   200k real: 2 (50k x 200k) + 200k^2 + 50k^2 distances.
2. ``vgg``: VGG16 feature extraction (random weights: speed does not depend on them), uint8
   images at ``--resolution`` resized to 224, images/s at ``--vgg-batch``.
3. ``lpips``: LPIPS-VGG of image pairs at 256x256 (what PPL measures for generators of 256 px
   and more), pairs/s at ``--lpips-batch``; PPL's 50k samples cost 50k pairs plus generation.

    python benchmarks/pr_ppl_speed.py [--device cuda] [--num 2000 5000] [--parts pr vgg lpips]
        [--out FILE]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from genforce_metrics_fid.lpips import lpips_distance
from genforce_metrics_fid.precision_recall import precision_recall
from genforce_metrics_fid.vgg16 import random_vgg16

DEFAULT_OUT = Path(__file__).parent / 'results' / 'pr_ppl_speed.json'


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int = 1) -> float:
    fn()  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def bench_pr(args, device) -> list[dict]:
    rows = []
    for n in args.num:
        gen = torch.Generator().manual_seed(n)
        real = torch.randn(n, args.dim, generator=gen).to(device)
        fake = (torch.randn(n, args.dim, generator=gen) * 1.1).to(device)
        seconds = timed(functools.partial(precision_recall, real, fake, 3), device)
        rows.append(dict(part='pr', n=n, dim=args.dim, seconds=seconds,
                         rate=4 * n * n / seconds, unit='distances/s'))
    return rows


def bench_vgg(args, device) -> list[dict]:
    net = random_vgg16(0).to(device)
    img = torch.randint(0, 256, (args.vgg_batch, 3, args.resolution, args.resolution),
                        dtype=torch.uint8, device=device)
    seconds = timed(lambda: net(img), device, args.repeats)
    return [dict(part='vgg', n=args.vgg_batch, resolution=args.resolution, seconds=seconds,
                 rate=args.vgg_batch / seconds, unit='img/s')]


def bench_lpips(args, device) -> list[dict]:
    net = random_vgg16(0, fc_dim=0, lpips=True).to(device)
    x0 = torch.rand(args.lpips_batch, 3, 256, 256, device=device) * 255
    x1 = torch.rand(args.lpips_batch, 3, 256, 256, device=device) * 255
    with torch.no_grad():
        seconds = timed(lambda: lpips_distance(net, x0, x1), device, args.repeats)
    return [dict(part='lpips', n=args.lpips_batch, resolution=256, seconds=seconds,
                 rate=args.lpips_batch / seconds, unit='pairs/s')]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--parts', nargs='+', default=['pr', 'vgg', 'lpips'],
                        choices=['pr', 'vgg', 'lpips'])
    parser.add_argument('--num', nargs='+', type=int, default=[1000, 2000])
    parser.add_argument('--dim', type=int, default=4096)
    parser.add_argument('--resolution', type=int, default=256)
    parser.add_argument('--vgg-batch', type=int, default=8)
    parser.add_argument('--lpips-batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    for part in args.parts:
        rows += {'pr': bench_pr, 'vgg': bench_vgg, 'lpips': bench_lpips}[part](args, device)
    print(f'{"part":<6} {"n":>6} {"seconds":>9} {"rate":>14}')
    for row in rows:
        print(f'{row["part"]:<6} {row["n"]:>6} {row["seconds"]:>9.3f} '
              f'{row["rate"]:>10.4g} {row["unit"]}')
    info = dict(device=str(device), torch=torch.__version__, python=sys.version.split()[0],
                machine=platform.machine(), cpus=os.cpu_count(),
                threads=torch.get_num_threads(),
                gpu=torch.cuda.get_device_name(device) if device.type == 'cuda' else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(info=info, results=rows), indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
