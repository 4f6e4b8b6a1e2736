"""CUDA path of :func:`genforce_stylegan2.ops.bias_act.bias_act`.

``y = clamp(act(x + b) * gain, -clamp, clamp)`` in one fused kernel (``cuda/bias_act.cu``),
built just in time by :mod:`genforce_core.ops`. The backward is a second autograd Function
whose own backward uses the kernel's second-derivative mode, so first and second derivatives
(R1, path-length regularisation) are exact; third order is not supported.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

from genforce_core.api import CudaExtension, kernel_mismatch

from .bias_act import activation_funcs

EXTENSION = 'genforce_stylegan2_bias_act'
_CUDA_DIR = Path(__file__).resolve().parent / 'cuda'
SOURCES = [_CUDA_DIR / 'bias_act_bindings.cpp', _CUDA_DIR / 'bias_act.cu']

# name -> (kernel id (enum Act in cuda/bias_act.h), default alpha, default gain,
#          second derivative identically zero): a view of the one activation table.
ACTIVATIONS: dict[str, tuple[int, float, float, bool]] = {
    name: (spec.cuda_id, spec.def_alpha, spec.def_gain, spec.piecewise_linear)
    for name, spec in activation_funcs.items()}

_LINEAR_PIECES = {v[0]: v[3] for v in ACTIVATIONS.values()}  # id -> act'' == 0

_EXTENSION = CudaExtension(EXTENSION, SOURCES, self_check=lambda: self_check())
_extension = _EXTENSION.module
is_available = _EXTENSION.is_available
status = _EXTENSION.status


def _kernel(x, b, g1, g2, mode, cfg):
    ext = _extension()
    if ext is None:
        raise RuntimeError(f'bias_act CUDA kernel unavailable: {status()}')
    act, dim, alpha, gain, clamp = cfg
    return ext.bias_act(x, b, g1, g2, mode, act, dim, alpha, gain, clamp)


def _sum_to_bias(t: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    return t.sum([i for i in range(t.ndim) if i != dim]).to(b.dtype)


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, cfg):
        empty = x.new_empty([0])
        y = _kernel(x, b, empty, empty, 0, cfg)
        ctx.save_for_backward(x, b)
        ctx.cfg = cfg
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dz = _BiasActGrad.apply(dy, x, b, ctx.cfg)
        dx = dz if ctx.needs_input_grad[0] else None
        db = _sum_to_bias(dz, b, ctx.cfg[1]) if ctx.needs_input_grad[1] else None
        return dx, db, None


class _BiasActGrad(torch.autograd.Function):
    """dz = dy * gain * act'(x + b) * [not clamped], as a function of (dy, x, b)."""

    @staticmethod
    def forward(ctx, dy, x, b, cfg):
        dz = _kernel(x, b, dy, x.new_empty([0]), 1, cfg)
        ctx.save_for_backward(dy, x, b)
        ctx.cfg = cfg
        return dz

    @staticmethod
    @once_differentiable
    def backward(ctx, ddz):
        dy, x, b = ctx.saved_tensors
        cfg = ctx.cfg
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:  # dz is linear in dy
            d_dy = _kernel(x, b, ddz, x.new_empty([0]), 1, cfg)
        curved = not _LINEAR_PIECES[cfg[0]]
        if curved and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_z = _kernel(x, b, ddz, dy, 2, cfg)  # ddz * dy * gain * act''(z) * mask
            d_x = d_z if ctx.needs_input_grad[1] else None
            d_b = _sum_to_bias(d_z, b, cfg[1]) if ctx.needs_input_grad[2] else None
        return d_dy, d_x, d_b, None


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1,
             act: str = 'linear', alpha: float | None = None, gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """CUDA bias_act with the signature and semantics of the reference implementation.

    ``alpha``/``gain`` None take the activation's defaults (lrelu alpha 0.2; gain sqrt(2) for
    relu, lrelu and swish, 1 otherwise); ``clamp`` None or negative means no clamp. ``b`` is
    cast to ``x.dtype``; the result has the shape and dtype of ``x``.
    """
    if act not in ACTIVATIONS:
        raise ValueError(f'unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}')
    act_id, def_alpha, def_gain, _ = ACTIVATIONS[act]
    alpha = float(def_alpha if alpha is None else alpha)
    gain = float(def_gain if gain is None else gain)
    clamp = float(-1 if clamp is None else clamp)
    if clamp < 0:
        clamp = -1.0
    dim = dim % x.ndim if x.ndim else 0
    if b is None:
        b = x.new_empty([0])
    else:
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias of shape {list(b.shape)} does not match dimension {dim} '
                             f'of x (shape {list(x.shape)})')
        b = b.to(device=x.device, dtype=x.dtype)
    return _BiasAct.apply(x, b, (act_id, dim, alpha, gain, clamp))


def self_check(device: str = 'cuda') -> str | None:
    """The kernel against the reference (values, gradients for x and the bias) for a clamped
    leaky ReLU; None when they agree."""
    from .bias_act import bias_act as bias_act_any

    g = torch.Generator().manual_seed(0)
    x = torch.randn([4, 6, 5, 5], generator=g).to(device).requires_grad_(True)
    b = torch.randn([6], generator=g).to(device).requires_grad_(True)
    kw = dict(act='lrelu', clamp=0.8)  # clamps 57 %; no input within 7e-4 of a kink
    return kernel_mismatch(lambda x, b: bias_act(x, b, **kw),
                           lambda x, b: bias_act_any(x, b, impl='ref', **kw), [x, b])
