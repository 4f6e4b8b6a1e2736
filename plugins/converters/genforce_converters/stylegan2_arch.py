"""Recover StyleGAN2 constructor arguments from a state dict with the official names.

TensorFlow pickles and rosinality's checkpoints do not record NVIDIA's PyTorch constructor
arguments, but the shapes of the weights determine almost all of them (latent widths, mapping
depth, channels per resolution, architecture, label width). What shapes cannot tell (output
clamping, float16 resolutions, minibatch-stddev group) comes from ``hints``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from genforce_core.api import CheckpointError


def channel_params(channels: Mapping[int, int], where: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``channels[r] == min(channel_base // r,
    channel_max)`` for every resolution ``r``."""
    channel_max = max(channels.values())
    below = sorted(r for r, c in channels.items() if c < channel_max)
    channel_base = channels[below[0]] * below[0] if below else channel_max * max(channels)
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        raise CheckpointError(
            f'{where}: channels per resolution {dict(sorted(channels.items()))} do not follow '
            'min(channel_base // res, channel_max); this layout is not supported')
    return channel_base, channel_max


def _indices(keys, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in keys if (m := re.fullmatch(pattern, k))})


def _mapping_kwargs(sd: Mapping[str, torch.Tensor], prefix: str,
                    hints: Mapping[str, Any]) -> tuple[dict, int, int, int]:
    """Mapping kwargs, z_dim, c_dim, w_dim of the MappingNetwork under ``prefix``."""
    layers = _indices(sd, re.escape(prefix) + r'fc(\d+)\.weight')
    c_dim = embed = 0
    if f'{prefix}embed.weight' in sd:
        embed, c_dim = sd[f'{prefix}embed.weight'].shape
    if not layers:
        if not embed:
            raise CheckpointError(f'no {prefix}fc0.weight: not a StyleGAN2 mapping network')
        return dict(num_layers=0, embed_features=int(embed)), 0, int(c_dim), int(embed)
    w_dim = sd[f'{prefix}fc{layers[-1]}.weight'].shape[0]
    z_dim = sd[f'{prefix}fc0.weight'].shape[1] - embed
    kwargs: dict[str, Any] = dict(num_layers=len(layers))
    if c_dim:
        kwargs['embed_features'] = int(embed)
    if len(layers) > 1:
        kwargs['layer_features'] = int(sd[f'{prefix}fc0.weight'].shape[0])
    if hints.get('mapping_lr_multiplier') is not None:
        kwargs['lr_multiplier'] = float(hints['mapping_lr_multiplier'])
    return kwargs, int(z_dim), int(c_dim), int(w_dim)


def generator_kwargs(sd: Mapping[str, torch.Tensor], hints: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
    """``StyleGAN2Generator`` kwargs reproducing the shapes of ``sd`` (official names)."""
    hints = hints or {}
    mapping, z_dim, c_dim, w_dim = _mapping_kwargs(sd, 'mapping.', hints)
    resolutions = _indices(sd, r'synthesis\.b(\d+)\.conv1\.weight')
    if not resolutions:
        raise CheckpointError('no synthesis.b4.conv1.weight: not a StyleGAN2 generator')
    top = resolutions[-1]
    channels = {r: int(sd[f'synthesis.b{r}.conv1.weight'].shape[0]) for r in resolutions}
    base, cmax = channel_params(channels, 'generator')
    if any(k.startswith('synthesis.') and k.endswith('.skip.weight') for k in sd):
        architecture = 'resnet'
    elif top == 4 or 'synthesis.b4.torgb.weight' in sd:
        architecture = 'skip'
    else:
        architecture = 'orig'
    synthesis = dict(channel_base=base, channel_max=cmax,
                     num_fp16_res=int(hints.get('num_fp16_res') or 0),
                     conv_clamp=hints.get('conv_clamp'), architecture=architecture)
    if f'synthesis.b{top}.conv1.noise_strength' not in sd:
        synthesis['use_noise'] = False
    return dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=top,
                img_channels=int(sd[f'synthesis.b{top}.torgb.weight'].shape[0]),
                mapping_kwargs=mapping, synthesis_kwargs=synthesis)


def discriminator_kwargs(sd: Mapping[str, torch.Tensor],
                         hints: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``StyleGAN2Discriminator`` kwargs reproducing the shapes of ``sd`` (official names)."""
    hints = hints or {}
    if 'b4.conv.weight' not in sd:
        raise CheckpointError('no b4.conv.weight: not a StyleGAN2 discriminator')
    resolutions = _indices(sd, r'b(\d+)\.conv0\.weight')
    top = resolutions[-1] if resolutions else 4
    channels = {r: int(sd[f'b{r}.conv0.weight'].shape[0]) for r in resolutions}
    channels[4] = int(sd['b4.conv.weight'].shape[0])
    base, cmax = channel_params(channels, 'discriminator')
    fromrgb = [r for r in resolutions if f'b{r}.fromrgb.weight' in sd]
    if f'b{top}.skip.weight' in sd:
        architecture = 'resnet'
    elif len(fromrgb) > 1 or 'b4.fromrgb.weight' in sd:
        architecture = 'skip'
    else:
        architecture = 'orig'
    img_channels = int(sd[f'b{top}.fromrgb.weight' if top > 4 else 'b4.fromrgb.weight'].shape[1])
    mbstd_channels = int(sd['b4.conv.weight'].shape[1]) - channels[4]
    epilogue = dict(mbstd_group_size=int(hints.get('mbstd_group_size') or 4))
    if mbstd_channels != 1:
        epilogue['mbstd_num_channels'] = mbstd_channels
    kwargs: dict[str, Any] = dict(
        c_dim=0, img_resolution=top, img_channels=img_channels, architecture=architecture,
        channel_base=base, channel_max=cmax, num_fp16_res=int(hints.get('num_fp16_res') or 0),
        conv_clamp=hints.get('conv_clamp'), epilogue_kwargs=epilogue)
    if 'mapping.fc0.weight' in sd or 'mapping.embed.weight' in sd:
        mapping, _, c_dim, cmap_dim = _mapping_kwargs(sd, 'mapping.', hints)
        kwargs.update(c_dim=c_dim, cmap_dim=cmap_dim, mapping_kwargs=mapping)
    return kwargs
