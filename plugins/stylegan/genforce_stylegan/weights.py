"""Official TensorFlow variable names and layouts of the StyleGAN networks.

Every parameter and buffer is one official variable of ``G_style`` (with its sub-networks
``G_mapping`` and ``G_synthesis``) or ``D_basic``. Names map by these rules, with ``/`` written
as ``.``:

=================================  ========================================
official (TensorFlow)              here (state-dict key)
=================================  ========================================
``dlatent_avg``                    ``mapping.dlatent_avg``
``G_mapping/<path>``               ``mapping.<path>``
``G_synthesis/<path>``             ``synthesis.<path>``
``<path>`` (discriminator)         ``<path>``
=================================  ========================================

e.g. ``G_synthesis/4x4/Const/Noise/weight`` is ``synthesis.4x4.Const.Noise.weight``. Dense
weights are stored ``[out, in]`` (TensorFlow ``[in, out]``; this includes ``StyleMod/weight``
and ``LabelConcat/weight``), convolution weights ``[out, in, kh, kw]`` (TensorFlow
``[kh, kw, in, out]``); everything else (biases, ``const``, ``noise<i>``, ``lod``,
``dlatent_avg``) is identical.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from genforce_core.api import from_tf, load_official_tf, official_tf_shapes, to_tf

__all__ = ['tf_name', 'torch_key', 'from_tf', 'to_tf', 'official_shapes', 'load_official']

_PREFIXES = (('G_mapping/', 'mapping.'), ('G_synthesis/', 'synthesis.'))


def tf_name(key: str) -> str:
    """Official variable name of a state-dict key of a generator or discriminator."""
    if key == 'mapping.dlatent_avg':
        return 'dlatent_avg'
    for tf_prefix, prefix in _PREFIXES:
        if key.startswith(prefix):
            return tf_prefix + key[len(prefix):].replace('.', '/')
    return key.replace('.', '/')


def torch_key(name: str) -> str:
    """State-dict key of an official variable name."""
    if name == 'dlatent_avg':
        return 'mapping.dlatent_avg'
    for tf_prefix, prefix in _PREFIXES:
        if name.startswith(tf_prefix):
            return prefix + name[len(tf_prefix):].replace('/', '.')
    return name.replace('/', '.')


def official_shapes(network: nn.Module) -> dict[str, tuple[int, ...]]:
    """``{official name: official shape}`` of every variable of ``network``."""
    return official_tf_shapes(network, tf_name)


def load_official(network: nn.Module, variables: Mapping[str, Any]) -> None:
    """Copy official variables (``{name: array}``) into ``network``; every variable must be
    present with the official shape, and none may be left over."""
    load_official_tf(network, variables, tf_name, torch_key)
