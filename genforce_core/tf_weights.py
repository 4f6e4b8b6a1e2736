"""Official TensorFlow variables in and out of PyTorch networks that keep one parameter per
TF variable (the PGGAN and StyleGAN families).

Names map through a family's ``tf_name``/``torch_key`` pair; values differ only in layout:
dense weights are stored ``[out, in]`` (TensorFlow ``[in, out]``), convolution weights
``[out, in, kh, kw]`` (TensorFlow ``[kh, kw, in, out]``); everything else is identical.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

NameMap = Callable[[str], str]


def is_tf_weight(key: str) -> bool:
    """Whether a state-dict key names a dense or convolution weight (layouts differ)."""
    return key.rsplit('.', 1)[-1] == 'weight'


def from_tf(key: str, value: Any) -> torch.Tensor:
    """An official variable's value in the PyTorch layout of state-dict key ``key``."""
    value = torch.as_tensor(value)
    if is_tf_weight(key) and value.ndim == 2:
        return value.t().contiguous()
    if is_tf_weight(key) and value.ndim == 4:
        return value.permute(3, 2, 0, 1).contiguous()
    return value


def to_tf(key: str, value: torch.Tensor) -> torch.Tensor:
    """A state-dict value in the official TensorFlow layout."""
    if is_tf_weight(key) and value.ndim == 2:
        return value.t().contiguous()
    if is_tf_weight(key) and value.ndim == 4:
        return value.permute(2, 3, 1, 0).contiguous()
    return value


def official_tf_shapes(network: nn.Module, tf_name: NameMap) -> dict[str, tuple[int, ...]]:
    """``{official name: official shape}`` of every variable of ``network``."""
    return {tf_name(k): tuple(to_tf(k, v).shape) for k, v in network.state_dict().items()}


def load_official_tf(network: nn.Module, variables: Mapping[str, Any], tf_name: NameMap,
                  torch_key: NameMap) -> None:
    """Copy official variables (``{name: array}``) into ``network``; every variable must be
    present with the official shape (else ``ValueError``), and none may be missing or left
    over (else ``KeyError``)."""
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
