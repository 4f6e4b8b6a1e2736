"""Geometric transforms of images for the equivariance metrics: integer shifts, and affine
warps (fractional shifts, rotations) by windowed-sinc resampling, each with the mask of the
output pixels that have a valid source.

Coordinates follow StyleGAN3's input transform (``synthesis.input.transform``): a 3x3 matrix
``M`` whose generated image shows the content of the untransformed one at ``M @ [x, y, 1]``,
with ``x`` along the width and ``y`` down the height, the image centre at 0 and one unit =
the image width. So ``warp(img, M)`` resamples ``img`` at ``M p`` for every pixel centre ``p``:
a generator that is equivariant to ``M`` makes ``G_M ≈ warp(G_I, M)``.

The ideal operator is band-limited (sinc) resampling: reconstruct the input from its samples
(low-pass to the input grid's Nyquist frequency), move it, low-pass to the output grid's
Nyquist frequency and sample. :func:`warp` approximates it on a grid ``UP`` = 4 times finer:
upsampling with a Lanczos-windowed sinc (``a`` = 3 input pixels either side), bicubic
resampling of the 4x oversampled image at the moved positions (accurate there: its content
lies below a quarter of the fine grid's Nyquist frequency), then the same Lanczos-windowed sinc
low-pass at the output's Nyquist frequency and decimation by 4. An output pixel is valid when
every input sample that reaches it through the three steps exists (is inside the image and,
for a chained warp, was itself valid).
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

UP = 4  # oversampling of the intermediate grid
LANCZOS_A = 3  # window half-width, in input (and output) pixels
BICUBIC_RADIUS = 2  # fine pixels on each side that bicubic interpolation reads


def translation_matrix(tx: float, ty: float) -> torch.Tensor:
    """The input transform that moves the content by ``(tx, ty)`` image widths."""
    m = torch.eye(3, dtype=torch.float64)
    m[0, 2], m[1, 2] = -tx, -ty
    return m


def rotation_matrix(angle: float) -> torch.Tensor:
    """The input transform ``[[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]`` of ``angle``
    radians (about the image centre; whichever way that turns the picture, :func:`warp` with
    the same matrix turns the reference the same way)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def integer_shift(img: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``img`` ``[N, C, H, W]`` moved by ``dx`` columns and ``dy`` rows (``out[y, x] =
    img[y - dy, x - dx]``), and the ``[H, W]`` mask of the pixels that have a source."""
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    mask = torch.zeros(h, w, dtype=torch.bool, device=img.device)
    if abs(dx) < w and abs(dy) < h:
        out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            img[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        mask[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = True
    return out, mask


def _sinc(x: torch.Tensor) -> torch.Tensor:
    return torch.sinc(x)  # sin(pi x) / (pi x)


def _lanczos_taps(a: int = LANCZOS_A, up: int = UP) -> torch.Tensor:
    """Taps ``k = -a*up .. a*up`` of sinc(k/up) times the Lanczos window sinc(k/(a*up)):
    interpolation by ``up`` and, divided by ``up``, the low-pass at 1/``up`` of the Nyquist
    frequency (float64)."""
    k = torch.arange(-a * up, a * up + 1, dtype=torch.float64) / up
    return _sinc(k) * _sinc(k / a)


def _interpolation_taps() -> torch.Tensor:
    """Upsampling taps, each of the ``UP`` phases normalised to a DC gain of 1."""
    taps = _lanczos_taps()
    phase = torch.arange(len(taps)) % UP
    sums = torch.zeros(UP, dtype=taps.dtype).index_add_(0, phase, taps)
    return taps / sums[phase]


def _lowpass_taps() -> torch.Tensor:
    taps = _lanczos_taps()
    return taps / taps.sum()


def _separable(x: torch.Tensor, taps: torch.Tensor, op, stride: int) -> torch.Tensor:
    """``op`` (conv2d / conv_transpose2d) with ``taps`` along the width then the height of
    ``x`` ``[N, C, H, W]``, channels independent."""
    n, c = x.shape[:2]
    taps = taps.to(x)
    y = x.reshape(n * c, 1, *x.shape[2:])
    y = op(y, taps.view(1, 1, 1, -1), stride=(1, stride))
    y = op(y, taps.view(1, 1, -1, 1), stride=(stride, 1))
    return y.reshape(n, c, *y.shape[2:])


def _upsample(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Fine grid ``[.., UP*(H-1)+1, UP*(W-1)+1]``: fine sample ``j`` sits at input position
    ``j / UP`` (input pixel ``i`` at ``j = UP*i``); outside the image counts as zero."""
    h, w = x.shape[-2:]
    y = _separable(x, taps, F.conv_transpose2d, UP)
    r = (len(taps) - 1) // 2
    return y[..., r:r + UP * (h - 1) + 1, r:r + UP * (w - 1) + 1]


def _source_positions(m: torch.Tensor, out_size: tuple[int, int], in_size: tuple[int, int],
                      margin: int) -> torch.Tensor:
    """``grid_sample`` coordinates (align_corners=True, on the fine input grid) of the fine
    output positions ``-margin/UP .. (size-1) + margin/UP`` moved by ``m``; ``[Ho', Wo', 2]``."""
    (ho, wo), (hi, wi) = out_size, in_size
    unit = float(wi)  # one unit of the transform = the image width
    ys = (torch.arange(-margin, UP * (ho - 1) + margin + 1, dtype=torch.float64) / UP
          - (ho - 1) / 2) / unit
    xs = (torch.arange(-margin, UP * (wo - 1) + margin + 1, dtype=torch.float64) / UP
          - (wo - 1) / 2) / unit
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    m = m.to(torch.float64).cpu()
    sx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
    sy = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
    # input pixel index = coordinate * unit + (size - 1) / 2; fine index = UP * that
    fx = (sx * unit + (wi - 1) / 2) * UP
    fy = (sy * unit + (hi - 1) / 2) * UP
    return torch.stack([2 * fx / (UP * (wi - 1)) - 1, 2 * fy / (UP * (hi - 1)) - 1], dim=-1)


def warp(img: torch.Tensor, m: torch.Tensor, valid: torch.Tensor | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``img`` ``[N, C, H, W]`` resampled at ``m @ [x, y, 1]`` (see the module doc), and the
    ``[H, W]`` bool mask of output pixels whose every source sample exists and is ``valid``
    (an ``[H, W]`` mask of ``img``; default: all pixels)."""
    if img.ndim != 4 or min(img.shape[-2:]) < 2:
        raise ValueError(f'warp needs images [N, C, H, W] of at least 2x2, got '
                         f'{tuple(img.shape)}')
    size = tuple(img.shape[-2:])
    x = img.float()
    up_taps, low_taps = _interpolation_taps(), _lowpass_taps()
    margin = (len(low_taps) - 1) // 2  # fine samples the decimation reads beyond the image
    grid = _source_positions(m, size, size, margin).to(device=x.device, dtype=x.dtype)

    fine = _upsample(x, up_taps)
    fine = F.grid_sample(fine, grid.expand(len(x), *grid.shape), mode='bicubic',
                         padding_mode='zeros', align_corners=True)
    out = _separable(fine, low_taps, F.conv2d, UP)

    # Validity through the same steps: a missing input sample spoils every output it reaches.
    missing = torch.zeros(1, 1, *size, dtype=x.dtype, device=x.device)
    if valid is not None:
        missing = 1 - valid.to(missing).view(1, 1, *size)
    pad = LANCZOS_A  # input samples outside the image are missing too
    missing = F.pad(missing, (pad, pad, pad, pad), value=1.0)
    reach = (up_taps.abs() > 1e-9).to(x.dtype)  # taps at whole input pixels are ~0
    fine_missing = _upsample(missing, reach)[..., UP * pad:-UP * pad or None,
                                             UP * pad:-UP * pad or None]
    fine_missing = F.max_pool2d(fine_missing, 2 * BICUBIC_RADIUS + 1, stride=1,
                                padding=BICUBIC_RADIUS)
    fine_valid = F.grid_sample((fine_missing == 0).to(x.dtype), grid[None], mode='nearest',
                               padding_mode='zeros', align_corners=True)
    out_missing = _separable(1 - fine_valid, (low_taps.abs() > 1e-9).to(x.dtype), F.conv2d,
                             UP)
    return out.to(img.dtype), out_missing[0, 0] == 0


def masked_squared_error(ref: torch.Tensor, img: torch.Tensor, mask: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the sum of squared differences over the channels of the ``mask`` pixels,
    and how many values that sum holds (float64 ``[N]`` each)."""
    sq = (ref.double() - img.double()).square() * mask.to(torch.float64)
    count = mask.sum().double() * ref.shape[1]
    return sq.sum(dim=(1, 2, 3)), count.expand(len(ref)).clone()


def psnr(sum_squared: float, count: float, peak: float = 2.0) -> float:
    """PSNR in dB of the mean squared error ``sum_squared / count`` for signals of range
    ``peak`` (2 for images in [-1, 1]); infinite for no error."""
    if count <= 0:
        raise ValueError('PSNR of no values')
    mse = sum_squared / count
    return math.inf if mse == 0 else 20 * math.log10(peak) - 10 * math.log10(mse)
