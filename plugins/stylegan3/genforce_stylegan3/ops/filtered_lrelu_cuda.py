"""CUDA path of :func:`genforce_stylegan3.ops.filtered_lrelu.filtered_lrelu`.

The kernel (``cuda/filtered_lrelu.cu``, per-block math in ``cuda/filtered_lrelu_tile.h``) is
built just in time by :mod:`genforce_core.ops` the first time :func:`is_available` or
:func:`filtered_lrelu` runs on a machine with a CUDA device.

Gradients. The forward kernel records, per upsampled sample, which derivative the nonlinearity
had there (``gain``, ``gain * slope`` or 0 where clamped) in a uint8 mask. Given that mask the
op is linear — upsample, multiply by the recorded derivative, downsample — and its adjoint is
the same kind of op with the flipped filters and the roles of up and down swapped
(:meth:`Geometry.transposed`). :class:`_MaskedFilter` is that linear op as an autograd Function
whose backward is itself, transposed, so the first derivative and every higher one run on the
kernel; the second derivative of leaky ReLU and clamp is zero, as in the reference's autograd.
(Chosen over recomputing the backward through the reference: no reference-sized temporaries
in the backward pass, and the same results to rounding.) The filters get no gradient.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from genforce_core.api import CudaExtension, kernel_mismatch

EXTENSION = 'genforce_stylegan3_filtered_lrelu'
_CUDA_DIR = Path(__file__).resolve().parent / 'cuda'
SOURCES = [_CUDA_DIR / 'filtered_lrelu_bindings.cpp', _CUDA_DIR / 'filtered_lrelu.cu']

_EXTENSION = CudaExtension(EXTENSION, SOURCES, self_check=lambda: self_check())
is_available = _EXTENSION.is_available
status = _EXTENSION.status

DTYPES = (torch.float32, torch.float64, torch.float16)
MODE_LRELU, MODE_MASKED = 0, 1


def _extension():
    ext = _EXTENSION.module()
    if ext is None:
        raise RuntimeError(f'filtered_lrelu CUDA kernel unavailable: {status()}')
    return ext


@dataclass(frozen=True)
class Geometry:
    """One pass of the kernel, per axis (``_x``/``_y``)::

        U[m] = up_gain * sum_k cu[k] z[m + k - pu],  z = x zero-inserted by ``up``, m < mid
        y[o] = sum_j cd[j] A[o * down + j - qd],      A = pointwise(U), 0 outside [0, mid)

    ``cu``/``cd`` are correlation taps, 1-D (both axes) or 2-D ``[h, w]``.
    """

    up: int
    down: int
    cu: torch.Tensor
    cd: torch.Tensor
    pu: tuple[int, int]  # (x, y)
    qd: tuple[int, int]
    in_hw: tuple[int, int]
    mid_hw: tuple[int, int]
    out_hw: tuple[int, int]
    up_gain: float

    def transposed(self) -> Geometry:
        """The adjoint: dA[m] = sum cd[j] dy[o] over o * down + j - qd = m is an upsampling by
        ``down`` with the flipped ``cd`` at offset ``len(cd) - 1 - qd``; dx likewise."""
        (cu_h, cu_w), (cd_h, cd_w) = _taps_hw(self.cu), _taps_hw(self.cd)
        return Geometry(
            up=self.down, down=self.up, cu=_flip(self.cd), cd=_flip(self.cu),
            pu=(cd_w - 1 - self.qd[0], cd_h - 1 - self.qd[1]),
            qd=(cu_w - 1 - self.pu[0], cu_h - 1 - self.pu[1]),
            in_hw=self.out_hw, mid_hw=self.mid_hw, out_hw=self.in_hw, up_gain=self.up_gain)

    def run(self, x: torch.Tensor, *, bias: torch.Tensor | None = None,
            mask: torch.Tensor | None = None, mult: tuple[float, ...] = (0, 0, 0, 0),
            act: tuple[float, float, float] | None = None,
            write_mask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The kernel on ``x`` ``[N, C, *in_hw]``: leaky ReLU when ``act`` is
        ``(gain, slope, clamp)`` (clamp < 0: none), else the ``mask`` step with ``mult``."""
        if tuple(x.shape[2:]) != self.in_hw:
            raise ValueError(f'filtered_lrelu: expected input size {self.in_hw}, got '
                             f'{list(x.shape[2:])}')
        empty = x.new_empty([0])
        gain, slope, clamp = act if act is not None else (1.0, 1.0, -1.0)
        y, mask_out = _extension().filtered_lrelu(
            x, self.cu, self.cd, empty if bias is None else bias,
            empty.to(torch.uint8) if mask is None else mask, self.up, self.down,
            self.pu[0], self.pu[1], self.qd[0], self.qd[1], *self.mid_hw, *self.out_hw,
            float(self.up_gain), MODE_LRELU if act is not None else MODE_MASKED,
            float(gain), float(slope), float(clamp), [float(m) for m in mult], write_mask)
        return y, mask_out


