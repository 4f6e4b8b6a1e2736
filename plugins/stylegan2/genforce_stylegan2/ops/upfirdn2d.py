"""Upsample, FIR-filter and downsample a batch of 2-D images in one op (``upfirdn2d``).

The op computes, per channel: insert ``up - 1`` zeros after every pixel, pad (or crop, for
negative values) the borders, convolve with the FIR filter ``f`` and keep every ``down``-th
pixel. Filters are 2-D ``[fh, fw]`` (non-separable) or 1-D ``[fw]`` (separable, applied along
both axes). ``filter2d``, ``upsample2d`` and ``downsample2d`` choose the padding that keeps the
image centred, as in StyleGAN2.

The reference path below is plain PyTorch; on a CUDA tensor with ``impl='cuda'`` the op goes to
``upfirdn2d_cuda`` when that module loads and says it is available.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import _dispatch

Padding = int | Sequence[int]


def _parse_scaling(scaling: int | Sequence[int]) -> tuple[int, int]:
    """``s`` or ``[sx, sy]`` -> ``(sx, sy)``."""
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise ValueError(f'up/down factors must be >= 1, got {list(scaling)}')
    return sx, sy


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """``p``, ``[px, py]`` or ``[x0, x1, y0, y1]`` -> ``(x0, x1, y0, y1)``."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    if len(padding) != 4:
        raise ValueError(f'padding must have 1, 2 or 4 entries, got {padding}')
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def _get_filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Width and height of a filter (1-D filters are square once applied on both axes)."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError(f'FIR filter must be 1-D or 2-D, got shape {list(f.shape)}')
    return int(f.shape[-1]), int(f.shape[0])


def setup_filter(f, device: torch.device | str = 'cpu', normalize: bool = True,
                 flip_filter: bool = False, gain: float = 1,
                 separable: bool | None = None) -> torch.Tensor:
    """Turn a filter description into a float32 tensor for :func:`upfirdn2d`.

    Args:
        f: Filter taps: None (identity), a scalar, a 1-D or a 2-D array-like.
        device: Where the result lives.
        normalize: Divide by the sum of the taps so the filter keeps the mean (DC gain 1).
        flip_filter: Flip the taps (convolution <-> correlation).
        gain: Overall gain, spread over the dimensions (``gain ** (ndim / 2)`` per filter).
        separable: Keep a 1-D filter 1-D. By default only long 1-D filters (8 taps or more)
            stay separable; shorter ones become their 2-D outer product.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f'FIR filter must be a non-empty 1-D or 2-D array, got {list(f.shape)}')
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError('a separable filter must be 1-D')
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 1,
              down: int | Sequence[int] = 1, padding: Padding = 0, flip_filter: bool = False,
              gain: float = 1, impl: str = 'cuda') -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with ``f``, downsample by decimation.

    Args:
        x: Images ``[N, C, H, W]``.
        f: Filter from :func:`setup_filter` (``[fh, fw]`` or ``[fw]``), or None for identity.
        up: Upsampling factor ``u`` or ``[ux, uy]``.
        down: Downsampling factor ``d`` or ``[dx, dy]``.
        padding: ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``; negative values crop.
        flip_filter: False: true convolution; True: correlation.
        gain: Signal gain (the filter is scaled by ``gain ** (ndim / 2)`` per pass).
        impl: 'cuda' to use the CUDA kernel for CUDA tensors when it is available, 'ref' for
            the reference path.

    Returns:
        ``[N, C, (H * uy + y0 + y1 - fh) // dy + 1, (W * ux + x0 + x1 - fw) // dx + 1]``.
    """
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"impl must be 'cuda' or 'ref', got {impl!r}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if impl == 'cuda' and x.is_cuda:
        module = _dispatch.cuda_module('upfirdn2d')
        if module is not None:
            return module.upfirdn2d(x, f, up, down, padding, flip_filter, gain)
        _dispatch.warn_reference('upfirdn2d')
    return _upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter,
                          gain=gain)


# Images up to this many pixels per axis (after zero insertion) are filtered by matrix products
# on the reference path when the filter is separable; larger ones by a depthwise convolution.
MATMUL_MAX_SIZE = 256


