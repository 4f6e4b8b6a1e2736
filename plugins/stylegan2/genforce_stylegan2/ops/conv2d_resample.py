"""2-D convolution combined with FIR up/downsampling (``conv2d_resample``).

Upsampling by ``up`` means: zero-insert, low-pass with ``f`` (gain ``up**2``), then convolve.
Downsampling by ``down`` means: convolve, low-pass with ``f``, then decimate. Rather than doing
literally that, each case picks an equivalent cheaper order:

* 1x1 kernel, downsampling: filter and decimate first, then the (cheap) 1x1 convolution.
* 1x1 kernel, upsampling: 1x1 convolution first, then upsample.
* downsampling: pad and filter, then a stride-``down`` convolution.
* upsampling: a stride-``up`` transposed convolution (zero insertion and convolution in one),
  then the FIR filter with the remaining padding.
* neither, symmetric non-negative padding: a plain convolution.
"""
from __future__ import annotations

import torch

from . import conv2d_gradfix
from .upfirdn2d import Padding, _get_filter_size, parse_padding, upfirdn2d


def _conv2d_wrapper(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding=0,
                    groups: int = 1, transpose: bool = False,
                    flip_weight: bool = True, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Convolution (``flip_weight=False``) or correlation (``True``), optionally transposed."""
    if not flip_weight:
        # torch's conv2d correlates; flipping the kernel makes it a true convolution.
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, bias, stride=stride, padding=padding,
                                               groups=groups)
    return conv2d_gradfix.conv2d(x, w, bias, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None,
                    up: int = 1, down: int = 1, padding: Padding = 0, groups: int = 1,
                    flip_weight: bool = True, flip_filter: bool = False,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """Convolve ``x`` with ``w`` and resample by ``up`` / ``down`` with the FIR filter ``f``,
    then add ``bias`` per output channel (inside the convolution where it is the last step).

    Args:
        x: Input ``[N, C_in, H, W]``.
        w: Weight ``[C_out, C_in // groups, kh, kw]``.
        f: Low-pass filter from ``upfirdn2d.setup_filter`` (None: box filter of size 1).
        up: Integer upsampling factor.
        down: Integer downsampling factor.
        padding: Padding of the upsampled image, ``p``, ``[px, py]`` or ``[x0, x1, y0, y1]``.
        groups: Convolution groups.
        flip_weight: True: correlation (``torch.nn.functional.conv2d``); False: convolution.
        flip_filter: False: convolve with ``f``; True: correlate.
        bias: ``[C_out]`` added to the output, or None.

    Returns:
        ``[N, C_out, H', W']``.
    """
    if x.ndim != 4 or w.ndim != 4 or x.dtype != w.dtype:
        raise ValueError('conv2d_resample expects 4-D x and w of one dtype, got '
                         f'{list(x.shape)} {x.dtype} and {list(w.shape)} {w.dtype}')
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f'up and down must be positive integers, got {up} and {down}')
    out_channels, in_channels_per_group, kh, kw = w.shape
    fw, fh = _get_filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)

    # Extra padding that keeps the filtered image centred.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    pad = [px0, px1, py0, py1]

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv2d_wrapper(x, w, groups=groups, flip_weight=flip_weight, bias=bias)

    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv2d_wrapper(x, w, groups=groups, flip_weight=flip_weight)
        x = upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
        return _add_bias(x, bias)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv2d_wrapper(x, w, stride=down, groups=groups, flip_weight=flip_weight,
                               bias=bias)

    if up > 1:
        # conv_transpose2d wants [C_in, C_out // groups, kh, kw].
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
            w = w.transpose(1, 2)
            w = w.reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        # The transposed convolution already adds (k - 1) on the left and (k - up) on the
        # right; hand what it can of the rest to it and the remainder to the FIR pass.
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv2d_wrapper(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                            flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                      flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return _add_bias(x, bias)

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d_wrapper(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight,
                               bias=bias)

    # General case (e.g. asymmetric or negative padding): spell every step out.
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=pad, gain=up ** 2,
                  flip_filter=flip_filter)
    if down > 1:
        x = _conv2d_wrapper(x, w, groups=groups, flip_weight=flip_weight)
        return _add_bias(upfirdn2d(x, f, down=down, flip_filter=flip_filter), bias)
    return _conv2d_wrapper(x, w, groups=groups, flip_weight=flip_weight, bias=bias)


def _add_bias(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x if bias is None else x + bias.to(x.dtype).reshape(1, -1, 1, 1)
