"""``genforce synthesize (ZOO_NAME | CHECKPOINT)``: images from any generator.

Each image comes from one seed: ``z = np.random.RandomState(seed).randn(z_dim)`` (as NVIDIA's
``generate.py``), so ``seed0042.png`` is the same image whatever the batch size or the other
seeds (on a given device, with the default ``--batch 1``; with ``--noise-mode random`` the noise
is drawn from ``seed`` too).
A zoo name that is not in the cache yet is downloaded and converted first. ``--fid-num N``
also computes FID over N generated images with the metrics plugin.
NVIDIA's ``generate.py`` flags work too: ``--network``, ``--outdir``, ``--trunc``.
``--translate TX,TY`` and ``--rotate DEG`` move the images of a generator with an input
transform (StyleGAN3), as NVIDIA's ``gen_images.py``: +TX to the right, +TY down (fractions of
the image size), +DEG counter-clockwise.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..errors import GenforceError, UsageError
from .helpfmt import add_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('target', metavar='ZOO_NAME|CHECKPOINT', nargs='?',
                        help='a genforce checkpoint, a work dir (its latest checkpoint) or a '
                        'model-zoo name (genforce zoo list)')
    parser.add_argument('--network', metavar='ZOO_NAME|CHECKPOINT',
                        help="the same as the positional argument (NVIDIA's generate.py)")
    parser.add_argument('--config', help='config to rebuild the model (default: the one '
                        'stored in the checkpoint)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--num', type=int, metavar='N', help='generate seeds 0..N-1 (default 16)')
    which.add_argument('--seeds', type=parse_seeds, help="seeds, e.g. '0-99' or '1,5,10-12' "
                       '(default: --num)')
    parser.add_argument('--batch', type=int, default=1, metavar='B',
                        help='images per forward pass (default 1: each image depends on its '
                        'seed only; larger batches are faster but float rounding in batched '
                        'kernels may change a pixel value by 1)')
    parser.add_argument('--truncation-psi', '--trunc', dest='truncation_psi', type=float,
                        default=1.0, metavar='PSI',
                        help='truncation: pull w towards the average w; 1 is no truncation '
                        '(style-based generators only; refused for others)')
    parser.add_argument('--truncation-cutoff', type=int, default=None, metavar='N',
                        help='truncate only the first N layers (default: all)')
    parser.add_argument('--noise-mode', choices=['const', 'random', 'none'], default='const',
                        help='noise inputs: the stored constant noise, random noise drawn from '
                        'the seed, or none')
    parser.add_argument('--translate', type=parse_translate, metavar='TX,TY',
                        help='move the images by TX image widths right and TY image heights '
                        'down, e.g. 0.25,0 (generators with an input transform: StyleGAN3; '
                        'refused for others; write a negative first value as '
                        '--translate=-0.1,0; default: no motion)')
    parser.add_argument('--rotate', type=parse_angle, metavar='DEG',
                        help='rotate the images by DEG degrees counter-clockwise about their '
                        'centre, before --translate (StyleGAN3; refused for others; default: '
                        'no rotation)')
    label = parser.add_mutually_exclusive_group()
    label.add_argument('--class', dest='class_idx', type=int, metavar='C',
                       help='class label for conditional models (one of --class and --label '
                       'is required for them; default: none)')
    label.add_argument('--label', type=parse_label, metavar='V,V,...',
                       help='the whole label vector of a conditional model, c_dim numbers, '
                       'e.g. the demo\'s shape, colour and ground one-hots: --label '
                       '0,1,0,1,0,0,0,0,0,0,0,1,0,0,0 (a red square on white; default: none)')
    parser.add_argument('--grid', action='store_true', help='also write grid.png')
    parser.add_argument('--out', '--outdir', dest='out', default='out', metavar='DIR',
                        help='output folder')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='torch device to generate on, e.g. cpu, cuda, cuda:1')
    parser.add_argument('--fid-num', type=int, default=0, metavar='N',
                        help='compute FID over N generated images (metrics plugin; '
                        'default 0: no FID)')
    parser.add_argument('--fid-data', metavar='DATA', help='real images for FID (default: the '
                        "dataset in the checkpoint's config)")
    parser.add_argument('--no-verify', action='store_true',
                        help='accept a zoo download without a published sha256')


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'synthesize', help='generate images from a generator',
                         description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def network(args: argparse.Namespace) -> str:
    """The generator named by the positional argument or ``--network`` (one of them)."""
    if args.target and args.network and args.target != args.network:
        raise UsageError(f'two generators given: {args.target} and --network {args.network}; '
                         'give one')
    target = args.target or args.network
    if not target:
        raise UsageError('name the generator: a checkpoint file or a model-zoo name, as the '
                         'first argument or with --network')
    return target


def parse_seeds(text: str) -> list[int]:
    """``'0-3,7'`` -> ``[0, 1, 2, 3, 7]``."""
    seeds: list[int] = []
    try:
        for part in text.split(','):
            if '-' in part.strip()[1:]:
                lo, hi = part.split('-', 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                seeds.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'bad seed list {text!r}; use e.g. 0-99 or 1,5,7-9') from None
    return seeds


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{what} must be a finite number, got {text!r}')
    return value


def parse_translate(text: str) -> tuple[float, float]:
    """``'0.25,-0.1'`` -> ``(0.25, -0.1)``: two finite numbers, fractions of the image size."""
    parts = text.split(',')
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f'expected TX,TY (two numbers, fractions of the image size), got {text!r}')
    return _finite(parts[0], 'TX'), _finite(parts[1], 'TY')


def parse_label(text: str) -> list[float]:
    """``'0,1,0.5'`` -> ``[0.0, 1.0, 0.5]``: finite numbers separated by commas."""
    return [_finite(part, 'each --label value') for part in text.split(',')]


def parse_angle(text: str) -> float:
    """Degrees, a finite number."""
    return _finite(text, 'the angle in degrees')


def resolve_checkpoint(target: str, verify: bool = True) -> Path:
    """A checkpoint file, the latest complete checkpoint of a work dir, or the converted
    checkpoint of a zoo entry (fetched if needed); anything else is a one-line error."""
    path = Path(target)
    if path.is_file():
        return path
    if path.is_dir():
        return _latest_in_work_dir(path)
    from .. import zoo

    names = [e['name'] for e in zoo.list_entries()]
    if target in names:
        return zoo.ensure_converted(target, verify=verify)
    if path.suffix or any(sep in target for sep in (os.sep, os.altsep) if sep):  # a path
        raise UsageError(f'checkpoint {target} does not exist (pass a .pth file, a work dir or '
                         'a model-zoo name)')
    close = difflib.get_close_matches(target, names, n=3, cutoff=0.5)
    hint = f'; did you mean {", ".join(close)}?' if close else ''
    raise UsageError(f'{target} is neither a checkpoint file nor a model-zoo name{hint} '
                     '(`genforce zoo list` shows the names)')


def _latest_in_work_dir(work_dir: Path) -> Path:
    from ..engine.workdir import find_latest_complete_checkpoint

    latest = find_latest_complete_checkpoint(str(work_dir))
    if latest is None:
        raise UsageError(f'{work_dir} is a folder without a complete checkpoint '
                         '(iter_<N>.pth); pass a checkpoint file')
    print(f'Using {latest}, the latest complete checkpoint in {work_dir}')
    return Path(latest)


def _call_kwargs(G: torch.nn.Module, args: argparse.Namespace) -> dict[str, Any]:
    """The sampling options ``G`` takes (see :func:`genforce_core.contracts.sampling_options`);
    truncation asked of a generator without it is a one-line UsageError, never ignored."""
    from ..contracts import sampling_options

    return sampling_options(G, truncation_psi=args.truncation_psi,
                            truncation_cutoff=args.truncation_cutoff, noise_mode=args.noise_mode)


def labels(G: torch.nn.Module, class_idx: int | None, num: int, device: str,
           vector: list[float] | None = None) -> torch.Tensor:
    """``[num, c_dim]`` labels: one-hot ``class_idx`` or the whole ``vector`` (--label)."""
    c_dim = int(getattr(G, 'c_dim', 0))
    c = torch.zeros([num, c_dim], device=device)
    if c_dim:
        if vector is not None:
            if len(vector) != c_dim:
                raise GenforceError(f'--label has {len(vector)} values, the model takes '
                                    f'{c_dim}')
            c[:] = torch.tensor(vector, device=device)
        elif class_idx is None:
            raise GenforceError(f'the model is conditional (c_dim {c_dim}): pass --class C '
                                f'or --label with {c_dim} values')
        elif not 0 <= class_idx < c_dim:
            raise GenforceError(f'--class {class_idx} is out of range [0, {c_dim})')
        else:
            c[:, class_idx] = 1
    elif class_idx is not None or vector is not None:
        print('warning: --class/--label ignored, the model is unconditional')
    return c


def latents(seeds: list[int], z_dim: int, device: str) -> torch.Tensor:
    z = np.stack([np.random.RandomState(seed).randn(z_dim) for seed in seeds])
    return torch.from_numpy(z).float().to(device)


@torch.no_grad()
def generate(G: torch.nn.Module, seeds: list[int], args: argparse.Namespace
             ) -> torch.Tensor:
    """uint8 images ``[N, H, W, C]`` for ``seeds`` (batched; per-seed noise if random)."""
    from ..models.base_gan import to_uint8

    kwargs = _call_kwargs(G, args)
    per_seed = args.noise_mode == 'random'  # the noise must not depend on the batch
    batch = 1 if per_seed else max(1, args.batch)
    out = []
    with tqdm(total=len(seeds), desc='Generating', unit='img') as bar:
        for start in range(0, len(seeds), batch):
            chunk = seeds[start:start + batch]
            if per_seed:
                torch.manual_seed(chunk[0])
            z = latents(chunk, G.z_dim, args.device)
            img = G(z, labels(G, args.class_idx, len(chunk), args.device, args.label), **kwargs)
            out.append(to_uint8(img).permute(0, 2, 3, 1).cpu())
            bar.update(len(chunk))
    return torch.cat(out)


def save_images(images: torch.Tensor, seeds: list[int], out: Path, grid: bool) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)

    def pil(array: np.ndarray) -> Image.Image:
        return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)

    for seed, img in zip(seeds, images.numpy()):
        pil(img).save(out / f'seed{seed:04d}.png')
    if grid:
        from ..hooks.grid import make_grid, save_grid

        # The sample grids' layout; make_grid repeats one channel to RGB, keep it grey here.
        canvas = make_grid(images.permute(0, 3, 1, 2))[..., :images.shape[-1]]
        save_grid(np.ascontiguousarray(canvas), str(out / 'grid.png'))


def _fid_dataset(args: argparse.Namespace, checkpoint: Path) -> str:
    if args.fid_data:
        return args.fid_data
    from ..checkpoint import load_checkpoint
    from ..stored_config import config_from_checkpoint

    stored = load_checkpoint(checkpoint)
    meta = stored.get('meta', {})
    path = (meta.get('dataset') or {}).get('path')
    if not path and meta.get('cfg'):
        cfg = config_from_checkpoint(stored, checkpoint)
        path = cfg.get('train_dataloader', {}).get('dataset', {}).get('path')
    if not path:
        raise GenforceError(f'{checkpoint} names no dataset for FID; pass --fid-data PATH')
    return str(path)


def compute_fid(G: torch.nn.Module, args: argparse.Namespace, checkpoint: Path) -> dict:
    """FID of ``G`` over ``--fid-num`` generated images against all real images, by the
    ``FID`` metric some plugin registered (the core never imports a plugin). The metric is
    built as ``FID(name='fid<N>_full', dataset=..., batch_size=...)`` and evaluated with
    ``evaluate_model(G, device=...)``, the generative-metric interface of ``METRICS``."""
    from ..plugins import load_plugins, plugin_summary
    from ..registry import METRICS

    load_plugins()
    metric_type = METRICS.get('FID')
    if metric_type is None:
        raise GenforceError('--fid-num needs a plugin that registers the FID metric, e.g. the '
                            'metrics plugin: pip install plugins/metrics_fid '
                            f'(genforce-plugin-metrics-fid); installed plugins: {plugin_summary()}')
    metric = metric_type(name=f'fid{args.fid_num}_full', dataset=_fid_dataset(args, checkpoint),
                         batch_size=args.batch)
    return dict(metric.evaluate_model(G, device=args.device))


def run(args: argparse.Namespace) -> int:
    from ..contracts import image_transform
    from ..inference import load_generator

    checkpoint = resolve_checkpoint(network(args), verify=not args.no_verify)
    G = load_generator(checkpoint, device=args.device, config=args.config)
    seeds = args.seeds if args.seeds is not None else list(range(args.num or 16))
    if not seeds:
        raise GenforceError('no seeds to generate')
    # Refused here, before any image, for a generator that cannot move its images; the
    # motion applies to the images and the FID and is undone when leaving the block.
    with image_transform(G, args.translate, args.rotate):
        images = generate(G, seeds, args)
        out = Path(args.out)
        save_images(images, seeds, out, args.grid)
        print(f'Wrote {len(seeds)} images to {out}' + (' (and grid.png)' if args.grid else ''))
        if args.fid_num:
            metrics = compute_fid(G, args, checkpoint)
            for name, value in metrics.items():
                print(f'{name}: {value}')
            (out / 'metrics.json').write_text(json.dumps(metrics, indent=1, default=float))
    return 0
