"""``genforce invert``: latent codes for real images, by encoder and/or projection.

    genforce invert (ZOO_NAME | CHECKPOINT) IMAGES... [--encoder CKPT] [--steps N] [--w-plus]
                    [--no-noise] [--vgg PATH] [--download-vgg] [--out DIR] [--device D]

For each image (files, or folders of images), center-cropped and resized to the generator's
resolution, it writes to ``--out``: ``<name>_ws.npy`` (the ``[num_ws, w_dim]`` codes),
``<name>_noise.npz`` (optimised noise maps, when any), ``<name>_rec.png`` (the reconstruction)
and ``<name>_pair.png`` (target | encoder output | projection, side by side).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genforce_core.api import GenforceError, add_command

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, 'invert', help='find latent codes of real images (encoder and/or projection)',
        description=__doc__)
    parser.add_argument('generator', metavar='ZOO_NAME|CHECKPOINT',
                        help='genforce GAN checkpoint (or model-zoo name) to invert')
    parser.add_argument('images', nargs='+', help='image files or folders of images')
    parser.add_argument('--encoder', metavar='CKPT',
                        help='checkpoint of an encoder trained for this generator (its codes '
                        'are the start of the projection, or the result with --steps 0; '
                        'default: start from the mean w)')
    parser.add_argument('--steps', type=int, default=1000, metavar='N',
                        help='projection steps (default 1000; 0: encoder output only)')
    parser.add_argument('--w-plus', action='store_true',
                        help='optimise one code per layer (W+) instead of one w')
    parser.add_argument('--no-noise', action='store_true',
                        help='do not optimise the noise maps')
    parser.add_argument('--vgg', metavar='PATH',
                        help='torchvision VGG16 weights (default: $GENFORCE_VGG16_WEIGHTS or '
                        'the torch hub cache)')
    parser.add_argument('--download-vgg', action='store_true',
                        help="download torchvision's VGG16 when it is not found locally "
                        '(SHA-256 checked)')
    parser.add_argument('--out', default='inversion', metavar='DIR',
                        help='output folder (default inversion)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='torch device, e.g. cpu, cuda, cuda:1')
    parser.add_argument('--seed', type=int, default=0,
                        help="random seed of the projection's initial noise maps")
    parser.set_defaults(func=run)


def list_images(paths: list[str]) -> list[Path]:
    """Image files named, or inside folders named, in order."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f'image {path} does not exist')
    if not found:
        raise GenforceError(f'no images found in {", ".join(paths)}')
    return found


def load_image(path: Path, resolution: int, channels: int = 3) -> torch.Tensor:
    """``[1, C, R, R]`` in [-1, 1]: center-cropped to a square, resized with Lanczos."""
    try:
        with Image.open(path) as img:
            img = img.convert('RGB' if channels == 3 else 'L')
    except OSError as exc:
        raise GenforceError(f'cannot read image {path}: {exc}') from exc
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(img, dtype=np.float32).reshape(resolution, resolution, channels)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1


def to_pil(img: torch.Tensor) -> Image.Image:
    """``[C, H, W]`` in [-1, 1] → PIL image."""
    array = (img.detach().cpu() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    array = array.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def resolve_generator(name: str, device: str) -> torch.nn.Module:
    """The generator of a checkpoint file, or of a model-zoo entry (fetched and converted into
    the zoo cache on first use)."""
    from genforce_core.api import load_generator

    if not os.path.isfile(name):
        try:
            from genforce_core.api import ensure_converted, zoo_entries
        except ImportError:  # a core without a model zoo: load_generator explains
            return load_generator(name, device=device)
        if name not in {entry['name'] for entry in zoo_entries()}:
            raise GenforceError(f'{name} is neither a checkpoint file nor a model-zoo name '
                                '(see `genforce zoo list`)')
        name = str(ensure_converted(name))
    return load_generator(name, device=device)


def load_encoder(path: str, G: torch.nn.Module, device: str) -> torch.nn.Module:
    """The encoder network of an ``InDomainEncoder`` checkpoint, sized for ``G``."""
    from .loading import build_module, load_weights, read_checkpoint

    cfg, state = read_checkpoint(path)
    enc_cfg = cfg.get('model', {}).get('encoder')
    if enc_cfg is None:
        raise GenforceError(f'{path} is not an encoder checkpoint (its config has no '
                            'model.encoder)')
    enc_cfg = dict(enc_cfg)
    enc_cfg.setdefault('resolution', G.img_resolution)
    enc_cfg.setdefault('num_ws', G.num_ws)
    enc_cfg.setdefault('w_dim', G.w_dim)
    enc_cfg.setdefault('img_channels', getattr(G, 'img_channels', 3))
    encoder = build_module(enc_cfg)
    load_weights(encoder, state, ('encoder.',), path)
    return encoder.eval().requires_grad_(False).to(device)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .loading import check_invertible
    from .perceptual import VGG16Features
    from .projector import project

    if args.steps < 0:
        raise GenforceError(f'--steps must be >= 0, got {args.steps}')
    if args.steps == 0 and not args.encoder:
        raise GenforceError('--steps 0 needs --encoder (nothing would be inverted)')
    torch.manual_seed(args.seed)
    G = resolve_generator(args.generator, args.device)
    check_invertible(G)
    encoder = load_encoder(args.encoder, G, args.device) if args.encoder else None
    vgg = None
    if args.steps > 0:
        vgg = VGG16Features(weights=args.vgg, download=args.download_vgg).to(args.device)
    images = list_images(args.images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    channels = getattr(G, 'img_channels', 3)
    used: set[str] = set()

    for path in tqdm(images, desc='images', unit='img', disable=len(images) == 1):
        name = path.stem if path.stem not in used else f'{path.stem}_{len(used)}'
        used.add(name)
        target = load_image(path, G.img_resolution, channels).to(args.device)
        panels = [target[0]]
        ws = None
        if encoder is not None:
            with torch.no_grad():
                ws = encoder(target)
                rec = G.synthesis(ws, noise_mode='const')
            panels.append(rec[0])
        noise: dict[str, torch.Tensor] = {}
        if args.steps > 0:
            bar = tqdm(total=args.steps, desc=name, unit='step', leave=False)

            def progress(step: int, info: dict[str, float], bar=bar) -> None:
                bar.update(1)
                bar.set_postfix(loss=f'{info["loss"]:.4f}', mse=f'{info["mse"]:.4f}')

            result = project(G, target, vgg, num_steps=args.steps, w_plus=args.w_plus,
                             optimize_noise=not args.no_noise, initial_ws=ws, seed=args.seed,
                             progress=progress)
            bar.close()
            ws, rec, noise = result.ws, result.images, result.noise
            panels.append(rec[0])
        mse = float((rec - target).square().mean())
        np.save(out / f'{name}_ws.npy', ws[0].detach().cpu().numpy().astype(np.float32))
        if noise:
            np.savez(out / f'{name}_noise.npz',
                     **{k: v[0, 0].cpu().numpy() for k, v in noise.items()})
        to_pil(rec[0]).save(out / f'{name}_rec.png')
        to_pil(torch.cat(panels, dim=2)).save(out / f'{name}_pair.png')
        tqdm.write(f'{path}: mse {mse:.5f} -> {out / name}_{{ws.npy,rec.png,pair.png}}')
    return 0
