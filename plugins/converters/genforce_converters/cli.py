"""``genforce convert FORMAT --source_model_path PATH`` (and ``tools/convert_model.py``).

The interface of the original GenForce ``convert_model.py``, including its format names
``pggan``, ``stylegan`` and ``stylegan2`` (TensorFlow pickles, = ``pggan_tf``, ``stylegan_tf``,
``stylegan2_tf``). The conversion never runs code from the file (pickles are read with a safe
unpickler). ``--test_num N`` generates N images from fixed seeds with the converted model;
``--save_test_image`` writes them.

``--trust-original-code`` also runs the original implementation on the same inputs and reports
the largest difference (the images are then written side by side, converted | original). It
imports that code from the Python path (NVIDIA's ``dnnlib`` + ``legacy`` for PyTorch pickles,
rosinality's ``model`` module for his checkpoints) and, for NVIDIA pickles, lets it unpickle
the file with full pickle, which EXECUTES CODE FROM THE FILE: use it only for files you trust.
"""
from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from genforce_core.api import CheckpointError, GenforceError, add_command

TRUST_HELP = ('compare --test_num images with the original implementation imported from the '
              'Python path; executes code from the file (the original implementation unpickles '
              'it with full pickle): only for files you trust')


class OriginalCodeError(GenforceError):
    """``--trust-original-code`` was given but the original implementation cannot be used."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .converters import format_names

    parser.add_argument('format', metavar='FORMAT', help='source format: ' + format_names())
    parser.add_argument('--source_model_path', '--source-model-path', required=True,
                        metavar='PATH',
                        help='file to convert (never executed: read with a safe unpickler, '
                        'unless --trust-original-code)')
    parser.add_argument('--output', metavar='OUT', help='genforce checkpoint to write '
                        '(default: work_dirs/converted/<source name>.pth)')
    parser.add_argument('--test_num', '--test-num', type=int, default=0, metavar='N',
                        help='generate N images (seeds 0..N-1) with the converted model '
                        '(default 0: none)')
    parser.add_argument('--save_test_image', '--save-test-image', action='store_true',
                        help='write the test images next to the output (converted | original)')
    parser.add_argument('--trust-original-code', '--trust_original_code', action='store_true',
                        help=TRUST_HELP)
    parser.add_argument('--device', default='cpu', help='torch device for the test images')


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'convert', help='convert official weights to genforce',
                         description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def default_output(source: str | os.PathLike) -> Path:
    return Path('work_dirs') / 'converted' / f'{Path(source).stem}.pth'


# --------------------------------------------------------------------------- originals

Generate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Original:
    """The original implementation of a format: modules to import, where they come from, the
    name the last module must define, and ``build(source, module) -> generate(z, c)``."""

    modules: tuple[str, ...]
    repository: str
    entry_point: str
    build: Callable[[Path, ModuleType], Generate]


def _stylegan2ada(source: Path, legacy: ModuleType) -> Generate:
    # NVIDIA's loader unpickles with full pickle: this runs the file's embedded code.
    with open(source, 'rb') as file:
        G = legacy.load_network_pkl(file)['G_ema'].eval().requires_grad_(False)

    def generate(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return G(z.to(next(G.parameters()).device), c, truncation_psi=1, noise_mode='const')
    return generate


def _rosinality(source: Path, model: ModuleType) -> Generate:
    from .safe_pickle import load_torch_file

    sd = load_torch_file(source)['g_ema']  # his code only builds the network: read it safely
    size = 2 ** (max(int(k.split('.')[1]) for k in sd if k.startswith('convs.')) // 2 + 3)
    style_dim = sd['style.1.weight'].shape[1]
    n_mlp = sum(1 for k in sd if k.startswith('style.') and k.endswith('.weight'))
    channel_multiplier = sd['convs.6.conv.weight'].shape[1] // 256 if size >= 64 else 2
    G = model.Generator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier)
    G.load_state_dict(sd)
    G.eval()

    def generate(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        del c
        return G([z], randomize_noise=False)[0]
    return generate


ORIGINALS: dict[str, Original] = {
    'stylegan2ada_pth': Original(('dnnlib', 'legacy'), "NVIDIA's stylegan2-ada-pytorch",
                                 'load_network_pkl', _stylegan2ada),
    'stylegan2_rosinality': Original(('model',), "rosinality's stylegan2-pytorch", 'Generator',
                                     _rosinality),
    # NVIDIA's stylegan3 repository has the same loader (its G takes noise_mode too).
    'stylegan3_pth': Original(('dnnlib', 'legacy'), "NVIDIA's stylegan3", 'load_network_pkl',
                              _stylegan2ada),
}


def _install_hint(missing: str, original: Original) -> str:
    if missing in original.modules:
        return f'put a checkout of {original.repository} on PYTHONPATH'
    return f'install it (pip install {missing}) or put {original.repository} on PYTHONPATH'


def _import(name: str, fmt: str, original: Original) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing = (err.name or name).split('.')[0]
        raise OriginalCodeError(
            f'--trust-original-code: the original {fmt} code cannot be imported: module '
            f'{missing!r} is missing; {_install_hint(missing, original)}') from err
    except Exception as err:
        raise OriginalCodeError(f'--trust-original-code: importing {name!r} (the original '
                                f'{fmt} code) failed: {type(err).__name__}: {err}') from err


def import_original(fmt: str) -> ModuleType:
    """Import the original implementation of ``fmt`` (runs that code, not the file's) and
    return its loader module; a missing dependency is a one-line error saying what to do."""
    original = ORIGINALS.get(fmt)
    if original is None:
        raise OriginalCodeError(f'--trust-original-code: there is no original implementation '
                                f'to compare {fmt} with (only {", ".join(sorted(ORIGINALS))})')
    module = [_import(name, fmt, original) for name in original.modules][-1]
    if not hasattr(module, original.entry_point):
        raise OriginalCodeError(
            f'--trust-original-code: the module {original.modules[-1]!r} found at '
            f'{getattr(module, "__file__", "?")} has no {original.entry_point}; put a checkout '
            f'of {original.repository} first on PYTHONPATH')
    return module


def build_original(fmt: str, source: Path, module: ModuleType) -> Generate:
    try:
        return ORIGINALS[fmt].build(source, module)
    except ImportError as err:  # e.g. the pickle needs torch_utils from NVIDIA's repository
        missing = (err.name or '?').split('.')[0]
        raise OriginalCodeError(
            f'--trust-original-code: the original code cannot load {source}: module '
            f'{missing!r} is missing; {_install_hint(missing, ORIGINALS[fmt])}') from err


def test_inputs(G: torch.nn.Module, num: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents of seeds 0..num-1 (``RandomState(seed).randn(z_dim)``) and class-0 labels."""
    z = torch.from_numpy(np.stack([np.random.RandomState(seed).randn(G.z_dim)
                                   for seed in range(num)])).float().to(device)
    c = torch.zeros([num, G.c_dim], device=device)
    if G.c_dim:
        c[:, 0] = 1
    return z, c


def run(args: argparse.Namespace) -> int:
    from .converters import get_converter

    converter = get_converter(args.format)
    args.format = converter.name  # an alias (stylegan2) becomes our name (stylegan2_tf)
    source = Path(args.source_model_path)
    output = Path(args.output) if args.output else default_output(source)
    module = None
    if args.trust_original_code:
        if args.test_num <= 0:
            raise OriginalCodeError('--trust-original-code only matters with --test_num N '
                                    '(the images to compare); add --test_num or drop it')
        module = import_original(args.format)  # before converting: fail fast
    print(f'Converting {source} ({converter.description}) ...')
    converter.convert_file(source, output)
    print(f'Saved {output}')
    if args.test_num <= 0:
        return 0
    ours, z, c = _generate_converted(output, args.test_num, args.device)
    images = [ours]
    if module is None:
        _report_skipped(args.format, args.test_num)
    else:
        theirs = _generate_original(args.format, source, module, z, c).to(ours.device).float()
        if theirs.shape != ours.shape:
            raise CheckpointError(f'original output shape {list(theirs.shape)} differs from '
                                  f'the converted {list(ours.shape)}')
        diff = (ours - theirs).abs().max().item()
        print(f'Max difference to the original over {args.test_num} images: {diff:.3g}')
        images.append(theirs)
    if args.save_test_image:
        _save_side_by_side(images, output.with_suffix(''))
    return 0


def _generate_converted(output: Path, num: int,
                        device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from genforce_core.api import load_generator

    G = load_generator(output, device=device)
    z, c = test_inputs(G, num, device)
    with torch.no_grad():
        return G(z, c, truncation_psi=1, noise_mode='const'), z, c


def _generate_original(fmt: str, source: Path, module: ModuleType, z: torch.Tensor,
                       c: torch.Tensor) -> torch.Tensor:
    generate = build_original(fmt, source, module)
    with torch.no_grad():
        return generate(z, c)


def _report_skipped(fmt: str, num: int) -> None:
    if fmt in ORIGINALS:
        print(f'Generated {num} test images with the converted model only; the comparison with '
              f'the original implementation was skipped because it executes code from the '
              f'file. To compare (only for files you trust), add --trust-original-code.')
    else:
        print(f'Generated {num} test images (there is no original implementation of {fmt} '
              'to compare with).')


def _save_side_by_side(images: list[torch.Tensor], stem: Path) -> None:
    from PIL import Image

    from genforce_core.api import to_uint8

    for idx in range(images[0].shape[0]):
        row = torch.cat([to_uint8(img[idx]) for img in images], dim=2)  # C, H, W * k
        array = row.permute(1, 2, 0).cpu().numpy()
        path = Path(f'{stem}_test{idx:04d}.png')
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
        print(f'Saved {path}')
