"""StyleGAN's blur: a depthwise 2-D FIR filter with 'same' zero padding.

StyleGAN (Karras et al. 2019) low-pass filters every up-sampled activation (after the
up-sampling convolution) and every activation before a down-sampling convolution with the
separable binomial filter ``[1, 2, 1]``, normalized to sum 1. :func:`blur2d` applies a filter
``f`` ``[fh, fw]`` (odd sizes) to every channel as a true convolution (``flip_filter`` for
cross-correlation). CUDA tensors take this plugin's kernel (``blur2d_cuda``) when it builds; the
reference path is a grouped ``conv2d`` and is used, with one warning, where the kernel is not
available.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from genforce_core.api import reference_forced, warn_reference_once


def blur_filter(taps: Sequence[float] = (1, 2, 1), normalize: bool = True) -> torch.Tensor:
    """The 2-D filter ``outer(taps, taps)`` (divided by its sum when ``normalize``)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim != 1 or f.numel() % 2 != 1:
        raise ValueError(f'blur taps must be a 1-D list of odd length, got {list(taps)}')
    f = f[:, None] * f[None, :]
    return f / f.sum() if normalize else f


def _check(x: torch.Tensor, f: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f'blur2d expects [N, C, H, W] images, got shape {list(x.shape)}')
    if f.ndim != 2 or f.shape[0] % 2 != 1 or f.shape[1] % 2 != 1:
        raise ValueError(f'blur2d filter must be [fh, fw] with odd sizes, got {list(f.shape)}')


def blur2d_reference(x: torch.Tensor, f: torch.Tensor, flip_filter: bool = False) -> torch.Tensor:
    """Pure-PyTorch blur2d (any device; differentiable to every order)."""
    _check(x, f)
    w = f.to(device=x.device, dtype=x.dtype)
    if not flip_filter:
        w = w.flip([0, 1])  # conv2d is a cross-correlation
    c = x.shape[1]
    w = w[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, w, padding=(f.shape[0] // 2, f.shape[1] // 2), groups=c)


def blur2d(x: torch.Tensor, f: torch.Tensor, flip_filter: bool = False,
           impl: str = 'cuda') -> torch.Tensor:
    """Blur ``x`` ``[N, C, H, W]`` with ``f`` ``[fh, fw]`` (output of the same size).

    ``impl`` follows every plugin's op convention: ``'cuda'`` takes the CUDA kernel for CUDA
    tensors when it is available (not inside :func:`genforce_core.api.reference_ops`; the
    reference path otherwise, with one warning), ``'ref'`` always the reference path.
    """
    _check(x, f)
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"impl must be 'cuda' or 'ref', got {impl!r}")
    if impl == 'cuda' and x.is_cuda and not reference_forced():
        from . import blur2d_cuda

        if blur2d_cuda.is_available():
            return blur2d_cuda.blur2d(x, f, flip_filter)
        warn_reference_once('blur2d', f'CUDA kernel: {blur2d_cuda.status()}')
    return blur2d_reference(x, f, flip_filter)
