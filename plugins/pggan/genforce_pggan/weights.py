"""Official TensorFlow variable names and layouts of the PGGAN networks.

Every parameter and buffer here is one official variable of ``G_paper`` / ``D_paper``: the
name is the TensorFlow name with ``/`` written as ``.`` (``'4x4/Dense/weight'`` is
``'4x4.Dense.weight'``; ``'lod'`` is ``'lod'``). Values differ only in layout: dense weights
are stored ``[out, in]`` (TensorFlow ``[in, out]``) and convolution weights ``[out, in, kh, kw]``
(TensorFlow ``[kh, kw, in, out]``); biases, ``lod`` and everything else are identical.
"""
from __future__ import annotations

import torch
from torch import nn


def tf_name(key: str) -> str:
    """Official variable name of a state-dict key of a generator or discriminator."""
    return key.replace('.', '/')


def torch_key(name: str) -> str:
    """State-dict key of an official variable name."""
    return name.replace('/', '.')


def is_weight(key: str) -> bool:
    return key.rsplit('.', 1)[-1] == 'weight'


def from_tf(key: str, value: torch.Tensor) -> torch.Tensor:
    """An official variable's value in this network's layout."""
    value = torch.as_tensor(value)
    if is_weight(key) and value.ndim == 2:
        return value.t().contiguous()
    if is_weight(key) and value.ndim == 4:
        return value.permute(3, 2, 0, 1).contiguous()
    return value


def to_tf(key: str, value: torch.Tensor) -> torch.Tensor:
    """A state-dict value in the official layout."""
    if is_weight(key) and value.ndim == 2:
        return value.t().contiguous()
    if is_weight(key) and value.ndim == 4:
        return value.permute(2, 3, 1, 0).contiguous()
    return value


def official_shapes(network: nn.Module) -> dict[str, tuple[int, ...]]:
    """``{official name: official shape}`` of every variable of ``network``."""
    return {tf_name(k): tuple(to_tf(k, v).shape) for k, v in network.state_dict().items()}


def load_official(network: nn.Module, variables: dict[str, torch.Tensor]) -> None:
    """Copy official variables (``{name: array}``) into ``network``; every variable must be
    present with the official shape, and none may be left over."""
    state = network.state_dict()
    expected = {tf_name(k) for k in state}
    missing, extra = expected - set(variables), set(variables) - expected
    if missing or extra:
        raise KeyError(f'official variables do not match {type(network).__name__}: '
                       f'{len(missing)} missing {sorted(missing)[:10]}, {len(extra)} '
                       f'unexpected {sorted(extra)[:10]}')
    for name, value in variables.items():
        key = torch_key(name)
        value = from_tf(key, value)
        if value.shape != state[key].shape:
            raise ValueError(f'{name}: official shape {tuple(to_tf(key, state[key]).shape)} '
                             f'expected, got {tuple(to_tf(key, value).shape)}')
        state[key] = value.to(state[key].dtype)
    network.load_state_dict(state)
