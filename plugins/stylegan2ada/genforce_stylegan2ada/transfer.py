"""Transfer learning: start a run from the networks of another checkpoint.

``init_from=dict(checkpoint=PATH, generator=True, discriminator=True)`` on
:class:`~genforce_stylegan2ada.model.StyleGAN2ADA` copies the pretrained weights in before
training starts (a resumed run then overwrites them with its own checkpoint). Only the
networks are taken: counters (images seen, ADA p), optimizer state and the schedule start
fresh, as in the paper's transfer experiments.

Accepted files (loaded safely, weights only):

* a genforce training checkpoint (``state_dict`` with ``generator.``, ``generator_ema.`` and
  ``discriminator.`` keys), e.g. one written by ``genforce convert`` from official weights;
* a bare state dict with those prefixes;
* a dict of per-network state dicts under ``G`` / ``G_ema`` / ``D`` (official names).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from genforce_core.api import CheckpointError, describe_state_dict_mismatch, load_checkpoint

_OFFICIAL_NAMES = {'generator': 'G', 'generator_ema': 'G_ema', 'discriminator': 'D'}


def split_networks(checkpoint: Mapping[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """``{'generator': sd, 'generator_ema': sd, 'discriminator': sd}`` (those present)."""
    state = checkpoint.get('state_dict', checkpoint)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for name, official in _OFFICIAL_NAMES.items():
        if isinstance(state.get(official), Mapping):
            parts[name] = dict(state[official])
            continue
        prefix = name + '.'
        sub = {k[len(prefix):]: v for k, v in state.items()
               if isinstance(k, str) and k.startswith(prefix)}
        if sub:
            parts[name] = sub
    return parts


def _load_into(module: nn.Module, state: dict, what: str, path: str) -> None:
    expected = module.state_dict()
    problem = describe_state_dict_mismatch(expected, state)
    if problem:
        raise CheckpointError(f'init_from: the {what} of {path} does not fit this config\'s '
                              f'{what} ({type(module).__name__}): {problem}')
    with torch.no_grad():
        for key, value in state.items():
            expected[key].copy_(value)


def load_pretrained(model: nn.Module, checkpoint: str | os.PathLike, generator: bool = True,
                    discriminator: bool = True) -> list[str]:
    """Copy the pretrained networks of ``checkpoint`` into ``model`` (a GAN).

    The EMA generator is taken from the file when it has one, else copied from the
    generator. Frozen discriminator layers (``freeze_d``) are buffers here and parameters
    there; they load the same way.

    Returns:
        The networks that were loaded.

    Raises:
        CheckpointError: The file is missing, unsafe or corrupt, lacks a requested network,
            or its shapes do not fit (the message lists the keys).
    """
    path = os.fspath(checkpoint)
    parts = split_networks(load_checkpoint(path))
    loaded = []
    wanted = [('generator', generator), ('discriminator', discriminator)]
    for name, want in wanted:
        if not want:
            continue
        if name not in parts:
            raise CheckpointError(
                f'init_from: {path} holds no {name} (found: {", ".join(parts) or "nothing"}); '
                f'set init_from.{name}=False to skip it')
        _load_into(getattr(model, name), parts[name], name, path)
        loaded.append(name)
    ema = getattr(model, 'generator_ema', None)
    if generator and ema is not None:
        if 'generator_ema' in parts:
            _load_into(ema, parts['generator_ema'], 'generator_ema', path)
        else:
            ema.load_state_dict(model.generator.state_dict())
        loaded.append('generator_ema')
    return loaded
