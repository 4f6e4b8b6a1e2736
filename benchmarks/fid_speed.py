"""Speed of the FID pipeline: Inception feature extraction by batch size, and the full metric.

1. Extraction: images/s of the TF-FID Inception-v3 (uint8 input at ``--resolution``, TF resize
   to 299) for each batch size, after one warm-up batch.
   Side by side (same weights, images, device and batch; timed batches take turns, the
   fastest of ``--repeats`` counts): our extraction in each mode (``nvidia``,
   ``pytorch_fid``, ``clean``) vs pytorch-fid's own ``InceptionV3`` (fed ``uint8 / 255`` as
   its DataLoader does), with a check that our ``pytorch_fid`` mode gives its features; and
   the clean resize alone: clean-fid's per-image PIL resizer (what its DataLoader workers
   run, on the CPU) vs ours (batched, on the device). pytorch-fid and clean-fid are test-only
   dependencies: without them these rows are skipped.
2. Full metric: a StyleGAN2 generator (genforce-plugin-stylegan2; random weights, speed does
   not depend on them) generates ``--count`` images which are extracted
   * one after the other (generate a batch, extract it, ...: ``overlap=False``), and
   * overlapped (``overlap=True``): a producer thread generates batch b+1 while the detector
     runs on batch b; on CUDA the producer works in its own stream and hands each batch over
     with an event, and features stay on the GPU until the end (no per-batch sync), so the GPU
     is never idle waiting for the host. On a CPU both compete for the same cores.
   The time for 10k images is measured when ``--count`` is 10000 and otherwise extrapolated
   linearly from ``--count`` (the JSON says which). The FID formula itself (``sqrtm`` of
   2048x2048) is timed once on random statistics.

    python benchmarks/fid_speed.py [--device cuda] [--batch-sizes 8 32 64] [--count 256]
        [--resolution 256] [--inception PATH] [--side-by-side-batch 8] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genforce_metrics_fid.features import extract_generator
from genforce_metrics_fid.inception import MODES
from genforce_metrics_fid.scores import frechet_distance
from genforce_metrics_fid.testing import random_inception

DEFAULT_OUT = Path(__file__).parent / 'results' / 'fid_speed.json'


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def detector_for(args, device):
    if args.inception:
        from genforce_metrics_fid.weights import load_inception
        return load_inception(args.inception, device=device)
    return random_inception(0, input_size=299).to(device)


def time_extraction(detector, device, resolution: int, batch: int, repeats: int) -> float:
    img = torch.randint(0, 256, (batch, 3, resolution, resolution), dtype=torch.uint8,
                        device=device)
    detector(img)  # warm-up (cuDNN autotune, allocator)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        detector(img)
    sync(device)
    return batch * repeats / (time.perf_counter() - start)


def _pytorch_fid_model(detector, device):
    """pytorch-fid's ``InceptionV3`` (pool3 features) holding ``detector``'s weights."""
    import pytorch_fid.inception as pf_inception
    fetch = pf_inception.load_state_dict_from_url
    pf_inception.load_state_dict_from_url = lambda *a, **k: detector.state_dict()
    try:
        model = pf_inception.InceptionV3([3])
    finally:
        pf_inception.load_state_dict_from_url = fetch
    return model.to(device).eval()


def time_side_by_side(detector, device, resolution: int, batch: int, repeats: int) -> dict:
    """img/s of our extraction per mode and of pytorch-fid's network, batches interleaved."""
    try:
        theirs = _pytorch_fid_model(detector, device)
    except ImportError:
        return dict(skipped='pytorch-fid is not installed (pip install -e .[test])')
    img = torch.randint(0, 256, (batch, 3, resolution, resolution), dtype=torch.uint8,
                        device=device)
    runs = {f'ours ({mode})': detector.with_mode(mode) for mode in MODES}

    def pytorch_fid(x):
        with torch.no_grad():
            return theirs(x.float() / 255)[0].flatten(1)
    runs['pytorch-fid InceptionV3'] = pytorch_fid
    ours, reference = runs['ours (pytorch_fid)'](img)[0], pytorch_fid(img)  # + warm-up
    difference = ((ours - reference).abs().max() / reference.abs().max()).item()
    for run in runs.values():
        run(img)
    seconds = best_times({name: lambda run=run: run(img) for name, run in runs.items()},
                         device, repeats)
    rows = [dict(name=name, images_per_s=batch / s) for name, s in seconds.items()]
    ratio = seconds['pytorch-fid InceptionV3'] / seconds['ours (pytorch_fid)']
    return dict(batch=batch, rows=rows, ours_pytorch_fid_speedup=ratio,
                pytorch_fid_features_max_rel_difference=difference, clean_resize=time_clean_resize(
                    detector.with_mode('clean'), img, repeats))


def time_clean_resize(detector, img: torch.Tensor, repeats: int) -> dict:
    """img/s of the clean resize + scaling: clean-fid's PIL resizer per image vs ours."""
    try:
        from cleanfid.resize import build_resizer
    except ImportError:
        return dict(skipped='clean-fid is not installed (pip install -e .[test])')
    resize = build_resizer('clean')
    arrays = img.permute(0, 2, 3, 1).cpu().numpy()

    def clean_fid():
        return torch.stack([torch.from_numpy(resize(a)).permute(2, 0, 1) for a in arrays]
                           ).to(img.device).sub(128).div(128)
    runs = {'ours (clean) resize': lambda: detector.preprocess(img), 'clean-fid resize': clean_fid}
    same = torch.equal(clean_fid(), detector.preprocess(img))  # + warm-up
    seconds = best_times(runs, img.device, repeats)
    return dict(rows=[dict(name=name, images_per_s=len(img) / s)
                      for name, s in seconds.items()], identical=same)


