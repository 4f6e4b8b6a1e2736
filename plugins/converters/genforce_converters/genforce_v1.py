"""Original GenForce (v1) StyleGAN2 generators -> the official PyTorch names.

GenForce v1 kept NVIDIA's TF graph and values (its layers documented a ``pth_to_tf_var_mapping``)
in PyTorch-shaped tensors: dense weights ``[out, in]``, conv kernels ``[O, I, k, k]`` in TF's
orientation (its upsampling conv flips the kernel at run time, like TF), the style bias without
the ``+1`` (added at run time), the constant ``[1, C, 4, 4]`` and noises ``[1, 1, r, r]``. So a
v1 tensor is a TF variable up to a transpose, and the TF rules of :mod:`.tf_stylegan2` finish
the job.

Naming: ``mapping.dense{i}``, ``truncation.w_avg``, ``synthesis.early_layer.const``,
``synthesis.layer{j}`` (j = 0: the 4x4 conv; odd: ``Conv0_up``; even: ``Conv1`` of block
``j // 2``), ``synthesis.output{b}`` (ToRGB of block b), each with ``weight``, ``bias``,
``style.weight``, ``style.bias``, ``noise_strength``, ``noise``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch

from genforce_core.api import CheckpointError

from .tf_stylegan2 import tf_to_official_generator

_FIELDS = {'weight': 'weight', 'bias': 'bias', 'style.weight': 'mod_weight',
           'style.bias': 'mod_bias', 'noise_strength': 'noise_strength'}


def v1_to_tf_name(key: str) -> tuple[str, str] | None:
    """``(tf_name, layout)`` of a v1 key; layout 'dense' / 'conv' need a transpose."""
    if m := re.fullmatch(r'mapping\.dense(\d+)\.(weight|bias)', key):
        return f'mapping/Dense{m[1]}/{m[2]}', 'dense' if m[2] == 'weight' else 'id'
    if key == 'truncation.w_avg':
        return 'dlatent_avg', 'id'
    if key == 'synthesis.early_layer.const':
        return 'synthesis/4x4/Const/const', 'id'
    if m := re.fullmatch(r'synthesis\.layer(\d+)\.(.+)', key):
        j = int(m[1])
        res = 4 * 2 ** ((j + 1) // 2)
        if m[2] == 'noise':
            return f'synthesis/noise{j}', 'id'
        layer = 'Conv' if j == 0 else ('Conv0_up' if j % 2 else 'Conv1')
        field = _FIELDS.get(m[2])
        if field is None:
            return None
        layout = {'weight': 'conv', 'mod_weight': 'dense'}.get(field, 'id')
        return f'synthesis/{res}x{res}/{layer}/{field}', layout
    if m := re.fullmatch(r'synthesis\.output(\d+)\.(.+)', key):
        res = 4 * 2 ** int(m[1])
        field = _FIELDS.get(m[2])
        if field is None:
            return None
        layout = {'weight': 'conv', 'mod_weight': 'dense'}.get(field, 'id')
        return f'synthesis/{res}x{res}/ToRGB/{field}', layout
    return None


def is_v1_stylegan2(sd: Mapping[str, torch.Tensor]) -> bool:
    return 'synthesis.early_layer.const' in sd and any('.style.weight' in k for k in sd)


def v1_to_official_generator(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official StyleGAN2 generator state dict from a v1 ``StyleGAN2Generator`` state dict."""
    if 'mapping.label_weight' in sd:
        raise CheckpointError('conditional GenForce v1 StyleGAN2 (label concatenation) has no '
                              'counterpart in the official StyleGAN2-ADA network')
    variables, unknown = {}, []
    for key, value in sd.items():
        target = v1_to_tf_name(key)
        if target is None:
            if not key.endswith(('.kernel', 'filter.kernel')):
                unknown.append(key)
            continue
        array = value.detach().float().cpu().numpy()
        if target[1] == 'dense':
            array = array.T
        elif target[1] == 'conv':
            array = array.transpose(2, 3, 1, 0)
        variables[target[0]] = np.array(array, order='C')
    if unknown:
        raise CheckpointError('GenForce v1 generator keys with no StyleGAN2 counterpart: '
                              + ', '.join(sorted(unknown)[:10]))
    return tf_to_official_generator(variables)
