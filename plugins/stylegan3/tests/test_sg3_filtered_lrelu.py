"""``filtered_lrelu`` (reference path) against a direct NumPy evaluation, and its gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genforce_stylegan3.filters import lowpass_filter
from genforce_stylegan3.ops import filtered_lrelu


def _direct(x, fu, fd, b, up, down, pad, gain, slope, clamp):
    """Definition, one pixel at a time: bias, zero insertion, pad/crop, full 2-D convolution
    with the (outer-product) up filter times up**2, lrelu*gain, clamp, 2-D convolution with
    the down filter, decimation."""
    fu2 = np.outer(fu, fu) if fu.ndim == 1 else fu
    fd2 = np.outer(fd, fd) if fd.ndim == 1 else fd
    x = x + b[None, :, None, None]
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    x0, x1, y0, y1 = pad
    big = np.zeros((n, c, h * up + max(y0, 0) + max(y1, 0), w * up + max(x0, 0) + max(x1, 0)))
    big[:, :, max(y0, 0):max(y0, 0) + h * up, max(x0, 0):max(x0, 0) + w * up] = z
    big = big[:, :, max(-y0, 0):big.shape[2] - max(-y1, 0), max(-x0, 0):big.shape[3] - max(-x1, 0)]

    def valid_conv(img, f):
        kh, kw = f.shape
        out = np.zeros(img.shape[:2] + (img.shape[2] - kh + 1, img.shape[3] - kw + 1))
        flipped = f[::-1, ::-1]
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = (img[:, :, i:i + kh, j:j + kw] * flipped).sum(axis=(2, 3))
        return out

    t = valid_conv(big, fu2 * up ** 2)
    t = np.where(t >= 0, t, t * slope) * gain
    if clamp is not None:
        t = np.clip(t, -clamp, clamp)
    return valid_conv(t, fd2)[:, :, ::down, ::down]


CASES = [  # up, down, padding, radial down filter, clamp
    (2, 2, (5, 4, 5, 4), False, None),
    (4, 2, (-2, 5, 4, -1), False, 0.7),
    (2, 2, (7, 6, 7, 6), True, None),
    (1, 1, (0, 0, 0, 0), False, None),
]


@pytest.mark.parametrize('up,down,pad,radial,clamp', CASES)
def test_matches_direct_definition(up, down, pad, radial, clamp):
    torch.manual_seed(0)
    fu = lowpass_filter(6 * up, 3, 4, 16 * up) if up > 1 else None
    fd = lowpass_filter(6 * down, 3.5, 3, 16 * up, radial=radial) if down > 1 else None
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    got = filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=pad, gain=1.3, slope=0.2,
                         clamp=clamp)
    one = np.ones(1)
    expected = _direct(x.numpy(), one if fu is None else fu.double().numpy(),
                       one if fd is None else fd.double().numpy(), b.numpy(), up, down, pad,
                       1.3, 0.2, clamp)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)
    if clamp is not None:  # the case is one where the clamp matters
        unclamped = filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=pad, gain=1.3)
        assert (unclamped - got).abs().max() > 0.1


@pytest.mark.parametrize('radial', [False, True])
def test_first_and_second_order_gradients(radial):
    torch.manual_seed(1)
    fu = lowpass_filter(4, 2, 2, 8)
    fd = lowpass_filter(4, 2, 2, 8, radial=radial)
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def op(x, b):
        return filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=(2, 1, 2, 1), gain=1.4,
                              slope=0.2, clamp=1.5)

    assert torch.autograd.gradcheck(op, (x, b))
    assert torch.autograd.gradgradcheck(op, (x, b))
    # The clamp is active somewhere, so its (zero) derivative is part of what was checked.
    unclamped = filtered_lrelu(x.detach(), fu, fd, b.detach(), up=2, down=2,
                               padding=(2, 1, 2, 1), gain=1.4, slope=0.2)
    assert not torch.allclose(unclamped, op(x, b).detach())


def test_bad_arguments_are_refused():
    x = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match='bias'):
        filtered_lrelu(x, b=torch.zeros(3))
    with pytest.raises(ValueError, match='up and down'):
        filtered_lrelu(x, up=0)
    with pytest.raises(ValueError, match='clamp'):
        filtered_lrelu(x, clamp=-1)
    with pytest.raises(ValueError, match=r'\[N, C, H, W\]'):
        filtered_lrelu(torch.zeros(2, 4, 4))
