"""``filtered_lrelu``: the alias-free nonlinearity of StyleGAN3 (Karras et al. 2021, sec. 3.2).

A pointwise nonlinearity creates frequencies above the signal's band limit. To keep them from
aliasing, the signal is first upsampled (so the new frequencies fit under the temporary Nyquist
frequency), the nonlinearity is applied, and the result is low-pass filtered and downsampled to
the output rate. Per channel::

    y = down(lowpass_d(clamp(gain * lrelu(up(lowpass_u(x + b)), slope))))

:func:`filtered_lrelu_reference` is plain PyTorch: ``upfirdn2d`` (of the StyleGAN2 plugin) for
the upsampling pass, a strided depthwise convolution for the downsampling pass, and autograd, so
its first and second derivatives are those of the composition. :func:`filtered_lrelu` follows
every plugin's op convention: with ``impl='cuda'`` a CUDA tensor takes the fused kernel of
:mod:`.filtered_lrelu_cuda` (float32/float64/float16; gradients of every order, the same as the
reference's) when it builds, outside :func:`genforce_core.api.reference_ops`; otherwise, and
with ``impl='ref'``, the reference runs (with one warning when the kernel could not be used).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from genforce_core.api import reference_forced, warn_reference_once
from genforce_stylegan2.ops.upfirdn2d import parse_padding, upfirdn2d


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None,
                   fd: torch.Tensor | None = None, b: torch.Tensor | None = None, up: int = 1,
                   down: int = 1, padding: int | Sequence[int] = 0, gain: float = 2 ** 0.5,
                   slope: float = 0.2, clamp: float | None = None, flip_filter: bool = False,
                   impl: str = 'cuda') -> torch.Tensor:
    """Bias, upsample, leaky ReLU with gain and clamp, downsample.

    Args:
        x: Images ``[N, C, H, W]``.
        fu: Upsampling filter (1-D separable or 2-D), unit DC gain; None for no filtering.
        fd: Downsampling filter (1-D separable or 2-D), unit DC gain; None for no filtering.
        b: Bias ``[C]`` added before upsampling, or None.
        up: Integer upsampling factor (zero insertion; the filter is scaled by ``up ** 2`` so
            the DC gain stays one).
        down: Integer downsampling factor (decimation after ``fd``).
        padding: Padding of the zero-inserted signal, ``p``, ``[px, py]`` or
            ``[x0, x1, y0, y1]``; negative values crop.
        gain: Multiplier after the leaky ReLU.
        slope: Slope of the leaky ReLU for negative inputs (1: linear).
        clamp: Clamp the result of the nonlinearity to ``[-clamp, clamp]`` (None: no clamp).
        flip_filter: Correlate instead of convolve (irrelevant for symmetric filters).
        impl: ``'cuda'``: the CUDA kernel for CUDA tensors when it is available (the reference
            otherwise); ``'ref'``: the reference implementation.

    Returns:
        ``[N, C, (H * up + y0 + y1 - fu_h + 1 - fd_h) // down + 1, ...]`` (x likewise).
    """
    _check_arguments(x, b, up, down, clamp)
    if impl not in ('cuda', 'ref'):
        raise ValueError(f"impl must be 'cuda' or 'ref', got {impl!r}")
    if impl == 'cuda' and x.is_cuda and not reference_forced():
        from . import filtered_lrelu_cuda

        if filtered_lrelu_cuda.is_available():
            why = filtered_lrelu_cuda.unsupported(x, fu, fd, int(up), int(down))
            if why is None:
                return filtered_lrelu_cuda.filtered_lrelu(
                    x, fu, fd, b, up=int(up), down=int(down), padding=parse_padding(padding),
                    gain=gain, slope=slope, clamp=clamp, flip_filter=flip_filter)
            warn_reference_once('filtered_lrelu', why)
        else:
            warn_reference_once('filtered_lrelu', f'CUDA kernel: {filtered_lrelu_cuda.status()}')
    return filtered_lrelu_reference(x, fu, fd, b, up=up, down=down, padding=padding, gain=gain,
                                    slope=slope, clamp=clamp, flip_filter=flip_filter)


def _check_arguments(x: torch.Tensor, b: torch.Tensor | None, up: int, down: int,
                     clamp: float | None) -> None:
    if x.ndim != 4:
        raise ValueError(f'filtered_lrelu expects [N, C, H, W], got shape {list(x.shape)}')
    if int(up) != up or int(down) != down or up < 1 or down < 1:
        raise ValueError(f'up and down must be integers >= 1, got {up}, {down}')
    if clamp is not None and clamp < 0:
        raise ValueError(f'clamp must be >= 0 or None, got {clamp}')
    if b is not None and b.shape != (x.shape[1],):
        raise ValueError(f'bias must have shape [{x.shape[1]}], got {list(b.shape)}')


def filtered_lrelu_reference(x: torch.Tensor, fu: torch.Tensor | None = None,
                             fd: torch.Tensor | None = None, b: torch.Tensor | None = None,
                             up: int = 1, down: int = 1, padding: int | Sequence[int] = 0,
                             gain: float = 2 ** 0.5, slope: float = 0.2,
                             clamp: float | None = None, flip_filter: bool = False
                             ) -> torch.Tensor:
    """:func:`filtered_lrelu` in plain PyTorch (any device; differentiable to every order)."""
    _check_arguments(x, b, up, down, clamp)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = upfirdn2d(x, _as_dtype(fu, x), up=int(up), padding=padding, gain=up ** 2,
                  flip_filter=flip_filter, impl='ref')
    x = F.leaky_relu(x, slope) if slope != 1 else x
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return _filter_and_decimate(x, fd, int(down), flip_filter)


def _filter_and_decimate(x: torch.Tensor, f: torch.Tensor | None, down: int,
                         flip_filter: bool) -> torch.Tensor:
    """Valid convolution with ``f`` keeping every ``down``-th output: a strided depthwise
    convolution, so the discarded outputs are never computed."""
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    c = x.shape[1]
    f = f.to(dtype=x.dtype, device=x.device)
    if not flip_filter:  # conv2d correlates; flipping makes it a convolution
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = f[None, None].expand(c, 1, *f.shape)
        return F.conv2d(x, weight, stride=down, groups=c)
    weight = f[None, None].expand(c, 1, f.shape[0])
    x = F.conv2d(x, weight.unsqueeze(2), stride=(1, down), groups=c)
    return F.conv2d(x, weight.unsqueeze(3), stride=(down, 1), groups=c)


def _as_dtype(f: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """The filter on x's device; upfirdn2d takes float32 filters and casts them to x's dtype."""
    return None if f is None else f.to(dtype=torch.float32, device=x.device)
