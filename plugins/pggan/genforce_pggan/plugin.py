"""Entry point of the ``pggan`` genforce plugin (group ``genforce.plugins``).

:func:`genforce_register_modules` imports :mod:`genforce_pggan.networks`
(``PGGANGenerator``, ``PGGANDiscriminator``), :mod:`.losses` (``WGANGPLoss``) and :mod:`.model`
(the ``PGGAN`` training model); progressive growing itself is the core's
``ProgressiveGrowingHook`` and ``ProgressiveDataPreprocessor``.
"""
from __future__ import annotations

from typing import Any

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the plugin's modules; their registrations land in the core registries."""
    from . import losses, model, networks  # noqa: F401


@hookimpl
def genforce_test_models() -> list[dict[str, Any]]:
    """Tiny models for the core's contract suite (``genforce_core.testing``)."""
    nets = dict(img_resolution=16, fmap_base=128, fmap_max=16)
    return [dict(name='pggan_tiny', model=dict(
        type='PGGAN', generator=dict(type='PGGANGenerator', z_dim=16, **nets),
        discriminator=dict(type='PGGANDiscriminator', **nets)))]


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]