def _flip(f: torch.Tensor) -> torch.Tensor:
    return f.flip(list(range(f.ndim)))


def _taps_hw(f: torch.Tensor) -> tuple[int, int]:
    return (int(f.shape[0]), int(f.shape[-1]))


def forward_geometry(x_hw: tuple[int, int], fu: torch.Tensor | None, fd: torch.Tensor | None,
                     up: int, down: int, padding: tuple[int, int, int, int],
                     flip_filter: bool, device: torch.device | str = 'cpu') -> Geometry:
    """The geometry of ``filtered_lrelu(x, fu, fd, up=up, down=down, padding=padding)``:
    upfirdn2d's convention (zero insertion, pad ``[x0, x1, y0, y1]``, convolution with ``fu``
    times ``up ** 2``), then a valid convolution with ``fd`` keeping every ``down``-th sample."""
    one = torch.ones([1, 1], device=device)  # the kernel converts taps to its compute type
    fu = one if fu is None else fu.detach().to(device)
    fd = one if fd is None else fd.detach().to(device)
    for name, f in (('fu', fu), ('fd', fd)):
        if f.ndim not in (1, 2) or f.numel() == 0 or not f.is_floating_point():
            raise ValueError(f'filtered_lrelu: {name} must be a floating-point 1-D or 2-D '
                             f'filter, got {f.dtype} of shape {list(f.shape)}')
    if not flip_filter:  # correlation taps of a true convolution
        fu, fd = _flip(fu), _flip(fd)
    (fu_h, fu_w), (fd_h, fd_w) = _taps_hw(fu), _taps_hw(fd)
    x0, x1, y0, y1 = padding
    h, w = x_hw
    mid = (h * up + y0 + y1 - fu_h + 1, w * up + x0 + x1 - fu_w + 1)
    if min(mid[0] - fd_h, mid[1] - fd_w) < 0:
        raise ValueError(f'filtered_lrelu: the upsampled image ({list(mid)} after padding '
                         f'{list(padding)} and filter {[fu_h, fu_w]}) is smaller than the '
                         f'downsampling filter {[fd_h, fd_w]}')
    out = ((mid[0] - fd_h) // down + 1, (mid[1] - fd_w) // down + 1)
    return Geometry(up=up, down=down, cu=fu, cd=fd, pu=(x0, y0), qd=(0, 0), in_hw=(h, w),
                    mid_hw=mid, out_hw=out, up_gain=float(up * up))


@functools.lru_cache(maxsize=256)
def _fits(cu_shape: tuple[int, ...], cd_shape: tuple[int, ...], up: int, down: int,
          elem_size: int) -> bool:
    th, _, _ = _extension().tile_plan(cu_shape[0], cu_shape[-1], len(cu_shape) == 1,
                                      cd_shape[0], cd_shape[-1], len(cd_shape) == 1, up, down,
                                      1, 1, elem_size)
    return th > 0


def unsupported(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, up: int,
                down: int) -> str | None:
    """Why the kernel cannot take these arguments (the caller uses the reference), or None."""
    if x.dtype not in DTYPES:
        return f'the kernel takes float32/float64/float16, not {x.dtype}'
    if up > 64 or down > 64:
        return f'up/down factors above 64 ({up}, {down})'
    shapes = [(1,) if f is None else tuple(int(s) for s in f.shape) for f in (fu, fd)]
    if any(len(s) not in (1, 2) or min(s) < 1 for s in shapes):
        return None  # not the kernel's concern: the argument checks report it
    elem = 8 if x.dtype == torch.float64 else 4
    fits = max(max(s) for s in shapes) < 1 << 16 and \
        _fits(shapes[0], shapes[1], up, down, elem) and \
        _fits(shapes[1], shapes[0], down, up, elem)  # the backward's (transposed) geometry
    if not fits:
        return f'filters {shapes[0]} and {shapes[1]} too long for one block of the kernel'
    return None


class _MaskedFilter(torch.autograd.Function):
    """``Geometry.run`` in mask mode: linear in ``t``; its backward is itself, transposed."""

    @staticmethod
    def forward(ctx, t, mask, geom, mult):
        ctx.save_for_backward(mask)
        ctx.geom, ctx.mult = geom, mult
        return geom.run(t, mask=mask, mult=mult)[0]

    @staticmethod
    def backward(ctx, dy):
        (mask,) = ctx.saved_tensors
        dt = None
        if ctx.needs_input_grad[0]:
            dt = _MaskedFilter.apply(dy, mask, ctx.geom.transposed(), ctx.mult)
        return dt, None, None, None


class _FilteredLReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, geom, gain, slope, clamp):
        record = any(ctx.needs_input_grad[:2])
        y, mask = geom.run(x, bias=b, act=(gain, slope, -1.0 if clamp is None else clamp),
                           write_mask=record)
        ctx.save_for_backward(mask)
        ctx.geom = geom
        ctx.mult = (0.0, gain * slope, gain, 0.0)
        ctx.bias_dtype = None if b is None else b.dtype
        return y

    @staticmethod
    def backward(ctx, dy):
        (mask,) = ctx.saved_tensors
        dx = _MaskedFilter.apply(dy, mask, ctx.geom.transposed(), ctx.mult)
        db = None
        if ctx.needs_input_grad[1]:
            db = dx.sum(dim=[0, 2, 3]).to(ctx.bias_dtype)
        return (dx if ctx.needs_input_grad[0] else None), db, None, None, None, None


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None,
                   fd: torch.Tensor | None = None, b: torch.Tensor | None = None, up: int = 1,
                   down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False) -> torch.Tensor:
    """The CUDA op with the semantics of the reference (``padding`` already as
    ``(x0, x1, y0, y1)``; arguments checked by the caller)."""
    geom = forward_geometry((int(x.shape[2]), int(x.shape[3])), fu, fd, int(up), int(down),
                            padding, flip_filter, x.device)
    return _FilteredLReLU.apply(x, b, geom, float(gain), float(slope),
                                None if clamp is None else float(clamp))


def self_check(device: str = 'cuda') -> str | None:
    """The kernel against the reference (values, gradients for x and the bias) for a layer
    as the generator has them: 2x up with a separable filter, clamped leaky ReLU, 2x down with
    a radial filter; None when they agree."""
    from .filtered_lrelu import filtered_lrelu_reference

    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 10, 9], generator=g).to(device).requires_grad_(True)
    b = torch.randn([3], generator=g).to(device).requires_grad_(True)
    # Unit DC gain as in the generator; with these draws every pre-activation is at least
    # 1e-5 away from the slope change and the clamp, far beyond float32 rounding.
    fu, fd = (f / f.sum() for f in (torch.rand([8], generator=g), torch.rand([8, 8], generator=g)))
    fu, fd = fu.to(device), fd.to(device)
    kw = dict(up=2, down=2, padding=(5, 4, 5, 4), gain=2 ** 0.5, slope=0.2, clamp=1.5)
    return kernel_mismatch(lambda x, b, fu, fd: filtered_lrelu(x, fu, fd, b, **kw),
                           lambda x, b, fu, fd: filtered_lrelu_reference(x, fu, fd, b, **kw),
                           [x, b, fu, fd])
