"""NVIDIA's TensorFlow StyleGAN2 / StyleGAN2-ADA variables <-> the official PyTorch names.

The TF graph (``G_mapping``, ``G_synthesis_stylegan2``, ``D_stylegan2``) and the PyTorch
networks compute the same functions; only the storage differs:

* dense weights are ``[in, out]`` in TF, ``[out, in]`` in PyTorch (transpose);
* conv kernels are ``HWIO`` in TF, ``OIHW`` in PyTorch;
* upsampling convolutions: TF runs ``conv2d_transpose`` with the kernel flipped in space, while
  PyTorch runs ``conv_transpose2d`` with the stored kernel, so ``Conv0_up`` (and the resnet
  ``Skip``) kernels are flipped (``[..., ::-1, ::-1]``); downsampling convolutions blur and then
  correlate in both, so ``Conv1_down`` is only transposed;
* the style of a modulated conv is ``dense(w) + mod_bias + 1`` in TF, ``affine(w)`` with the
  bias initialised to 1 in PyTorch: ``affine.bias = mod_bias + 1``;
* constant input ``[1, C, 4, 4]`` vs ``[C, 4, 4]``; per-layer noise inputs ``noise{i}``
  ``[1, 1, r, r]`` vs ``noise_const`` ``[r, r]`` (layer ``i`` counts convolutions from 4x4 up);
* ``dlatent_avg`` is ``mapping.w_avg``.

Component prefixes are ``mapping/`` and ``synthesis/`` (the keys of the network's
``components``); ``G_mapping/`` and ``G_synthesis/`` (the component names, as in
``Network.vars``) are accepted too.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch

from genforce_core.api import CheckpointError

# TF layer field -> PyTorch field, and how the value is stored.
_FIELDS = {'weight': ('weight', 'conv'), 'bias': ('bias', 'id'),
           'mod_weight': ('affine.weight', 'dense'), 'mod_bias': ('affine.bias', 'mod_bias'),
           'noise_strength': ('noise_strength', 'id')}
_G_LAYERS = {'Conv': 'conv1', 'Conv0_up': 'conv0', 'Conv1': 'conv1', 'ToRGB': 'torgb',
             'Skip': 'skip'}
_D_LAYERS = {'FromRGB': 'fromrgb', 'Conv0': 'conv0', 'Conv1_down': 'conv1', 'Skip': 'skip',
             'Conv': 'conv'}
IGNORED_TF_VARIABLES = ('lod', 'synthesis/lod', 'G_synthesis/lod')


def to_torch(value: np.ndarray, kind: str) -> torch.Tensor:
    """A TF-stored value in PyTorch layout."""
    value = np.asarray(value, dtype=np.float32)
    if kind == 'dense':
        value = value.T
    elif kind in ('conv', 'conv_up'):
        value = value.transpose(3, 2, 0, 1)
        if kind == 'conv_up':
            value = value[:, :, ::-1, ::-1]
    elif kind == 'mod_bias':
        value = value + 1
    elif kind in ('const', 'noise'):
        value = value.reshape(value.shape[-3 if kind == 'const' else -2:])
    return torch.from_numpy(np.array(value, order='C'))


def to_tf(value: torch.Tensor, kind: str) -> np.ndarray:
    """Inverse of :func:`to_torch`."""
    value = value.detach().cpu().numpy().astype(np.float32)
    if kind == 'dense':
        value = value.T
    elif kind in ('conv', 'conv_up'):
        if kind == 'conv_up':
            value = value[:, :, ::-1, ::-1]
        value = value.transpose(2, 3, 1, 0)
    elif kind == 'mod_bias':
        value = value - 1
    elif kind in ('const', 'noise'):
        value = value[None] if kind == 'const' else value[None, None]
    return np.array(value, order='C')


def _noise_layer(index: int) -> str:
    """The PyTorch layer that TF's ``noise{index}`` feeds."""
    if index == 0:
        return 'synthesis.b4.conv1'
    res = 4 * 2 ** ((index + 1) // 2)
    return f'synthesis.b{res}.conv{0 if index % 2 else 1}'


def generator_name(tf_name: str) -> tuple[str, str] | None:
    """``(pytorch_key, kind)`` for a TF generator variable, None if unknown."""
    name = re.sub(r'^G_(mapping|synthesis)/', r'\1/', tf_name)
    if name == 'dlatent_avg':
        return 'mapping.w_avg', 'id'
    if m := re.fullmatch(r'mapping/Dense(\d+)/(weight|bias)', name):
        return f'mapping.fc{m[1]}.{m[2]}', 'dense' if m[2] == 'weight' else 'id'
    if m := re.fullmatch(r'mapping/LabelEmbed/(weight|bias)', name):
        return f'mapping.embed.{m[1]}', 'dense' if m[1] == 'weight' else 'id'
    if name == 'synthesis/4x4/Const/const':
        return 'synthesis.b4.const', 'const'
    if m := re.fullmatch(r'synthesis/noise(\d+)', name):
        return f'{_noise_layer(int(m[1]))}.noise_const', 'noise'
    if m := re.fullmatch(r'synthesis/(\d+)x\d+/(\w+)/(\w+)', name):
        layer = _G_LAYERS.get(m[2])
        if layer is None or m[3] not in _FIELDS:
            return None
        field, kind = _FIELDS[m[3]]
        if kind == 'conv' and m[2] in ('Conv0_up', 'Skip'):
            kind = 'conv_up'
        return f'synthesis.b{m[1]}.{layer}.{field}', kind
    return None


def discriminator_name(tf_name: str) -> tuple[str, str] | None:
    """``(pytorch_key, kind)`` for a TF discriminator variable, None if unknown."""
    if m := re.fullmatch(r'(\d+)x\d+/(\w+)/(weight|bias)', tf_name):
        if m[1] == '4' and m[2].startswith('Dense'):
            return f'b4.fc.{m[3]}', 'dense' if m[3] == 'weight' else 'id'
        layer = _D_LAYERS.get(m[2])
        if layer is None:
            return None
        return f'b{m[1]}.{layer}.{m[3]}', 'conv' if m[3] == 'weight' else 'id'
    if m := re.fullmatch(r'Output/(weight|bias)', tf_name):
        return f'b4.out.{m[1]}', 'dense' if m[1] == 'weight' else 'id'
    if m := re.fullmatch(r'LabelEmbed/(weight|bias)', tf_name):
        return f'mapping.embed.{m[1]}', 'dense' if m[1] == 'weight' else 'id'
    if m := re.fullmatch(r'Mapping(\d+)/(weight|bias)', tf_name):
        return f'mapping.fc{m[1]}.{m[2]}', 'dense' if m[2] == 'weight' else 'id'
    return None


def _convert(variables: Mapping[str, np.ndarray], namer, what: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for tf_name, value in variables.items():
        target = namer(tf_name)
        if target is None:
            if tf_name not in IGNORED_TF_VARIABLES:
                unknown.append(tf_name)
            continue
        out[target[0]] = to_torch(value, target[1])
    if unknown:
        raise CheckpointError(f'TF {what} variables with no StyleGAN2 counterpart: '
                              f'{", ".join(sorted(unknown)[:10])}'
                              + (' (a StyleGAN v1 / PGGAN pickle? use its own converter)'
                                 if any('Noise' in u or 'lod' in u for u in unknown) else ''))
    return out


def tf_to_official_generator(variables: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Official PyTorch ``Generator`` state dict from TF generator variables."""
    return _convert(variables, generator_name, 'generator')


def tf_to_official_discriminator(variables: Mapping[str, np.ndarray]
                                 ) -> dict[str, torch.Tensor]:
    """Official PyTorch ``Discriminator`` state dict from TF discriminator variables."""
    return _convert(variables, discriminator_name, 'discriminator')


def _tf_names(keys, namer, candidates) -> dict[str, tuple[str, str]]:
    table = {}
    for tf_name in candidates:
        target = namer(tf_name)
        if target is not None and target[0] in keys:
            table[target[0]] = (tf_name, target[1])
    return table


def official_to_tf_generator(sd: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """TF variables of an official PyTorch generator (buffers TF does not have are dropped).

    Used to build TF-layout files in tests and to check the mapping in both directions.
    """
    res = sorted({int(m[1]) for k in sd if (m := re.match(r'synthesis\.b(\d+)\.', k))})
    names = ['dlatent_avg', 'synthesis/4x4/Const/const', 'mapping/LabelEmbed/weight',
             'mapping/LabelEmbed/bias']
    names += [f'mapping/Dense{i}/{f}' for i in range(32) for f in ('weight', 'bias')]
    names += [f'synthesis/noise{i}' for i in range(2 * len(res))]
    names += [f'synthesis/{r}x{r}/{layer}/{f}' for r in res for layer in _G_LAYERS
              for f in _FIELDS if (layer == 'Conv') == (r == 4) or layer == 'ToRGB']
    table = _tf_names(sd, generator_name, names)
    return {tf: to_tf(sd[pt], kind) for pt, (tf, kind) in table.items()}


def official_to_tf_discriminator(sd: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """TF variables of an official PyTorch discriminator (inverse of the converter)."""
    res = sorted({int(m[1]) for k in sd if (m := re.match(r'b(\d+)\.', k))})
    names = [f'{r}x{r}/{layer}/{f}' for r in res for layer in [*_D_LAYERS, 'Dense0']
             for f in ('weight', 'bias')]
    names += ['Output/weight', 'Output/bias', 'LabelEmbed/weight', 'LabelEmbed/bias']
    names += [f'Mapping{i}/{f}' for i in range(32) for f in ('weight', 'bias')]
    table = _tf_names(sd, discriminator_name, names)
    return {tf: to_tf(sd[pt], kind) for pt, (tf, kind) in table.items()}
