"""CUDA path of :func:`genforce_stylegan2.ops.upfirdn2d.upfirdn2d`.

The kernel (``cuda/upfirdn2d.cu``) is built just in time by :mod:`genforce_core.ops` the first
time :func:`is_available` or :func:`upfirdn2d` runs on a machine with a CUDA device. The op is an
:class:`torch.autograd.Function` whose backward is the same op — upfirdn2d is linear in ``x`` and
its adjoint is an upfirdn2d of the gradient with the flipped filter, up and down swapped and the
padding adjusted — so gradients of every order are available. The filter gets no gradient.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genforce_core.api import CudaExtension, kernel_mismatch

from .upfirdn2d import parse_padding

EXTENSION = 'genforce_stylegan2_upfirdn2d'
_CUDA_DIR = Path(__file__).resolve().parent / 'cuda'
SOURCES = [_CUDA_DIR / 'upfirdn2d_bindings.cpp', _CUDA_DIR / 'upfirdn2d.cu']

_EXTENSION = CudaExtension(EXTENSION, SOURCES, self_check=lambda: self_check())
_extension = _EXTENSION.module
is_available = _EXTENSION.is_available
status = _EXTENSION.status


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = (int(t) for t in v)
    return a, b


class _Upfirdn2d(torch.autograd.Function):
    """One pass with a 2-D filter ``[fh, fw]``; differentiable to any order in ``x``."""

    @staticmethod
    def forward(ctx, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        ext = _extension()
        if ext is None:
            raise RuntimeError(f'upfirdn2d CUDA kernel unavailable: {status()}')
        y = ext.upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)
        ctx.save_for_backward(f)
        ctx.cfg = (upx, upy, downx, downy, padx0, pady0, flip, gain)
        ctx.in_hw = (x.shape[2], x.shape[3])
        return y

    @staticmethod
    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        upx, upy, downx, downy, padx0, pady0, flip, gain = ctx.cfg
        ih, iw = ctx.in_hw
        oh, ow = dy.shape[2], dy.shape[3]
        fh, fw = f.shape
        dx = None
        if ctx.needs_input_grad[0]:
            # Adjoint: y[o] = sum_i w[i] xu[o*down + i - p0]  =>  dx[m] = sum_j w[fh-1-j] *
            # dyu[m*up + j - (fh-1-p0)], dyu = dy with (down - 1) zeros inserted; the end
            # padding makes the output exactly the input size.
            padding = (fw - padx0 - 1, iw * upx - ow * downx + padx0 - upx + 1,
                       fh - pady0 - 1, ih * upy - oh * downy + pady0 - upy + 1)
            dx = _Upfirdn2d.apply(dy, f, downx, downy, upx, upy, *padding, not flip, gain)
        return (dx,) + (None,) * 11


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 1,
              down: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
              flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """CUDA upfirdn2d with the signature and semantics of the reference implementation.

    ``f`` is ``[fh, fw]`` (one pass) or ``[fw]`` (separable: a horizontal then a vertical pass,
    each with ``sqrt(gain)``), or None for the identity. ``up``/``down`` are ``s`` or
    ``[sx, sy]``; ``padding`` is ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]`` (negative crops).
    """
    if x.ndim != 4:
        raise ValueError(f'upfirdn2d expects [N, C, H, W] images, got shape {list(x.shape)}')
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    if min(upx, upy, downx, downy) < 1:
        raise ValueError(f'up/down factors must be >= 1, got up={up}, down={down}')
    padx0, padx1, pady0, pady1 = parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device)
    if f.ndim == 2:
        return _Upfirdn2d.apply(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1,
                                bool(flip_filter), float(gain))
    if f.ndim != 1:
        raise ValueError(f'FIR filter must be 1-D or 2-D, got shape {list(f.shape)}')
    g = float(gain) ** 0.5
    x = _Upfirdn2d.apply(x, f[None, :], upx, 1, downx, 1, padx0, padx1, 0, 0,
                         bool(flip_filter), g)
    return _Upfirdn2d.apply(x, f[:, None], 1, upy, 1, downy, 0, 0, pady0, pady1,
                            bool(flip_filter), g)


def self_check(device: str = 'cuda') -> str | None:
    """The kernel against the reference (values and input gradients) for an upsampling pass
    with a 2-D filter and a downsampling separable one; None when they agree."""
    from .upfirdn2d import upfirdn2d as upfirdn2d_any

    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 9, 8], generator=g).to(device).requires_grad_(True)
    for f, kw in ((torch.rand([4, 4], generator=g), dict(up=2, padding=[2, 1, 2, 1])),
                  (torch.rand([6], generator=g), dict(down=2, padding=2, gain=2.0))):
        problem = kernel_mismatch(lambda t, f, kw=kw: upfirdn2d(t, f, **kw),
                                  lambda t, f, kw=kw: upfirdn2d_any(t, f, impl='ref', **kw),
                                  [x, f.to(device)])
        if problem:
            return problem
    return None