def _separable_factors(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(fy, fx)`` with ``f == outer(fy, fx)`` (``f`` itself twice for a 1-D filter), or None
    when a 2-D filter is not an outer product (checked on its few taps)."""
    if f.ndim == 1:
        return f, f
    total = f.sum()
    if f.numel() > 64 or total == 0:
        return None
    fy, fx = f.sum(1), f.sum(0) / total
    if not torch.allclose(torch.outer(fy, fx), f, rtol=1e-5, atol=1e-6 * float(f.abs().max())):
        return None
    return fy, fx


def _axis_matrix(taps: torch.Tensor, size: int, up: int, down: int, pad0: int,
                 pad1: int) -> torch.Tensor:
    """``[out, size]`` matrix of the 1-D op: zero-insert ``up``, pad, correlate with ``taps``,
    keep every ``down``-th sample. Output m reads input i through tap
    ``up * i + pad0 - down * m`` (when that is a tap index)."""
    k = taps.numel()
    out = (size * up + pad0 + pad1 - k) // down + 1
    i = torch.arange(size, device=taps.device)[None, :]
    m = torch.arange(out, device=taps.device)[:, None]
    t = up * i + pad0 - down * m
    valid = (t >= 0) & (t < k)
    return torch.where(valid, taps[t.clamp(0, k - 1)], taps.new_zeros(()))


def _oriented(f: torch.Tensor, gain: float, flip_filter: bool) -> torch.Tensor:
    """The taps that torch's correlating ops need: ``f`` with its gain, flipped unless
    ``flip_filter`` (a correlation already)."""
    f = f * (gain ** (f.ndim / 2))
    return f if flip_filter else f.flip(list(range(f.ndim)))


def _matmul_plan(f: torch.Tensor, gain: float, flip_filter: bool, geometry: tuple,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(rows, columns)`` with ``upfirdn2d(x) == rows @ x @ columns`` for a separable filter
    (None otherwise); ``geometry`` is ``(h, w, ux, uy, dx, dy, x0, x1, y0, y1)``."""
    h, w, ux, uy, dx, dy, x0, x1, y0, y1 = geometry
    factors = _separable_factors(_oriented(f, gain, flip_filter).to(dtype))
    if factors is None:
        return None
    fy, fx = factors
    return _axis_matrix(fy, h, uy, dy, y0, y1), _axis_matrix(fx, w, ux, dx, x0, x1).T


@functools.lru_cache(maxsize=512)
def _cached_matmul_plan(taps: tuple[float, ...], shape: tuple[int, ...], gain: float,
                        flip_filter: bool, geometry: tuple, dtype: torch.dtype,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`_matmul_plan` of a constant filter, keyed by its values: built once per
    geometry instead of a dozen small ops in every call. Built outside inference mode, so a
    plan first made while sampling can be saved for backward later."""
    with torch.inference_mode(False), torch.no_grad():
        f = torch.tensor(taps, dtype=torch.float32, device=device).reshape(shape)
        return _matmul_plan(f, gain, flip_filter, geometry, dtype)


def _upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor, up=1, down=1, padding: Padding = 0,
                   flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Reference :func:`upfirdn2d` in plain, twice-differentiable PyTorch ops.

    A separable filter on a small image becomes one banded matrix per axis (two matrix
    products: far faster on a CPU than a depthwise convolution, and cheap to differentiate
    twice); otherwise zero insertion, padding, a depthwise conv2d and slicing.
    """
    if x.ndim != 4:
        raise ValueError(f'upfirdn2d expects [N, C, H, W] images, got shape {list(x.shape)}')
    if f.ndim not in (1, 2) or f.dtype != torch.float32:
        raise ValueError('the FIR filter must be a 1-D or 2-D float32 tensor (see setup_filter)')
    ux, uy = _parse_scaling(up)
    dx, dy = _parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    n, c, h, w = x.shape
    fw, fh = _get_filter_size(f)
    if (h * uy + y0 + y1 < fh) or (w * ux + x0 + x1 < fw):
        raise ValueError(f'upfirdn2d: the padded image ({list(x.shape)}, up {[ux, uy]}, '
                         f'padding {[x0, x1, y0, y1]}) is smaller than the filter {[fh, fw]}')

    if ux == uy == 1 and _is_channels_last(x):
        return _filter_channels_last(x, f, dx, dy, (x0, x1, y0, y1), flip_filter, gain)

    if max(h * uy, w * ux) <= MATMUL_MAX_SIZE:
        if f.requires_grad:  # a learned filter: build the matrices in the graph
            plan = _matmul_plan(f, gain, flip_filter, (h, w, ux, uy, dx, dy, x0, x1, y0, y1),
                                x.dtype)
        else:  # a fixed filter (always, in the networks): the same matrices every step
            plan = _cached_matmul_plan(tuple(f.flatten().tolist()), tuple(f.shape), gain,
                                       flip_filter, (h, w, ux, uy, dx, dy, x0, x1, y0, y1),
                                       x.dtype, x.device)
        if plan is not None:
            rows, columns = plan
            return rows @ (x @ columns)

    f = _oriented(f, gain, flip_filter).to(x.dtype)
    # Zero insertion: each pixel is followed by (u - 1) zeros along each axis.
    if ux > 1 or uy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, ux - 1, 0, 0, 0, uy - 1])
        x = x.reshape(n, c, h * uy, w * ux)

    # Padding first (positive parts), then cropping (negative parts).
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]

    weight = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 2:
        x = F.conv2d(x, weight, groups=c)
    else:
        x = F.conv2d(x, weight.unsqueeze(2), groups=c)
        x = F.conv2d(x, weight.unsqueeze(3), groups=c)

    # Decimation.
    if dx > 1 or dy > 1:
        x = x[:, :, ::dy, ::dx]
    return x


