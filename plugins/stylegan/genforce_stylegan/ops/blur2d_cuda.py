"""CUDA path of :func:`genforce_stylegan.ops.blur2d.blur2d`.

The kernel (``cuda/blur2d.cu``) is built just in time by :mod:`genforce_core.ops` the first time
:func:`is_available` or :func:`blur2d` runs on a machine with a CUDA device. The op is linear in
``x`` and its adjoint is the same op with the flipped filter, so the
:class:`torch.autograd.Function` below calls itself in ``backward``: gradients of every order
(R1 needs the second) come from the same kernel. The filter gets no gradient.
"""
from __future__ import annotations

from pathlib import Path

import torch

from genforce_core.api import CudaExtension, kernel_mismatch

EXTENSION = 'genforce_stylegan_blur2d'
_CUDA_DIR = Path(__file__).resolve().parent / 'cuda'
SOURCES = [_CUDA_DIR / 'blur2d_bindings.cpp', _CUDA_DIR / 'blur2d.cu']

_EXTENSION = CudaExtension(EXTENSION, SOURCES, self_check=lambda: self_check())
is_available = _EXTENSION.is_available
status = _EXTENSION.status


class _Blur2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, f: torch.Tensor, flip: bool) -> torch.Tensor:
        ext = _EXTENSION.module()
        if ext is None:
            raise RuntimeError(f'blur2d CUDA kernel unavailable: {status()}')
        ctx.save_for_backward(f)
        ctx.flip = flip
        return ext.blur2d(x, f, flip)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        (f,) = ctx.saved_tensors
        dx = _Blur2d.apply(dy, f, not ctx.flip) if ctx.needs_input_grad[0] else None
        return dx, None, None


def blur2d(x: torch.Tensor, f: torch.Tensor, flip_filter: bool = False) -> torch.Tensor:
    """CUDA blur2d with the signature and semantics of the reference implementation."""
    if not f.is_floating_point():
        f = f.float()
    return _Blur2d.apply(x, f.to(device=x.device), bool(flip_filter))


def self_check(device: str = 'cuda') -> str | None:
    """The kernel against the reference (values and the input gradient) for a 3x3 filter;
    None when they agree."""
    from .blur2d import blur2d_reference

    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 8, 7], generator=g).to(device).requires_grad_(True)
    f = torch.rand([3, 3], generator=g).to(device)
    return kernel_mismatch(blur2d, blur2d_reference, [x, f])
