"""The ADA augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", appendix B), differentiable to any order w.r.t. the images.

Each transform is applied to each image independently with probability ``p * multiplier``
(``p`` is the buffer the adaptive heuristic tunes); its parameters come from the paper's
distributions scaled by a strength. Stages, in order:

1. pixel blitting: x-flip, rotation by a multiple of 90 degrees, integer translation, done
   exactly by gathering pixels (reflected at the borders);
2. general geometry: isotropic scaling, rotation (before and after anisotropic scaling, each
   with probability ``1 - sqrt(1 - p)``), anisotropic scaling, fractional translation. They
   compose into one 3x3 matrix per image; the image is padded by reflection, up-sampled 2x
   with an orthogonal wavelet (symlet) low-pass, sampled bilinearly and low-passed and
   down-sampled back, so no aliasing leaks in;
3. colour: brightness, contrast, luma flip, hue rotation, saturation, composed into a 4x4
   matrix per image;
4. image-space filtering: random gains for four octave frequency bands;
5. additive RGB noise;
6. cutout.

The expensive stages (geometry, filtering) only process the images they change, so a small ``p``
costs little.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genforce_core.api import MODELS

from . import matrices as M
from .filters import band_filters, symlet_lowpass
from .grid_sample import grid_sample
from .resample import downsample2x_valid, upsample2x

BLIT = dict(xflip=1, rotate90=1, xint=1)
GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
PRESETS: dict[str, dict[str, float]] = {
    'blit': BLIT, 'geom': GEOM, 'color': COLOR, 'filter': dict(imgfilter=1),
    'noise': dict(noise=1), 'cutout': dict(cutout=1),
    'bg': {**BLIT, **GEOM},
    'bgc': {**BLIT, **GEOM, **COLOR},
    'bgcf': {**BLIT, **GEOM, **COLOR, 'imgfilter': 1},
    'bgcfn': {**BLIT, **GEOM, **COLOR, 'imgfilter': 1, 'noise': 1},
    'bgcfnc': {**BLIT, **GEOM, **COLOR, 'imgfilter': 1, 'noise': 1, 'cutout': 1},
}
MULTIPLIERS = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness',
               'contrast', 'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout')
# Strengths: the paper's defaults.
STRENGTHS = dict(
    xint_max=0.125,       # integer translation: uniform, fraction of the image size
    scale_std=0.2,        # isotropic scaling: log2-normal
    rotate_max=1.0,       # arbitrary rotation: uniform, fraction of a half turn
    aniso_std=0.2,        # anisotropic scaling: log2-normal
    xfrac_std=0.125,      # fractional translation: normal, fraction of the image size
    brightness_std=0.2,   # brightness: normal offset
    contrast_std=0.5,     # contrast: log2-normal
    hue_max=1.0,          # hue rotation: uniform, fraction of a half turn
    saturation_std=1.0,   # saturation: log2-normal
    imgfilter_std=1.0,    # band gains: log2-normal
    noise_std=0.1,        # additive noise: half-normal standard deviation
    cutout_size=0.5,      # cutout: side of the square, fraction of the image size
)
# Expected share of the image power in each band (most of it is in the lowest band of a
# natural image's ~1/f spectrum); the band gains are normalised to keep it.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def _apply_all(images: torch.Tensor, mask: torch.Tensor, fn) -> torch.Tensor:
    """``fn(images)`` if any image changes (for cheap stages whose parameters are the identity
    where ``mask`` is False: selecting the subset would cost more than the stage)."""
    return fn(images) if bool(mask.any()) else images


def _apply_subset(images: torch.Tensor, mask: torch.Tensor, fn) -> torch.Tensor:
    """``fn(images[idx], idx)`` for the images where ``mask`` holds; the rest unchanged."""
    idx = mask.nonzero()[:, 0]
    if idx.numel() == 0:
        return images
    if idx.numel() == images.shape[0]:
        return fn(images, idx)
    return images.index_copy(0, idx, fn(images[idx], idx))


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Mirror integer indices into ``[0, size)`` (edge pixel not repeated)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


@MODELS.register_module()
class AugmentPipe(nn.Module):
    """ADA's augmentation pipeline.

    Args:
        preset: 'blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc' (the paper's
            default), 'bgcf', 'bgcfn', 'bgcfnc', or None (everything off).
        p: Initial augmentation probability (a buffer: saved and restored with checkpoints).
        impl: Grid sampler: 'native' (PyTorch's kernels with an exact double backward) or 'ref'.
        **kwargs: Per-transform probability multipliers (``xflip=1``, ``rotate=0.5``, ...;
            see :data:`MULTIPLIERS`) overriding the preset, and strengths
            (:data:`STRENGTHS`).
    """

    def __init__(self, preset: str | None = 'bgc', p: float = 0.0, impl: str = 'native',
                 **kwargs: float):
        super().__init__()
        if preset is not None and preset not in PRESETS:
            raise ValueError(f'unknown augmentation preset {preset!r}; choose one of '
                             f'{", ".join(PRESETS)}')
        unknown = sorted(set(kwargs) - set(MULTIPLIERS) - set(STRENGTHS))
        if unknown:
            raise ValueError(f'unknown AugmentPipe arguments {unknown}; multipliers: '
                             f'{", ".join(MULTIPLIERS)}; strengths: {", ".join(STRENGTHS)}')
        if not 0 <= p <= 1:
            raise ValueError(f'augmentation probability p must be in [0, 1], got {p}')
        self.preset = preset
        self.impl = impl
        base = PRESETS.get(preset, {}) if preset else {}
        self.multipliers = {k: float(kwargs.get(k, base.get(k, 0))) for k in MULTIPLIERS}
        self.strengths = {k: float(kwargs.get(k, v)) for k, v in STRENGTHS.items()}
        self.register_buffer('p', torch.tensor(float(p)))
        self.register_buffer('wavelet', torch.tensor(symlet_lowpass(6)) / math.sqrt(2),
                             persistent=False)
        taps = torch.arange(self.wavelet.numel(), dtype=torch.float64)
        centroid = float((taps * self.wavelet).sum() / self.wavelet.sum())
        self.delay = centroid - (self.wavelet.numel() - 1) / 2

    def extra_repr(self) -> str:
        on = [k for k, v in self.multipliers.items() if v > 0]
        return f'preset={self.preset!r}, p={float(self.p):.4f}, transforms={on}'

    # -- sampling helpers ---------------------------------------------------------------------
    def _chance(self, name: str, n: int, device: torch.device,
                prob: torch.Tensor | None = None) -> torch.Tensor:
        """Per-image mask: apply transform ``name`` (probability ``p * multiplier``)."""
        if prob is None:
            prob = self.p * self.multipliers[name]
        return torch.rand(n, device=device) < prob

    def _on(self, *names: str) -> bool:
        return any(self.multipliers[k] > 0 for k in names)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment a batch ``[N, C, H, W]`` of images in [-1, 1]."""
        if images.ndim != 4:
            raise ValueError(f'AugmentPipe expects [N, C, H, W] images, got {list(images.shape)}')
        if not any(v > 0 for v in self.multipliers.values()) or float(self.p) <= 0:
            return images
        # The transforms are float32 (or float64) math: matrices, filters, sampling grids; also
        # under autocast (--amp), where the generator's images may come as float16.
        dtype = images.dtype
        with torch.autocast(images.device.type, enabled=False):
            if dtype in (torch.float16, torch.bfloat16):
                images = images.float()
            return self._augment(images).to(dtype)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        if self._on(*BLIT):
            images = self._blit(images)
        if self._on(*GEOM):
            images = self._geometry(images)
        if self._on(*COLOR):
            images = self._color(images)
        if self._on('imgfilter'):
            images = self._filter(images)
        if self._on('noise'):
            images = self._noise(images)
        if self._on('cutout'):
            images = self._cutout(images)
        return images

    # -- 1. pixel blitting -----------------------------------------------------------------
    def _blit(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dev = images.device
        flip = self._chance('xflip', n, dev) & (torch.randint(0, 2, [n], device=dev) == 1)
        rot = torch.randint(0, 4, [n], device=dev) * self._chance('rotate90', n, dev)
        if self.multipliers['rotate90'] > 0 and h != w:
            raise ValueError(f'rotate90 needs square images, got {h}x{w}')
        t_on = self._chance('xint', n, dev)
        amax = self.strengths['xint_max']
        tx = ((torch.rand(n, device=dev) * 2 - 1) * amax * w).round() * t_on
        ty = ((torch.rand(n, device=dev) * 2 - 1) * amax * h).round() * t_on
        changed = flip | (rot != 0) | (tx != 0) | (ty != 0)
        return _apply_all(images, changed, lambda x: self.blit(x, flip, rot, tx, ty))

    @staticmethod
    def blit(images: torch.Tensor, flip: torch.Tensor, rot: torch.Tensor, tx: torch.Tensor,
             ty: torch.Tensor) -> torch.Tensor:
        """Exact pixel blit: x-flip (bool), ``rot`` quarter turns (``torch.rot90`` over
        dims (2, 3)), then translation by integer pixels ``(tx, ty)``; reflection at borders.
        """
        n, c, h, w = images.shape
        dev = images.device
        # Output pixel centres in doubled, centred coordinates (odd integers for even sizes).
        v, u = torch.meshgrid(torch.arange(h, device=dev) * 2 + 1 - h,
                              torch.arange(w, device=dev) * 2 + 1 - w, indexing='ij')
        u = u[None].expand(n, h, w) - 2 * tx.long()[:, None, None]
        v = v[None].expand(n, h, w) - 2 * ty.long()[:, None, None]
        # Undo the rotation: torch.rot90 maps out[i, j] = in[j, w - 1 - i] per quarter turn,
        # i.e. (u, v) in the output comes from (-v, u) in the input.
        k = rot.long()[:, None, None] % 4
        for turn in range(1, 4):
            sel = k >= turn
            u, v = torch.where(sel, -v, u), torch.where(sel, u, v)
        u = torch.where(flip[:, None, None], -u, u)
        col = _reflect((u + w - 1) // 2, w)
        row = _reflect((v + h - 1) // 2, h)
        index = (row * w + col).reshape(n, 1, h * w).expand(n, c, h * w)
        return images.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)

    # -- 2. general geometric transforms ---------------------------------------------------
    def _geometry(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dev = images.device
        s = self.strengths
        G = torch.eye(3, device=dev).repeat(n, 1, 1)  # output -> input coordinates
        changed = torch.zeros(n, dtype=torch.bool, device=dev)

        def then(mask: torch.Tensor, inverse: torch.Tensor) -> None:
            nonlocal G, changed
            G = torch.where(mask[:, None, None], G @ inverse, G)
            changed = changed | mask

        on = self._chance('scale', n, dev)
        scale = torch.exp2(torch.randn(n, device=dev) * s['scale_std'])
        then(on, M.scale2d(1 / scale, 1 / scale))
        # Rotation before and after the anisotropic scaling, each with probability p_rot, so
        # that at least one of them happens with probability p * multiplier.
        p_rot = 1 - torch.sqrt((1 - self.p * self.multipliers['rotate']).clamp(0, 1))

        def rotation() -> None:
            theta = (torch.rand(n, device=dev) * 2 - 1) * math.pi * s['rotate_max']
            then(self._chance('rotate', n, dev, p_rot), M.rotate2d(-theta))

        rotation()
        on = self._chance('aniso', n, dev)
        aniso = torch.exp2(torch.randn(n, device=dev) * s['aniso_std'])
        then(on, M.scale2d(1 / aniso, aniso))
        rotation()
        on = self._chance('xfrac', n, dev)
        tx = torch.randn(n, device=dev) * s['xfrac_std'] * w
        ty = torch.randn(n, device=dev) * s['xfrac_std'] * h
        then(on, M.translate2d(-tx, -ty))
        return _apply_subset(images, changed, lambda x, i: self.transform(x, G[i]))

    def transform(self, images: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Resample ``images`` with the per-image matrices ``G`` ``[n, 3, 3]``, which map output
        to input positions in pixels, centred on the image (x right, y down).

        Reflect-pad, up-sample 2x with the wavelet, sample bilinearly on the 2x grid, low-pass
        with the mirrored wavelet and down-sample: with ``G = I`` this is exactly the identity.
        """
        n, c, h, w = images.shape
        f = self.wavelet
        border = f.numel() // 2 - 1  # 2x-grid samples beyond the output that the filter reads
        G = G.to(torch.float32)

        # The 2x-grid sample positions of the output (plus the filter's border), in centred
        # input pixels. The wavelet is not symmetric: up-sampling delays the image by `delay`
        # pixels of the 2x grid and the mirrored down-sampling filter undoes it; sampling
        # positions shift by the same delay so that rotations turn about the true centre.
        dev = G.device
        delay = self.delay
        sw, sh = 2 * (w + border), 2 * (h + border)  # samples per row / column
        gx = (torch.arange(sw, device=dev) - border + 0.5 - delay) / 2 - w / 2
        gy = (torch.arange(sh, device=dev) - border + 0.5 - delay) / 2 - h / 2

        # Reflection padding that covers every source position (the matrix is affine, so the
        # corners bound them), plus the up-sampling filter's reach and the bilinear neighbour
        # (at most size - 1, as reflection allows).
        xa, xb = (0.5 - border - delay) / 2 - w / 2, (sw - 0.5 - border - delay) / 2 - w / 2
        ya, yb = (0.5 - border - delay) / 2 - h / 2, (sh - 0.5 - border - delay) / 2 - h / 2
        corners = torch.tensor([[xa, ya, 1], [xb, ya, 1], [xa, yb, 1], [xb, yb, 1]], device=dev)
        src = corners @ G[:, :2, :].transpose(1, 2)  # [n, 4, 2]
        half = torch.tensor([w / 2, h / 2], device=dev)
        need = torch.cat([-(src.amin(dim=(0, 1)) + half), src.amax(dim=(0, 1)) - half])
        reach = f.numel() // 4 + 1
        x0, y0, x1, y1 = (int(v) for v in (need.ceil().clamp(min=0) + reach).tolist())
        x0, x1 = min(x0, w - 1), min(x1, w - 1)
        y0, y1 = min(y0, h - 1), min(y1, h - 1)
        x = upsample2x(F.pad(images, [x0, x1, y0, y1], mode='reflect'), f)

        # One matrix per image from output sample positions to the padded input's normalised
        # coordinates (align_corners=False): u -> 2 (u + w/2 + x0 + delay/2) / (w + x0 + x1) - 1.
        norm = torch.zeros(2, 3, device=dev)
        norm[0, 0], norm[1, 1] = 2 / (w + x0 + x1), 2 / (h + y0 + y1)
        norm[0, 2] = 2 * (w / 2 + x0 + delay / 2) / (w + x0 + x1) - 1
        norm[1, 2] = 2 * (h / 2 + y0 + delay / 2) / (h + y0 + y1) - 1
        to_grid = norm @ G  # [n, 2, 3]
        yy, xx = torch.meshgrid(gy, gx, indexing='ij')
        xy1 = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1).reshape(-1, 3)
        grid = (xy1 @ to_grid.transpose(1, 2)).reshape(n, sh, sw, 2)
        x = grid_sample(x, grid, impl=self.impl)
        return downsample2x_valid(x, f)

    # -- 3. colour -------------------------------------------------------------------------
    def _color(self, images: torch.Tensor) -> torch.Tensor:
        n, c, _, _ = images.shape
        dev = images.device
        s = self.strengths
        C = torch.eye(4, device=dev).repeat(n, 1, 1)
        changed = torch.zeros(n, dtype=torch.bool, device=dev)

        def then(mask: torch.Tensor, matrix: torch.Tensor) -> None:
            nonlocal C, changed
            C = torch.where(mask[:, None, None], matrix @ C, C)
            changed = changed | mask

        then(self._chance('brightness', n, dev),
             M.translate3d(torch.randn(n, device=dev) * s['brightness_std']))
        then(self._chance('contrast', n, dev),
             M.scale3d(torch.exp2(torch.randn(n, device=dev) * s['contrast_std'])))
        then(self._chance('lumaflip', n, dev),
             M.luma_flip(torch.randint(0, 2, [n], device=dev).float()))
        then(self._chance('hue', n, dev),
             M.rotate_around_luma((torch.rand(n, device=dev) * 2 - 1) * math.pi * s['hue_max']))
        then(self._chance('saturation', n, dev),
             M.saturate(torch.exp2(torch.randn(n, device=dev) * s['saturation_std'])))
        return _apply_all(images, changed, lambda x: self.recolor(x, C))

    @staticmethod
    def recolor(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        """Apply ``[n, 4, 4]`` colour matrices to RGB images (grey images: along the luma
        axis)."""
        n, c, h, w = images.shape
        C = C.to(images.dtype)
        flat = images.reshape(n, c, h * w)
        if c == 3:
            out = C[:, :3, :3] @ flat + C[:, :3, 3:]
        elif c == 1:
            gain = C[:, :3, :3].sum(dim=2).mean(dim=1)
            out = flat * gain[:, None, None] + C[:, :3, 3].mean(dim=1)[:, None, None]
        else:
            raise ValueError(f'colour augmentations need 1 or 3 channels, got {c}')
        return out.reshape(n, c, h, w)

    # -- 4. image-space filtering ----------------------------------------------------------
    def _filter(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dev = images.device
        gains = torch.ones(n, 4, device=dev)
        for band in range(4):
            on = self._chance('imgfilter', n, dev)
            g = torch.exp2(torch.randn(n, device=dev) * self.strengths['imgfilter_std'])
            gains[:, band] = torch.where(on, g, gains[:, band])
        power = torch.tensor(BAND_POWER, device=dev)
        gains = gains / (gains.square() * power).sum(dim=1, keepdim=True).sqrt()
        changed = (gains != 1).any(dim=1)
        return _apply_subset(images, changed, lambda x, i: self.band_filter(x, gains[i]))

    @staticmethod
    def band_filter(images: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        """Scale the four octave bands of each image by ``gains`` ``[n, 4]`` (separable,
        same gains along x and y, reflection at the borders)."""
        n, c, h, w = images.shape
        taps = min(33, 2 * (min(h, w) - 1) - 1) | 1  # reflect padding needs pad < size
        bands = torch.as_tensor(band_filters(taps), dtype=images.dtype, device=images.device)
        kernel = (gains.to(images.dtype) @ bands).repeat_interleave(c, dim=0)  # [n * c, taps]
        pad = taps // 2
        x = images.reshape(1, n * c, h, w)
        x = F.pad(x, [pad, pad, pad, pad], mode='reflect')
        x = F.conv2d(x, kernel[:, None, None, :], groups=n * c)
        x = F.conv2d(x, kernel[:, None, :, None], groups=n * c)
        return x.reshape(n, c, h, w)

    # -- 5. additive noise, 6. cutout ------------------------------------------------------
    def _noise(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        dev = images.device
        on = self._chance('noise', n, dev)
        sigma = torch.randn(n, device=dev).abs() * self.strengths['noise_std'] * on
        return _apply_all(
            images, on, lambda x: x + torch.randn_like(x) * sigma.to(x.dtype)[:, None, None, None])

    def _cutout(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dev = images.device
        on = self._chance('cutout', n, dev)
        centre = torch.rand(n, 2, device=dev)
        half = self.strengths['cutout_size'] / 2

        def cut(x: torch.Tensor) -> torch.Tensor:
            xs = ((torch.arange(w, device=dev) + 0.5) / w)[None, None, :]
            ys = ((torch.arange(h, device=dev) + 0.5) / h)[None, :, None]
            keep = ((xs - centre[:, 0, None, None]).abs() >= half) | \
                ((ys - centre[:, 1, None, None]).abs() >= half) | ~on[:, None, None]
            return x * keep[:, None].to(x.dtype)

        return _apply_all(images, on, cut)
