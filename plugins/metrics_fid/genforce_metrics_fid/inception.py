"""The Inception-v3 variant of TensorFlow FID (graph ``inception-2015-12-05``) in PyTorch.

Written from the architecture of Szegedy et al. (2016) as it appears in the 2015 TF graph that
FID, KID and IS are defined on. It differs from torchvision's ImageNet Inception-v3 in ways that
change the numbers, so they are reproduced here:

* 1008 classes (not 1000); batch-norm epsilon 1e-3 with no learned scale in the TF graph;
* the average pools inside the blocks divide by the count of *valid* pixels (TF's ``SAME``
  average pooling), and the last block (``mixed_10``) max-pools its pool branch;
* the input: uint8 RGB, resized to 299x299 with TF-1's ``resize_bilinear`` (sample positions
  ``dst * in / out``, no half-pixel offset, clamped at the border), then ``(x - 128) / 128``.

The input path is chosen by the network's ``mode`` (:data:`MODES`), so one set of weights
reproduces each popular library; the layers are the same in every mode:

* ``nvidia`` (default): the above, as NVIDIA's StyleGAN2-ADA / StyleGAN3 metrics (and TF FID).
* ``pytorch_fid``: pytorch-fid's ``InceptionV3``: ``x / 255``, PyTorch's bilinear
  ``F.interpolate(..., align_corners=False)`` (half-pixel centres, no antialiasing) to 299,
  then ``2x - 1``.
* ``clean``: clean-fid's ``mode="clean"``: each channel resized to 299 as a float32 image by
  PIL's antialiased bicubic filter, clipped to [0, 255], then ``(x - 128) / 128`` into the
  same layers as ``nvidia``.

Module names follow torchvision / pytorch-fid (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean``, ``fc.weight``), so pytorch-fid's
``pt_inception-2015-12-05-*.pth`` loads as a plain state dict; :mod:`.weights` maps NVIDIA's
TorchScript ``inception-2015-12-05.pt`` (TF graph names) onto the same modules.
"""
from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
MODES = ('nvidia', 'pytorch_fid', 'clean')


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a one-line :class:`MetricError`."""
    if mode not in MODES:
        from .scores import MetricError
        raise MetricError(f'unknown FID mode {mode!r}: use nvidia (default, as the StyleGAN '
                          'papers), pytorch_fid (as pytorch-fid) or clean (as clean-fid)')
    return mode


class BasicConv2d(nn.Module):
    """Convolution (no bias) → batch norm (eps 1e-3) → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_valid(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average over the valid pixels only (TF ``SAME`` average pooling)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1→5x5 | 1x1→3x3→3x3 | avg-pool→1x1."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_valid(x)),
        ], 1)