def best_times(runs: dict, device, repeats: int) -> dict[str, float]:
    """The fastest of ``repeats`` timed calls of each run, the runs taking turns (so a load
    change on a shared machine hits all of them alike; the minimum filters the rest)."""
    best = dict.fromkeys(runs, float('inf'))
    for _ in range(repeats):
        for name, run in runs.items():
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def print_side_by_side(side: dict) -> None:
    if 'skipped' in side:
        print(f'\nSide by side: skipped, {side["skipped"]}')
        return
    print(f'\nSide by side, batch {side["batch"]} (same weights, images and device):')
    for row in side['rows'] + side['clean_resize'].get('rows', []):
        print(f'  {row["name"]:<26} {row["images_per_s"]:>10.1f} img/s')
    print(f'  ours (pytorch_fid) / pytorch-fid: {side["ours_pytorch_fid_speedup"]:.2f}x, '
          f'features max rel. difference: '
          f'{side["pytorch_fid_features_max_rel_difference"]:.1e}; clean resize '
          f'identical to clean-fid\'s: {side["clean_resize"].get("identical")}')


def make_generator(resolution: int, device):
    from genforce_stylegan2.networks import Generator
    torch.manual_seed(0)
    return Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                     synthesis_kwargs=dict(channel_base=16384 if resolution <= 64 else 32768)
                     ).to(device).eval().requires_grad_(False)


def time_generation_only(G, device, count: int, batch: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, count, batch):
            G(torch.randn(min(batch, count - i), G.z_dim, device=device),
              torch.zeros(min(batch, count - i), 0, device=device))
    sync(device)
    return time.perf_counter() - start


def time_metric(detector, G, device, count: int, batch: int, overlap: bool) -> float:
    start = time.perf_counter()
    extract_generator(detector, lambda z, c: G(z, c), G.z_dim, count, batch_size=batch,
                      overlap=overlap, progress=False)
    sync(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-sizes', type=int, nargs='+')
    parser.add_argument('--repeats', type=int, help='timed batches per batch size')
    parser.add_argument('--resolution', type=int, help='generated/input image size')
    parser.add_argument('--count', type=int, help='images for the full-metric timing')
    parser.add_argument('--metric-batch', type=int, help='batch size of the full metric')
    parser.add_argument('--inception', help='real weights (default: random, same speed)')
    parser.add_argument('--side-by-side-batch', type=int,
                        help='batch of the side-by-side comparison (default 64 cuda, 4 cpu)')
    parser.add_argument('--skip-sqrtm', action='store_true')
    parser.add_argument('--out', type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    batch_sizes = args.batch_sizes or ([1, 8, 32, 64, 128, 256] if cuda else [1, 8, 32])
    repeats = args.repeats or (20 if cuda else 2)
    resolution = args.resolution or (256 if cuda else 64)
    count = args.count or (10000 if cuda else 64)
    metric_batch = args.metric_batch or (64 if cuda else 16)
    if cuda:
        torch.backends.cudnn.benchmark = True

    detector = detector_for(args, device)
    rows = []
    print(f'Inception extraction on {device} ({torch.get_num_threads()} threads), input '
          f'{resolution}px uint8 → 299')
    print(f'{"batch":>6} {"img/s":>10}')
    for batch in batch_sizes:
        rate = time_extraction(detector, device, resolution, batch, repeats)
        rows.append(dict(batch=batch, images_per_s=rate))
        print(f'{batch:>6} {rate:>10.1f}')

    side = time_side_by_side(detector, device, resolution,
                             args.side_by_side_batch or (64 if cuda else 4), repeats)
    print_side_by_side(side)

    G = make_generator(resolution, device)
    time_metric(detector, G, device, metric_batch, metric_batch, False)  # warm-up
    gen_s = time_generation_only(G, device, count, metric_batch)
    serial_s = time_metric(detector, G, device, count, metric_batch, overlap=False)
    overlap_s = time_metric(detector, G, device, count, metric_batch, overlap=True)
    scale = 10000 / count
    metric = dict(count=count, batch=metric_batch, generator=f'StyleGAN2 {resolution}px',
                  generation_only_s=gen_s, serial_s=serial_s, overlapped_s=overlap_s,
                  extrapolated_to_10k=count != 10000,
                  serial_10k_s=serial_s * scale, overlapped_10k_s=overlap_s * scale)
    print(f'\nFull metric, {count} generated images (batch {metric_batch}, '
          f'{metric["generator"]}):')
    print(f'  generation only {gen_s:8.2f} s')
    print(f'  serial          {serial_s:8.2f} s   (10k: {serial_s * scale:8.1f} s)')
    print(f'  overlapped      {overlap_s:8.2f} s   (10k: {overlap_s * scale:8.1f} s)'
          + ('   [10k extrapolated linearly]' if count != 10000 else ''))

    if not args.skip_sqrtm:
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(2, 2500, 2048)).astype(np.float64)
        stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
        start = time.perf_counter()
        frechet_distance(*stats[0], *stats[1])
        metric['fid_formula_s'] = time.perf_counter() - start
        print(f'  FID formula (sqrtm 2048x2048): {metric["fid_formula_s"]:.1f} s')

    result = dict(device=str(device), gpu=torch.cuda.get_device_name(device) if cuda else None,
                  cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
                  threads=torch.get_num_threads(), torch=torch.__version__,
                  input_resolution=resolution, extraction=rows, side_by_side=side,
                  full_metric=metric)
    out = args.out or (DEFAULT_OUT.with_name('fid_speed_cuda.json') if cuda else DEFAULT_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
