"""Official TensorFlow variable names and layouts of the PGGAN networks.

Every parameter and buffer here is one official variable of ``G_paper`` / ``D_paper``: the
name is the TensorFlow name with ``/`` written as ``.`` (``'4x4/Dense/weight'`` is
``'4x4.Dense.weight'``; ``'lod'`` is ``'lod'``). Values differ only in layout: dense weights
are stored ``[out, in]`` (TensorFlow ``[in, out]``) and convolution weights ``[out, in, kh, kw]``
(TensorFlow ``[kh, kw, in, out]``); biases, ``lod`` and everything else are identical.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from genforce_core.api import from_tf, load_official_tf, official_tf_shapes, to_tf

__all__ = ['tf_name', 'torch_key', 'from_tf', 'to_tf', 'official_shapes', 'load_official']


def tf_name(key: str) -> str:
    """Official variable name of a state-dict key of a generator or discriminator."""
    return key.replace('.', '/')


def torch_key(name: str) -> str:
    """State-dict key of an official variable name."""
    return name.replace('/', '.')


def official_shapes(network: nn.Module) -> dict[str, tuple[int, ...]]:
    """``{official name: official shape}`` of every variable of ``network``."""
    return official_tf_shapes(network, tf_name)


def load_official(network: nn.Module, variables: Mapping[str, Any]) -> None:
    """Copy official variables (``{name: array}``) into ``network``; every variable must be
    present with the official shape, and none may be left over."""
    load_official_tf(network, variables, tf_name, torch_key)
