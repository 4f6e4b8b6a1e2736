"""``genforce convert FORMAT --source_model_path PATH`` (and ``tools/convert_model.py``).

The interface of the original GenForce ``convert_model.py``: ``--test_num N`` generates N images
from fixed seeds with the converted model and, when the original implementation is importable
(NVIDIA's ``dnnlib`` + ``legacy`` for PyTorch pickles, rosinality's ``model`` module for his
checkpoints), runs it on the same inputs and reports the largest difference;
``--save_test_image`` writes the images (converted | original) side by side.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genforce_core.errors import CheckpointError
from genforce_core.registry import CONVERTERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('format', metavar='FORMAT',
                        help='source format: ' + ', '.join(sorted(CONVERTERS.module_dict)))
    parser.add_argument('--source_model_path', '--source-model-path', required=True,
                        help='file to convert (never executed: read with a safe unpickler)')
    parser.add_argument('--output', help='genforce checkpoint to write '
                        '(default: work_dirs/converted/<source name>.pth)')
    parser.add_argument('--test_num', '--test-num', type=int, default=0,
                        help='generate this many images (seeds 0..N-1) to check the result')
    parser.add_argument('--save_test_image', '--save-test-image', action='store_true',
                        help='write the test images next to the output (converted | original)')
    parser.add_argument('--device', default='cpu', help='device for the test images')


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser('convert', help='convert official weights to genforce',
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def default_output(source: str | os.PathLike) -> Path:
    return Path('work_dirs') / 'converted' / f'{Path(source).stem}.pth'


# --------------------------------------------------------------------------- originals

def _original_stylegan2ada(source: Path) -> Callable | None:
    """NVIDIA's own loader, when its repository is on the path (runs the pickle's code, which
    is the point: comparing against the original)."""
    if importlib.util.find_spec('legacy') is None or importlib.util.find_spec('dnnlib') is None:
        return None
    legacy = importlib.import_module('legacy')
    with open(source, 'rb') as file:
        G = legacy.load_network_pkl(file)['G_ema'].eval().requires_grad_(False)

    def run(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return G(z.to(next(G.parameters()).device), c, truncation_psi=1, noise_mode='const')
    return run


def _original_rosinality(source: Path) -> Callable | None:
    if importlib.util.find_spec('model') is None:
        return None
    module = importlib.import_module('model')
    if not hasattr(module, 'Generator'):
        return None
    ckpt = torch.load(source, map_location='cpu', weights_only=False)
    sd = ckpt['g_ema']
    size = 2 ** (max(int(k.split('.')[1]) for k in sd if k.startswith('convs.')) // 2 + 3)
    style_dim = sd['style.1.weight'].shape[1]
    n_mlp = sum(1 for k in sd if k.startswith('style.') and k.endswith('.weight'))
    channel_multiplier = sd['convs.6.conv.weight'].shape[1] // 256 if size >= 64 else 2
    G = module.Generator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier)
    G.load_state_dict(sd)
    G.eval()

    def run(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        del c
        return G([z], randomize_noise=False)[0]
    return run


ORIGINALS: dict[str, Callable[[Path], Callable | None]] = {
    'stylegan2ada_pth': _original_stylegan2ada,
    'stylegan2_rosinality': _original_rosinality,
}


def test_inputs(G: torch.nn.Module, num: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents of seeds 0..num-1 (``RandomState(seed).randn(z_dim)``) and class-0 labels."""
    z = torch.from_numpy(np.stack([np.random.RandomState(seed).randn(G.z_dim)
                                   for seed in range(num)])).float().to(device)
    c = torch.zeros([num, G.c_dim], device=device)
    if G.c_dim:
        c[:, 0] = 1
    return z, c


def run(args: argparse.Namespace) -> int:
    from genforce_core import load_generator

    from .converters import get_converter

    converter = get_converter(args.format)
    source = Path(args.source_model_path)
    output = Path(args.output) if args.output else default_output(source)
    print(f'Converting {source} ({converter.description}) ...')
    converter.convert_file(source, output)
    print(f'Saved {output}')
    if args.test_num <= 0:
        return 0
    G = load_generator(output, device=args.device)
    z, c = test_inputs(G, args.test_num, args.device)
    with torch.no_grad():
        ours = G(z, c, truncation_psi=1, noise_mode='const')
    original = ORIGINALS.get(args.format, lambda _: None)(source)
    images = [ours]
    if original is None:
        print(f'Generated {args.test_num} test images (the original implementation of '
              f'{args.format} is not importable, so nothing to compare with).')
    else:
        with torch.no_grad():
            theirs = original(z, c).to(ours.device).float()
        if theirs.shape != ours.shape:
            raise CheckpointError(f'original output shape {list(theirs.shape)} differs from '
                                  f'the converted {list(ours.shape)}')
        diff = (ours - theirs).abs().max().item()
        print(f'Max difference to the original over {args.test_num} images: {diff:.3g}')
        images.append(theirs)
    if args.save_test_image:
        _save_side_by_side(images, output.with_suffix(''))
    return 0


def _save_side_by_side(images: list[torch.Tensor], stem: Path) -> None:
    from PIL import Image

    from genforce_core.models.base_gan import to_uint8

    for idx in range(images[0].shape[0]):
        row = torch.cat([to_uint8(img[idx]) for img in images], dim=2)  # C, H, W * k
        array = row.permute(1, 2, 0).cpu().numpy()
        path = Path(f'{stem}_test{idx:04d}.png')
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
        print(f'Saved {path}')
