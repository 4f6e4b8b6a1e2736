"""Bilinear grid sampling that is differentiable any number of times w.r.t. the images.

R1 (a gradient penalty, i.e. a second derivative) through a geometric augmentation needs the
backward of ``grid_sample`` to be differentiable. PyTorch releases up to at least 2.0 raise
"derivative for grid_sampler_2d_backward is not implemented" (NVIDIA's workaround relies on
private ops of old releases); recent ones implement it. This module does not depend on the
release: for a fixed grid, sampling is a linear map ``y = A x``. Its gradient is ``A^T g``
(PyTorch's native ``grid_sampler_2d_backward`` computes exactly that), and the gradient of
``A^T g`` w.r.t. ``g`` is ``A`` again. Two autograd Functions that call each other in ``backward``
therefore give exact derivatives of every order, on the native (CPU or CUDA) kernels.

:func:`grid_sample_ref` is the pure-PyTorch reference (gathers, which autograd differentiates
twice); the tests check that both agree, and it is the fallback if the native op is missing.

Conventions: ``mode='bilinear'``, ``padding_mode='zeros'``, ``align_corners=False``; the grid
is ``[N, Ho, Wo, 2]`` in normalized ``(x, y)`` coordinates, and gets no gradient.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BILINEAR, _ZEROS = 0, 0


def _native_transpose_available() -> bool:
    return hasattr(torch.ops.aten, 'grid_sampler_2d_backward')


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grid)
        ctx.input_shape = x.shape
        return F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros',
                             align_corners=False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (grid,) = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _GridSampleTranspose.apply(grad, grid, ctx.input_shape)
        return grad_x, None


class _GridSampleTranspose(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad: torch.Tensor, grid: torch.Tensor, input_shape) -> torch.Tensor:
        ctx.save_for_backward(grid)
        # The input's values only matter for the grid gradient, which is not requested; on
        # the CPU a broadcast zero stands in for it (other devices get a real tensor).
        dummy = grad.new_zeros(()).expand(input_shape) if grad.device.type == 'cpu' else \
            grad.new_zeros(input_shape)
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad.contiguous(), dummy, grid, _BILINEAR, _ZEROS, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad: torch.Tensor):
        (grid,) = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[0]:
            grad = _GridSample.apply(grad_grad, grid)
        return grad, None, None


def grid_sample(x: torch.Tensor, grid: torch.Tensor, impl: str = 'native') -> torch.Tensor:
    """Bilinear ``grid_sample`` (zeros padding, ``align_corners=False``) with derivatives of
    every order w.r.t. ``x``.

    Args:
        x: Images ``[N, C, H, W]``.
        grid: Sampling positions ``[N, Ho, Wo, 2]`` in [-1, 1] (no gradient flows into it).
        impl: 'native' (PyTorch's kernels, wrapped) or 'ref' (gathers).
    """
    if impl not in ('native', 'ref'):
        raise ValueError(f"impl must be 'native' or 'ref', got {impl!r}")
    grid = grid.detach().to(x.dtype)
    if impl == 'ref' or not _native_transpose_available():
        return grid_sample_ref(x, grid)
    return _GridSample.apply(x, grid)


def grid_sample_ref(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Reference bilinear sampling from four gathers (zeros outside the image)."""
    n, c, h, w = x.shape
    _, ho, wo, _ = grid.shape
    # align_corners=False: -1 and 1 are the outer edges of the border pixels.
    px = ((grid[..., 0] + 1) * w - 1) / 2
    py = ((grid[..., 1] + 1) * h - 1) / 2
    x0, y0 = px.floor(), py.floor()
    fx, fy = (px - x0).to(x.dtype), (py - y0).to(x.dtype)
    flat = x.reshape(n, c, h * w)
    out = x.new_zeros(n, c, ho * wo)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).reshape(n, 1, ho * wo)
            weight = (wx * wy * inside).reshape(n, 1, ho * wo)
            out = out + flat.gather(2, index.expand(n, c, ho * wo)) * weight
    return out.reshape(n, c, ho, wo)
