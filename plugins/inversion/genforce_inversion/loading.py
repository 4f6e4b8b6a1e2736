"""Read networks out of genforce checkpoints: a GAN's generator / discriminator to invert, or
a trained encoder."""
from __future__ import annotations

import os
from typing import Any

import torch
from mmengine.config import Config
from torch import nn

from genforce_core.api import (
    MODELS,
    CheckpointError,
    check_registered_types,
    config_from_checkpoint,
    describe_state_dict_mismatch,
    explaining_misses,
    load_checkpoint,
    load_plugins,
)


def read_checkpoint(path: str | os.PathLike) -> tuple[Config, dict[str, torch.Tensor]]:
    """``(config the checkpoint was trained with, state_dict)`` of a genforce checkpoint; the
    config is read as data and may name registered types only."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint {path} does not exist')
    checkpoint = load_checkpoint(path)
    cfg = config_from_checkpoint(checkpoint, path)  # plain data, never run
    check_registered_types(cfg.get('model'), path)
    if 'state_dict' not in checkpoint:
        raise CheckpointError(f'{path} has no state_dict')
    return cfg, checkpoint['state_dict']


def sub_state_dict(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Entries under ``prefix`` (e.g. ``'generator_ema.'``), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_weights(module: nn.Module, state: dict[str, Any], prefixes: tuple[str, ...],
                 path: str | os.PathLike) -> str:
    """Load the first of ``prefixes`` that ``state`` holds into ``module`` (strictly);
    returns the prefix used."""
    for prefix in prefixes:
        part = sub_state_dict(state, prefix)
        if not part:
            continue
        expected = {k: v.shape for k, v in module.state_dict().items()}
        problem = describe_state_dict_mismatch(
            expected, {k: getattr(v, 'shape', None) for k, v in part.items()})
        if problem:
            raise CheckpointError(f'the {prefix.rstrip(".")} weights of {path} do not fit '
                                  f'{type(module).__name__}:\n{problem}')
        module.load_state_dict(part)
        return prefix
    raise CheckpointError(f'{os.fspath(path)} holds none of {", ".join(prefixes)} '
                          f'(its top-level keys: {sorted({k.split(".")[0] for k in state})})')


def build_module(cfg: dict | nn.Module) -> nn.Module:
    """Build a MODELS config (plugins loaded, unknown types explained)."""
    if isinstance(cfg, nn.Module):
        return cfg
    load_plugins()
    with explaining_misses():
        return MODELS.build(cfg)


def load_gan_networks(path: str | os.PathLike, generator: dict | None = None,
                      discriminator: dict | None = None, with_discriminator: bool = True
                      ) -> tuple[nn.Module, nn.Module | None, Config]:
    """Generator (the EMA one when the checkpoint has it) and discriminator of a GAN
    checkpoint; their configs come from the checkpoint unless given."""
    cfg, state = read_checkpoint(path)
    G = build_module(generator or cfg.model.generator)
    load_weights(G, state, ('generator_ema.', 'generator.'), path)
    D = None
    if with_discriminator:
        D = build_module(discriminator or cfg.model.discriminator)
        load_weights(D, state, ('discriminator.',), path)
    return G, D, cfg


def w_avg_of(G: nn.Module) -> torch.Tensor | None:
    """The generator's tracked average ``w`` (``w_avg`` of StyleGAN2, ``dlatent_avg`` of
    StyleGAN, on ``G.mapping`` or ``G``), if any."""
    for owner in (getattr(G, 'mapping', None), G):
        for name in ('w_avg', 'dlatent_avg'):
            w_avg = getattr(owner, name, None)
            if torch.is_tensor(w_avg):
                return w_avg
    return None


def check_invertible(G: nn.Module) -> None:
    """Inversion needs ``G.mapping``, ``G.synthesis(ws)``, ``G.num_ws`` and ``G.w_dim``."""
    missing = [name for name in ('mapping', 'synthesis', 'num_ws', 'w_dim')
               if not hasattr(G, name)]
    if missing:
        raise TypeError(f'{type(G).__name__} cannot be inverted: it has no '
                        f'{", ".join(missing)} (a style-based generator with a mapping and '
                        'a synthesis network is needed)')
