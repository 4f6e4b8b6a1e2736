"""GPU check step ``fid``: the overlapped FID extraction gives the serial one's features, then
``benchmarks/fid_speed.py`` (Inception img/s by batch size; serial vs overlapped generate +
extract).

The overlapped path generates batch b+1 in a side CUDA stream while the Inception network runs
on batch b; it must not change a single feature. Both runs use the same seeded latents, a
StyleGAN2 generator with constant noise and a randomly initialised TF-Inception (speed and this
check do not depend on the weights), with cuDNN's autotuner off so that both pick the same
kernels.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # of the largest feature magnitude


def load_fid_speed():
    spec = importlib.util.spec_from_file_location('fid_speed',
                                                  REPO / 'benchmarks' / 'fid_speed.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def overlap_check(bench, device: str, resolution: int, count: int, batch: int) -> dict:
    """Max |difference| between the features of the serial and the overlapped extraction."""
    import torch

    from genforce_metrics_fid.features import extract_generator
    from genforce_metrics_fid.testing import random_inception

    torch.backends.cudnn.benchmark = False
    detector = random_inception(0, input_size=299).to(device)
    G = bench.make_generator(resolution, torch.device(device))

    def generate(z, c):
        return G(z, c, noise_mode='const')

    feats = {}
    for overlap in (False, True):
        feats[overlap], _ = extract_generator(detector, generate, G.z_dim, count,
                                              batch_size=batch, overlap=overlap, progress=False)
    diff = (feats[True].float() - feats[False].float()).abs().max().item()
    scale = feats[False].float().abs().max().item()
    return dict(count=count, batch=batch, resolution=resolution, max_abs_diff=diff,
                max_abs_feature=scale, tolerance=TOLERANCE * scale,
                ok=bool(len(feats[True]) == count and diff <= TOLERANCE * scale))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', type=Path, required=True)
    parser.add_argument('--rehearse', action='store_true', help='on the CPU, 2-4 images')
    args = parser.parse_args(argv)

    bench = load_fid_speed()
    if args.rehearse:
        device, check = 'cpu', dict(resolution=32, count=4, batch=2)
        speed_args = ['--device', 'cpu', '--batch-sizes', '2', '--repeats', '1',
                      '--resolution', '32', '--count', '2', '--metric-batch', '2']
    else:
        device, check = 'cuda', dict(resolution=256, count=512, batch=64)
        speed_args = ['--device', 'cuda', '--batch-sizes', '32', '64', '128', '256',
                      '--repeats', '10', '--resolution', '256', '--count', '2048',
                      '--metric-batch', '64']
    if args.rehearse and hasattr(bench, 'time_side_by_side'):
        speed_args += ['--side-by-side-batch', '1']  # pytorch-fid / clean-fid rows, if present
    result: dict = dict(overlap_check=overlap_check(bench, device, **check))
    print(f'[fid] overlap check: {json.dumps(result["overlap_check"])}', flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'fid_speed.json'
        code = bench.main([*speed_args, '--skip-sqrtm', '--out', str(out)])
        result['speed'] = json.loads(out.read_text()) if out.is_file() else None
    ok = result['overlap_check']['ok'] and code == 0 and result['speed'] is not None
    best = max((r['images_per_s'] for r in (result['speed'] or {}).get('extraction', [])),
               default=None)
    result['note'] = (('rehearsal on the CPU; ' if args.rehearse else '')
                      + ('overlap == serial' if result['overlap_check']['ok']
                         else 'overlapped features DIFFER from serial')
                      + (f', Inception up to {best:.0f} img/s' if best else ''))
    args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
