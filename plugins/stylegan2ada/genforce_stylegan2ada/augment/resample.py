"""2x up- and down-sampling with a separable FIR filter, without wasted work.

Same results as ``upfirdn2d.upsample2d(x, f, up=2)`` and ``upfirdn2d.downsample2d(x, f,
down=2, flip_filter=True)`` of genforce-plugin-stylegan2 for an even-length 1-D filter ``f``
(the tests check it). Two implementations, both plain differentiable PyTorch ops (so autograd
differentiates them to any order):

* ``conv``: a strided transposed convolution (no multiplying inserted zeros) and a strided
  convolution (no computing discarded pixels), channels folded into the batch;
* ``matmul``: each axis as a product with the banded matrix of the 1-D operation. It does
  ``size / len(f)`` times more arithmetic, but as one BLAS call it is several times faster
  than a single-channel convolution for the small images ADA usually trains on.

``impl='auto'`` takes ``matmul`` up to :data:`MATMUL_MAX_SIZE` pixels per axis.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MATMUL_MAX_SIZE = 512


def _check(x: torch.Tensor, f: torch.Tensor, impl: str) -> int:
    if x.ndim != 4 or f.ndim != 1 or f.numel() % 2:
        raise ValueError(f'expected [N, C, H, W] images and an even-length 1-D filter, got '
                         f'{list(x.shape)} and {list(f.shape)}')
    if impl not in ('auto', 'conv', 'matmul'):
        raise ValueError(f"impl must be 'auto', 'conv' or 'matmul', got {impl!r}")
    return f.numel()


def _use_matmul(x: torch.Tensor, impl: str) -> bool:
    return impl == 'matmul' or (impl == 'auto' and max(x.shape[2:]) <= MATMUL_MAX_SIZE)


def _up_1d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Up-sample the last axis of ``x`` ``[B, 1, H, W]`` -> ``[B, 1, H, 2W]``."""
    taps, w = f.numel(), x.shape[-1]
    # upsample2d pads (taps/2, taps/2 - 1): output m reads the transposed convolution at
    # m + taps/2 - 1.
    start = taps // 2 - 1
    y = F.conv_transpose2d(x, (2 * f).view(1, 1, 1, taps), stride=(1, 2))
    return y[..., start:start + 2 * w]


def _down_1d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Valid strided correlation along the last axis of ``x`` ``[B, 1, H, W]``."""
    return F.conv2d(x, f.view(1, 1, 1, f.numel()), stride=(1, 2))


def _banded(f: torch.Tensor, rows: int, cols: int, offset: int, row_step: int,
            col_step: int) -> torch.Tensor:
    """``M[i, j] = f[offset + col_step * j - row_step * i]`` where that index is a tap, else 0."""
    i = torch.arange(rows, device=f.device)[:, None]
    j = torch.arange(cols, device=f.device)[None, :]
    tap = offset + col_step * j - row_step * i
    valid = (tap >= 0) & (tap < f.numel())
    return torch.where(valid, f[tap.clamp(0, f.numel() - 1)], f.new_zeros(()))


def _up_matrix(size: int, f: torch.Tensor) -> torch.Tensor:
    """``[size, 2 size]`` matrix of :func:`_up_1d`: output m takes ``2 f[m + start - 2 k]``."""
    return _banded(2 * f, size, 2 * size, f.numel() // 2 - 1, 2, 1)


def _down_matrix(size: int, f: torch.Tensor) -> torch.Tensor:
    """``[size, out]`` matrix of :func:`_down_1d`: output m takes ``f[k - 2 m]``."""
    return _banded(f, size, (size - f.numel()) // 2 + 1, 0, -1, -2)


def upsample2x(x: torch.Tensor, f: torch.Tensor, impl: str = 'auto') -> torch.Tensor:
    """Insert zeros and convolve with ``2 f`` along each axis: ``[N, C, 2H, 2W]``."""
    _check(x, f, impl)
    n, c, h, w = x.shape
    f = f.to(x.dtype)
    if _use_matmul(x, impl):
        return _up_matrix(h, f).T @ (x @ _up_matrix(w, f))
    y = _up_1d(x.reshape(n * c, 1, h, w), f)
    y = _up_1d(y.transpose(2, 3), f).transpose(2, 3)
    return y.reshape(n, c, 2 * h, 2 * w)


def downsample2x(x: torch.Tensor, f: torch.Tensor, impl: str = 'auto') -> torch.Tensor:
    """Correlate with ``f`` along each axis and keep every other pixel: ``[N, C, H/2, W/2]``
    (zeros beyond the borders)."""
    pad = _check(x, f, impl) // 2 - 1
    if x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f'downsample2x needs even sizes, got {list(x.shape[2:])}')
    return downsample2x_valid(F.pad(x, [pad, pad, pad, pad]), f, impl)


def downsample2x_valid(x: torch.Tensor, f: torch.Tensor, impl: str = 'auto') -> torch.Tensor:
    """:func:`downsample2x` of the centre of ``x``, whose border of ``len(f) / 2 - 1``
    pixels on every side only feeds the filter: ``[N, C, (H - len(f)) // 2 + 1, ...]``."""
    _check(x, f, impl)
    n, c, h, w = x.shape
    f = f.to(x.dtype)
    if _use_matmul(x, impl):
        return _down_matrix(h, f).T @ (x @ _down_matrix(w, f))
    y = _down_1d(x.reshape(n * c, 1, h, w), f)
    y = _down_1d(y.transpose(2, 3), f).transpose(2, 3)
    return y.reshape(n, c, y.shape[2], y.shape[3])