def _is_channels_last(x: torch.Tensor) -> bool:
    """True for a channels-last tensor (one that is not also plain contiguous)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _filter_channels_last(x: torch.Tensor, f: torch.Tensor, dx: int, dy: int,
                          padding: tuple[int, int, int, int], flip_filter: bool,
                          gain: float) -> torch.Tensor:
    """Pad, filter and decimate a channels-last image (no upsampling) with one depthwise
    convolution of stride ``down``, which oneDNN runs in that layout several times faster
    than the matrix products (which would need the image in NCHW and back)."""
    x0, x1, y0, y1 = padding
    c = x.shape[1]
    f = _oriented(f, gain, flip_filter).to(x.dtype)
    if f.ndim == 1:
        f = torch.outer(f, f)
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]
    weight = f[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, weight, stride=(dy, dx), groups=c)


def filter2d(x: torch.Tensor, f: torch.Tensor | None, padding: Padding = 0,
             flip_filter: bool = False, gain: float = 1, impl: str = 'cuda') -> torch.Tensor:
    """Filter ``x`` with ``f``; the output has the input's size plus ``padding``."""
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 2,
               padding: Padding = 0, flip_filter: bool = False, gain: float = 1,
               impl: str = 'cuda') -> torch.Tensor:
    """Upsample ``x`` by ``up`` with the interpolation filter ``f`` (DC gain kept at ``gain``).

    The output is ``up`` times the input size (plus ``padding``).
    """
    ux, uy = _parse_scaling(up)
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [x0 + (fw + ux - 1) // 2, x1 + (fw - ux) // 2,
         y0 + (fh + uy - 1) // 2, y1 + (fh - uy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * ux * uy,
                     impl=impl)


def downsample2d(x: torch.Tensor, f: torch.Tensor | None, down: int | Sequence[int] = 2,
                 padding: Padding = 0, flip_filter: bool = False, gain: float = 1,
                 impl: str = 'cuda') -> torch.Tensor:
    """Low-pass ``x`` with ``f`` and keep every ``down``-th pixel (output: input / down)."""
    dx, dy = _parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [x0 + (fw - dx + 1) // 2, x1 + (fw - dx) // 2,
         y0 + (fh - dy + 1) // 2, y1 + (fh - dy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
