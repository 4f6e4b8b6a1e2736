"""Entry point of the ``stylegan`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_stylegan.networks`
(``StyleGANGenerator``, ``StyleGANDiscriminator``) and :mod:`.model` (the ``StyleGAN``
training model); progressive growing itself is the core's ``ProgressiveGrowingHook`` and
``ProgressiveDataPreprocessor``.
"""
from __future__ import annotations

from typing import Any

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import model, networks  # noqa: F401


@hookimpl
def genforce_op_status() -> dict[str, str]:
    """Which path the blur takes on CUDA tensors; cheap, never compiles."""
    from .ops import blur2d_cuda

    return {'blur2d': blur2d_cuda.status()}


@hookimpl
def genforce_test_models() -> list[dict[str, Any]]:
    """Tiny models for the core's contract suite (``genforce_core.testing``)."""
    return [dict(name='stylegan_tiny', model=dict(
        type='StyleGAN',
        generator=dict(type='StyleGANGenerator', z_dim=16, w_dim=16, img_resolution=16,
                       mapping_kwargs=dict(num_layers=2, layer_features=16),
                       synthesis_kwargs=dict(fmap_base=64, fmap_max=16)),
        discriminator=dict(type='StyleGANDiscriminator', img_resolution=16, fmap_base=64,
                           fmap_max=16),
        r1=dict(type='R1Penalty', gamma=10, interval=1), ema=dict(half_life_kimg=0.01)))]


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]