class InceptionB(nn.Module):
    """35→17 reduction: 3x3/2 | 1x1→3x3→3x3/2 | max-pool/2."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 block with factorized 7x7 convolutions (1x7 and 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f'branch7x7dbl_{i}')(dbl)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            dbl,
            self.branch_pool(_avg_pool_valid(x)),
        ], 1)


class InceptionD(nn.Module):
    """17→8 reduction: 1x1→3x3/2 | 1x1→1x7→7x1→3x3/2 | max-pool/2."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7,
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs. ``max_pool``: the pool branch of the last
    block of the TF graph uses max pooling (kept for faithfulness)."""

    def __init__(self, in_channels: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_valid(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pool),
        ], 1)


def tf_resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """TF-1 ``resize_bilinear`` (``align_corners=False``, no half-pixel centers) of an NCHW
    float batch: output pixel ``j`` samples input position ``j * in / out``, the upper
    neighbour clamped to the last row/column. Computed as two small interpolation matrices,
    so it is exact and identical on every device."""
    _, _, height, width = x.shape
    if height == size and width == size:
        return x
    rows = _resize_matrix(height, size, x.dtype, x.device)
    cols = _resize_matrix(width, size, x.dtype, x.device)
    return torch.einsum('oh,nchw,pw->ncop', rows, x, cols)


def _resize_matrix(size_in: int, size_out: int, dtype, device) -> torch.Tensor:
    pos = torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)
    lo = pos.floor().long().clamp(max=size_in - 1)
    hi = (lo + 1).clamp(max=size_in - 1)
    frac = pos - lo.double()
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    index = torch.arange(size_out)
    matrix[index, lo] += 1 - frac
    matrix[index, hi] += frac
    return matrix.to(dtype=dtype, device=device)


def pil_bicubic_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """PIL's ``Image.resize((size, size), Image.BICUBIC)`` of each channel of an NCHW float32
    batch taken as a mode-``'F'`` image (clean-fid's "clean" resize, before its clipping).

    PIL resizes in two separable passes; each output pixel is a double-precision sum, tap by
    tap, of its input pixels times antialiased bicubic weights, stored as float32. The same
    sums in the same order here, batched on any device, so the result is PIL's bit for bit.
    The pass order is PIL's too (it changes the float32 rounding in between): horizontal
    first, unless the height shrinks by more than twice as many pixels as the width (recent
    Pillow; older ones always go horizontal first, which is the same for square images).
    """
    _, _, height, width = x.shape
    x = x.float()

    def horizontal(x):
        if width == size:
            return x
        return _resample_rows(x.transpose(2, 3).contiguous(), *_pil_bicubic_taps(width, size)
                              ).transpose(2, 3).contiguous()

    def vertical(x):
        return x if height == size else _resample_rows(x, *_pil_bicubic_taps(height, size))

    if height - size > 0 and height - size > 2 * (width - size):
        return horizontal(vertical(x))
    return vertical(horizontal(x))


def _resample_rows(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out[:, :, o] = sum_k x[:, :, index[o, k]] * weight[o, k]`` over the rows of NCHW
    ``x``: summed over ``k`` in order in float64 (a product, then a sum: no fused multiply-add,
    as PIL), rounded to float32. Padding taps have weight 0 and add exactly nothing."""
    index, weight = index.to(x.device), weight.to(x.device)
    x = x.double()
    out = torch.zeros(*x.shape[:2], len(index), x.shape[3], dtype=torch.float64,
                      device=x.device)
    for k in range(index.shape[1]):
        out += x.index_select(2, index[:, k]).mul_(weight[:, k, None])
    return out.float()


def _pil_bicubic(x: float) -> float:
    """PIL's bicubic kernel (a = -0.5), the same float operations in the same order."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@functools.lru_cache(maxsize=32)
def _pil_bicubic_taps(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's ``precompute_coeffs`` for bicubic: ``(index, weight)`` ``[size_out, taps]``
    (int64, float64). The kernel is widened by the scale when downsizing (antialiasing); an
    output pixel's taps are the input pixels within the support around its centre, with
    weights normalized to sum 1 (a sequential sum, as PIL's)."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    inv = 1.0 / filterscale
    taps = int(math.ceil(support)) * 2 + 1
    index = torch.zeros(size_out, taps, dtype=torch.int64)
    weight = torch.zeros(size_out, taps, dtype=torch.float64)
    for out in range(size_out):
        center = (out + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)  # int() truncates, as C's cast
        hi = min(int(center + support + 0.5), size_in)
        weights = [_pil_bicubic((i - center + 0.5) * inv) for i in range(lo, hi)]
        total = 0.0
        for w in weights:  # sequential (numpy's pairwise sum would round differently)
            total += w
        if total != 0.0:
            weights = [w / total for w in weights]
        index[out, :hi - lo] = torch.arange(lo, hi)
        weight[out, :hi - lo] = torch.tensor(weights, dtype=torch.float64)
    return index, weight


class InceptionV3FID(nn.Module):
    """Feature extractor of FID / KID / IS.

    ``forward(img)`` takes uint8 (or float in [0, 255]) RGB images ``[N, 3, H, W]`` of any
    size and returns ``(features [N, 2048], logits [N, 1008])``; the logits are computed
    without the output bias, as the Inception Score reference does (``fc.bias`` is kept for
    completeness and :meth:`logits_with_bias`). ``mode`` picks the input path (see the module
    doc); :meth:`with_mode` gives the same weights with another one.
    """

    def __init__(self, mode: str = 'nvidia'):
        super().__init__()
        self.mode = check_mode(mode)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.input_size = INPUT_SIZE  # tests may shrink it: every layer works from ~75 px
        self.eval().requires_grad_(False)

    def with_mode(self, mode: str) -> InceptionV3FID:
        """This network with the input path of ``mode``: itself if it has that mode, else a
        shallow copy that shares every layer (and so every weight) with it."""
        if check_mode(mode) == self.mode:
            return self
        view = copy.copy(self)  # a new attribute dict; the submodules are the same objects
        view.mode = mode
        return view

    def preprocess(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, C, H, W]`` → the network's input (resize and scaling of ``self.mode``)."""
        if img.ndim != 4 or img.shape[1] not in (1, 3):
            raise ValueError(f'expected images [N, 3, H, W] (or 1 channel), got '
                             f'{tuple(img.shape)}')
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        size = self.input_size
        if self.mode == 'pytorch_fid':  # torchvision's ToTensor, then pytorch-fid's forward
            x = img.to(torch.float32).div(255)
            x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
            return (2 * x - 1).to(self.fc.weight.dtype)
        if self.mode == 'clean':  # clean-fid's resizer, then its TorchScript wrapper
            x = pil_bicubic_resize(img.to(torch.float32), size).clamp(0, 255)
            return ((x - 128) / 128).to(self.fc.weight.dtype)
        x = img.to(self.fc.weight.dtype)
        x = tf_resize_bilinear(x, self.input_size)
        return (x - 128) / 128

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pool-3 features (2048) of preprocessed input."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b', 'Mixed_6c',
                     'Mixed_6d', 'Mixed_6e', 'Mixed_7a', 'Mixed_7b', 'Mixed_7c'):
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))

    def logits_with_bias(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(self.preprocess(img)).float()
        logits = F.linear(feats, self.fc.weight.float())
        return feats, logits
