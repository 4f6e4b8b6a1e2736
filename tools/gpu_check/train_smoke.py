"""GPU check steps ``train_fp16`` / ``train_amp``: a short StyleGAN2 training at 64x64 through
``genforce train``, then ``--resume`` to twice as many images.

``fp16`` keeps the config's official mixed precision (float16 in the top 4 resolutions of G and
D, conv clamp 256), ``amp`` has no float16 layers and trains with ``--amp`` (mmengine's
AmpOptimWrapper, dynamic loss scale). The dataset is the built-in shapes at 64x64 (an LMDB for
fp16, a zip for amp, so that both readers run). Checks: both runs exit 0 (a NaN/Inf loss stops
a run), every logged loss is finite, the checkpoints of both halves exist, the second run
started from the first one's last iteration and ended at twice it, the amp checkpoint holds the
loss scalers, and the EMA generator of the last checkpoint gives finite images.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_CONFIG = REPO / 'configs' / 'stylegan2_ffhq256.py'

CONFIG = '''\
# Written by tools/gpu_check/train_smoke.py: {precision} smoke of StyleGAN2 at {res}x{res}.
_base_ = [{base!r}]
model = dict(
    generator=dict(img_resolution={res}, {g_tiny}
                   synthesis_kwargs=dict(num_fp16_res={fp16_res}, {s_tiny})),
    discriminator=dict(img_resolution={res}, num_fp16_res={fp16_res}, {s_tiny}),
)
train_dataloader = dict(batch_size={batch}, num_workers={workers}, persistent_workers=False,
                        dataset=dict(path={data!r}, resolution={res}))
train_cfg = dict(total_kimg={kimg})
default_hooks = dict(logger=dict(interval=2))
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg={kimg}, num_samples=16),
    dict(type='GANProgressHook', interval=2),
    dict(type='KimgCheckpointHook', interval_kimg={kimg}, max_keep_ckpts=5),
]
'''
# Rehearsal on the CPU: the same code paths with a network small enough to train in seconds.
TINY_G = 'z_dim=32, w_dim=32, mapping_kwargs=dict(num_layers=2),'
TINY_S = 'channel_base=512, channel_max=32'


def write_config(path: Path, *, precision: str, res: int, batch: int, kimg: float, data: Path,
                 workers: int, tiny: bool = False) -> Path:
    """A config for the smoke, inheriting the paper256-like StyleGAN2 config."""
    path.write_text(CONFIG.format(precision=precision, res=res, base=str(BASE_CONFIG),
                                  fp16_res=4 if precision == 'fp16' else 0, batch=batch,
                                  workers=workers, data=str(data), kimg=kimg,
                                  g_tiny=TINY_G if tiny else '', s_tiny=TINY_S if tiny else ''))
    return path


def train(config: Path, work_dir: Path, *extra: str) -> tuple[int, float, str]:
    """``genforce train`` in a fresh process; (exit code, seconds, output)."""
    cmd = [sys.executable, '-m', 'genforce_core.cli.main', 'train', str(config),
           '--work-dir', str(work_dir), *extra]
    print('$', ' '.join(cmd), flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout[-20000:], flush=True)
    return proc.returncode, time.monotonic() - start, proc.stdout


def logged_losses(work_dir: Path) -> list[dict]:
    """Every ``scalars.json`` record of the runs in ``work_dir`` that holds a loss."""
    records = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if any('loss' in key for key in record):
                records.append(record)
    return records


def loss_summary(records: list[dict]) -> dict:
    """``{key: {first, last, finite}}`` over the loss keys of ``records``."""
    out: dict[str, dict] = {}
    for record in records:
        for key, value in record.items():
            if 'loss' not in key or not isinstance(value, (int, float)):
                continue
            entry = out.setdefault(key, dict(first=value, finite=True))
            entry['last'] = value
            entry['finite'] = entry['finite'] and math.isfinite(value)
    return out


def checkpoint_facts(path: Path, device: str) -> dict:
    """Iteration, images seen, loss scalers and a sample of the EMA generator's output."""
    import torch

    from genforce_core import load_generator
    from genforce_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    optim = ckpt.get('optimizer') or {}
    scalers = sorted(k for k, v in optim.items() if isinstance(v, dict) and 'loss_scaler' in v)
    G = load_generator(path, device=device)
    torch.manual_seed(0)
    with torch.no_grad():
        z = torch.randn(4, G.z_dim, device=device)
        img = G(z, torch.zeros(4, G.c_dim, device=device)).float()
    return dict(iter=int(ckpt['meta'].get('iter', -1)),
                images_seen=int(ckpt['state_dict'].get('images_seen', torch.tensor(-1))),
                loss_scalers=scalers, sample_finite=bool(torch.isfinite(img).all()),
                sample_range=[round(img.min().item(), 3), round(img.max().item(), 3)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--precision', choices=['fp16', 'amp'], required=True)
    parser.add_argument('--work-dir', type=Path, required=True)
    parser.add_argument('--json', type=Path, required=True)
    parser.add_argument('--resolution', type=int, default=64)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--iters', type=int, default=16, help='iterations of the first run')
    parser.add_argument('--rehearse', action='store_true',
                        help='on the CPU: 32x32, batch 4, 4 iterations, no --amp')
    args = parser.parse_args(argv)

    import shutil

    from genforce_core.data.builtin import ensure_builtin_dataset

    device = 'cpu' if args.rehearse else 'cuda'
    res, batch, iters = ((32, 4, 4) if args.rehearse
                         else (args.resolution, args.batch, args.iters))
    shutil.rmtree(args.work_dir, ignore_errors=True)
    args.work_dir.mkdir(parents=True)
    fmt = 'lmdb' if args.precision == 'fp16' else 'zip'
    data = ensure_builtin_dataset(args.work_dir / 'data', resolution=res,
                                  num_images=max(4 * batch, 32), fmt=fmt)
    kimg = batch * iters / 1000
    config = write_config(args.work_dir / f'smoke_{args.precision}.py', precision=args.precision,
                          res=res, batch=batch, kimg=kimg, data=data,
                          workers=min(4, os.cpu_count() or 1), tiny=args.rehearse)
    amp = ['--amp'] if args.precision == 'amp' and not args.rehearse else []
    run_dir = args.work_dir / 'run'

    code1, sec1, _ = train(config, run_dir, *amp)
    first = run_dir / f'iter_{iters}.pth'
    code2, sec2, out2 = train(config, run_dir, '--resume', *amp,
                              '--cfg-options', f'train_cfg.total_kimg={2 * kimg}')
    last = run_dir / f'iter_{2 * iters}.pth'
    losses = loss_summary(logged_losses(run_dir))
    facts = checkpoint_facts(last, device) if last.is_file() else {}
    resumed = re.search(rf'iter_{iters}\.pth', out2) is not None
    checks = {
        'first run exit 0': code1 == 0,
        'resumed run exit 0': code2 == 0,
        f'checkpoint iter_{iters}.pth': first.is_file(),
        f'checkpoint iter_{2 * iters}.pth': last.is_file(),
        f'resumed from iter_{iters}.pth': resumed,
        'final iteration and images': (facts.get('iter') == 2 * iters
                                       and facts.get('images_seen') == 2 * iters * batch),
        'losses logged': bool(losses),
        'losses finite': bool(losses) and all(v['finite'] for v in losses.values()),
        'EMA generator output finite': bool(facts.get('sample_finite')),
    }
    if amp:
        checks['loss scalers in checkpoint'] = bool(facts.get('loss_scalers'))
    failed = [name for name, ok in checks.items() if not ok]
    result = dict(precision=args.precision, device=device, amp=bool(amp), resolution=res,
                  batch=batch, iterations=iters, dataset=str(data),
                  seconds=[round(sec1, 1), round(sec2, 1)], losses=losses,
                  checkpoint=facts, checks=checks,
                  note=('rehearsal on the CPU, fp32. ' if args.rehearse else '')
                  + ('FAILED: ' + ', '.join(failed) if failed else 'all checks passed'))
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
