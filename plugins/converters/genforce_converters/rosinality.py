"""rosinality's ``stylegan2-pytorch`` checkpoints <-> the official StyleGAN2 PyTorch names.

His checkpoints are ``torch.save({'g': ..., 'd': ..., 'g_ema': ..., 'args': Namespace, ...})``
(``convert_weight.py`` outputs add ``latent_avg``). His networks compute the official function
with the same equalized-lr conventions (weights stored as ``randn / lr_mul``, scaled at run
time, fused leaky ReLU with gain sqrt(2), [1, 3, 3, 1] blur); the storage differs:

* modulated conv weights carry a leading batch axis ``[1, O, I, k, k]``; his upsampling conv
  uses ``conv_transpose2d`` with the stored kernel like the official code (no flip);
* the bias of a styled conv lives in its fused activation (``activate.bias``); ToRGB biases are
  ``[1, C, 1, 1]``; noise strengths are ``noise.weight`` ``[1]``;
* layers are numbered: ``convs.{2k}`` / ``convs.{2k+1}`` / ``to_rgbs.{k}`` are the
  ``b{8 * 2**k}`` block; ``noises.noise_{i}`` feed conv ``i`` counted from 4x4;
* the discriminator is ``convs.0`` (fromrgb), ``convs.{k}`` resblocks (from the top
  resolution down), ``final_conv``, ``final_linear.0`` / ``.1``;
* ``latent_avg`` (when saved) is ``mapping.w_avg``; ``style.{i}`` (i >= 1) is
  ``mapping.fc{i-1}``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from genforce_core.api import CheckpointError

_LAYER_FIELDS = {'conv.weight': 'weight', 'conv.modulation.weight': 'affine.weight',
                 'conv.modulation.bias': 'affine.bias', 'noise.weight': 'noise_strength',
                 'activate.bias': 'bias'}
_RGB_FIELDS = {'conv.weight': 'weight', 'conv.modulation.weight': 'affine.weight',
               'conv.modulation.bias': 'affine.bias', 'bias': 'bias'}
_D_LAYERS = {'conv1.0.weight': 'conv0.weight', 'conv1.1.bias': 'conv0.bias',
             'conv2.1.weight': 'conv1.weight', 'conv2.2.bias': 'conv1.bias',
             'skip.1.weight': 'skip.weight'}
# FIR kernels and other derived buffers of his modules.
_IGNORED = re.compile(r'.*(\.kernel|blur\.kernel|upsample\.kernel)$')


def _noise_layer(index: int) -> str:
    if index == 0:
        return 'synthesis.b4.conv1'
    return f'synthesis.b{4 * 2 ** ((index + 1) // 2)}.conv{0 if index % 2 else 1}'


def generator_key(key: str) -> str | None:
    """The official name of one of his generator keys (None if unknown)."""
    if m := re.fullmatch(r'style\.(\d+)\.(weight|bias)', key):
        return f'mapping.fc{int(m[1]) - 1}.{m[2]}'
    if key == 'input.input':
        return 'synthesis.b4.const'
    if m := re.fullmatch(r'noises\.noise_(\d+)', key):
        return f'{_noise_layer(int(m[1]))}.noise_const'
    if m := re.fullmatch(r'conv1\.(.+)', key):
        field = _LAYER_FIELDS.get(m[1])
        return f'synthesis.b4.conv1.{field}' if field else None
    if m := re.fullmatch(r'to_rgb1\.(.+)', key):
        field = _RGB_FIELDS.get(m[1])
        return f'synthesis.b4.torgb.{field}' if field else None
    if m := re.fullmatch(r'convs\.(\d+)\.(.+)', key):
        idx, field = int(m[1]), _LAYER_FIELDS.get(m[2])
        return f'synthesis.b{8 * 2 ** (idx // 2)}.conv{idx % 2}.{field}' if field else None
    if m := re.fullmatch(r'to_rgbs\.(\d+)\.(.+)', key):
        field = _RGB_FIELDS.get(m[2])
        return f'synthesis.b{8 * 2 ** int(m[1])}.torgb.{field}' if field else None
    return None


def discriminator_key(key: str, top_res: int) -> str | None:
    """The official name of one of his discriminator keys (None if unknown)."""
    if m := re.fullmatch(r'convs\.0\.([01])\.(weight|bias)', key):
        return f'b{top_res}.fromrgb.{m[2]}'
    if m := re.fullmatch(r'convs\.(\d+)\.(.+)', key):
        field = _D_LAYERS.get(m[2])
        return f'b{top_res // 2 ** (int(m[1]) - 1)}.{field}' if field else None
    if m := re.fullmatch(r'final_conv\.[01]\.(weight|bias)', key):
        return f'b4.conv.{m[1]}'
    if m := re.fullmatch(r'final_linear\.([01])\.(weight|bias)', key):
        return f'b4.{"fc" if m[1] == "0" else "out"}.{m[2]}'
    return None


def _reshape(key: str, value: torch.Tensor) -> torch.Tensor:
    """His storage -> official shapes."""
    value = value.detach().float()
    if key.endswith('.const') or key.endswith('noise_const'):
        return value.reshape(value.shape[-3 if key.endswith('.const') else -2:])
    if key.endswith('noise_strength'):
        return value.reshape([])
    if value.ndim == 5:  # modulated conv weight [1, O, I, k, k]
        return value[0]
    if key.endswith('torgb.bias'):
        return value.reshape(-1)
    return value


def _convert(sd: Mapping[str, torch.Tensor], namer, what: str) -> dict[str, torch.Tensor]:
    out, unknown = {}, []
    for key, value in sd.items():
        target = namer(key)
        if target is None:
            if not _IGNORED.match(key):
                unknown.append(key)
            continue
        out[target] = _reshape(target, value)
    if unknown:
        raise CheckpointError(f'rosinality {what} keys with no StyleGAN2 counterpart: '
                              f'{", ".join(sorted(unknown)[:10])}')
    return out


def rosinality_to_official_generator(sd: Mapping[str, torch.Tensor],
                                     latent_avg: torch.Tensor | None = None
                                     ) -> dict[str, torch.Tensor]:
    out = _convert(sd, generator_key, 'generator')
    if latent_avg is not None:
        out['mapping.w_avg'] = latent_avg.detach().float().reshape(-1)
    return out


def rosinality_to_official_discriminator(sd: Mapping[str, torch.Tensor]
                                         ) -> dict[str, torch.Tensor]:
    if 'convs.0.0.weight' not in sd:
        raise CheckpointError('rosinality discriminator without convs.0.0.weight')
    n_blocks = len({m[1] for k in sd if (m := re.match(r'convs\.(\d+)\.conv1', k))})
    top = 4 * 2 ** n_blocks
    return _convert(sd, lambda k: discriminator_key(k, top), 'discriminator')


def official_to_rosinality_generator(sd: Mapping[str, torch.Tensor]
                                     ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """His generator state dict (without FIR kernels) and ``latent_avg`` from official names.

    The inverse of :func:`rosinality_to_official_generator`, used to build files in tests.
    """
    res = sorted({int(m[1]) for k in sd if (m := re.match(r'synthesis\.b(\d+)\.', k))})
    candidates = ['input.input'] + [f'style.{i}.{f}' for i in range(1, 33)
                                    for f in ('weight', 'bias')]
    candidates += [f'noises.noise_{i}' for i in range(2 * len(res))]
    candidates += [f'conv1.{f}' for f in _LAYER_FIELDS] + [f'to_rgb1.{f}' for f in _RGB_FIELDS]
    candidates += [f'convs.{i}.{f}' for i in range(2 * len(res)) for f in _LAYER_FIELDS]
    candidates += [f'to_rgbs.{i}.{f}' for i in range(len(res)) for f in _RGB_FIELDS]
    out = {}
    for key in candidates:
        target = generator_key(key)
        if target not in sd:
            continue
        value = sd[target].detach().float()
        if key == 'input.input' or key.startswith('noises.'):
            value = value[None] if key == 'input.input' else value[None, None]
        elif key.endswith('noise.weight'):
            value = value.reshape(1)
        elif target.endswith('.weight') and value.ndim == 4:
            value = value[None]
        elif key.startswith('to_rgb') and key.endswith('.bias') and 'modulation' not in key:
            value = value.reshape(1, -1, 1, 1)
        out[key] = value.clone()
    return out, sd['mapping.w_avg'].clone()


def official_to_rosinality_discriminator(sd: Mapping[str, torch.Tensor]
                                         ) -> dict[str, torch.Tensor]:
    """His discriminator state dict from official names (inverse, for tests)."""
    res = sorted({int(m[1]) for k in sd if (m := re.match(r'b(\d+)\.conv0', k))})
    top = res[-1]
    candidates = ['convs.0.0.weight', 'convs.0.1.bias', 'final_conv.0.weight',
                  'final_conv.1.bias'] + [f'final_linear.{i}.{f}' for i in (0, 1)
                                          for f in ('weight', 'bias')]
    candidates += [f'convs.{i}.{f}' for i in range(1, len(res) + 1) for f in _D_LAYERS]
    out = {}
    for key in candidates:
        target = discriminator_key(key, top)
        if target in sd:
            out[key] = sd[target].detach().float().clone()
    return out
