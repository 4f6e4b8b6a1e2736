"""Bias, activation, gain and clamp in one op (``bias_act``), as used by every StyleGAN2 layer.

``bias_act(x, b, act=..., gain=g, clamp=c)`` computes ``clamp(act(x + b) * g, -c, c)``. Each
activation has a default ``alpha`` and a default ``gain`` chosen so that the activation roughly
preserves the second moment of a unit Gaussian input (sqrt(2) for the ReLU family and swish).

The reference path below is plain PyTorch; on a CUDA tensor with ``impl='cuda'`` the op goes to
``bias_act_cuda`` when that module loads and says it is available.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import _dispatch


@dataclass(frozen=True)
class Activation:
    """One entry of the activation table (the only one: the CUDA path reads it too)."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_id: int  # enum Act in cuda/bias_act.h
    piecewise_linear: bool  # second derivative identically zero


activation_funcs: dict[str, Activation] = {
    'linear': Activation(lambda x, a: x, 0.0, 1.0, 0, True),
    'relu': Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), 1, True),
    'lrelu': Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), 2, True),
    'tanh': Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, 3, False),
    'sigmoid': Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, 4, False),
    'elu': Activation(lambda x, a: F.elu(x), 0.0, 1.0, 5, False),
    'selu': Activation(lambda x, a: F.selu(x), 0.0, 1.0, 6, False),
    'softplus': Activation(lambda x, a: F.softplus(x), 0.0, 1.0, 7, False),
    'swish': Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), 8, False),
}


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = 'linear',
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = 'cuda') -> torch.Tensor:
    """Add a bias, apply an activation, scale by a gain and clamp, in that order.

    Args:
        x: Input of any shape.
        b: Bias ``[x.shape[dim]]``, or None.
        dim: Dimension of ``x`` that ``b`` runs along.
        act: One of ``activation_funcs``: linear, relu, lrelu, tanh, sigmoid, elu, selu,
            softplus, swish.
        alpha: Slope parameter (leaky ReLU's negative slope); None takes the default
            (0.2 for lrelu, 0 otherwise).
        gain: Output scale; None takes the activation's default gain.
        clamp: Clamp the output to ``[-clamp, clamp]``; None (or negative) does not clamp.
        impl: 'cuda' to use the CUDA kernel for CUDA tensors when it is available, 'ref' for
            the reference path.

    Returns:
        A tensor with the shape and dtype of ``x``.
    """
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"impl must be 'cuda' or 'ref', got {impl!r}")
    if act not in activation_funcs:
        raise ValueError(f'unknown activation {act!r}; choose one of {sorted(activation_funcs)}')
    if impl == 'cuda' and x.is_cuda:
        module = _dispatch.cuda_module('bias_act')
        if module is not None:
            return module.bias_act(x, b, dim, act, alpha, gain, clamp)
        _dispatch.warn_reference('bias_act')
    return _bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def _bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1,
                  act: str = 'linear', alpha: float | None = None, gain: float | None = None,
                  clamp: float | None = None) -> torch.Tensor:
    """Reference :func:`bias_act` from elementary PyTorch ops (differentiable to any order)."""
    spec = activation_funcs[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    clamp = float(clamp if clamp is not None else -1)

    if b is not None:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias of shape {list(b.shape)} does not match dimension {dim} of '
                             f'x (shape {list(x.shape)})')
        x = x + b.reshape([-1 if i == dim % x.ndim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
