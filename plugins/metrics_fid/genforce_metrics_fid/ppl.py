"""Perceptual path length (Karras et al., StyleGAN 2019 and StyleGAN2 2020), as StyleGAN2-ADA
computes ``ppl2_wend``, ``ppl_zfull``, ``ppl_wfull``, ``ppl_zend`` and ``ppl_wend``.

For each sample: two latents ``z0, z1`` (and a condition), a position ``t`` (uniform in [0, 1)
for ``full`` paths, 0 for ``end``), and the images at ``t`` and ``t + eps`` (``eps = 1e-4``)
along the path: spherical interpolation of the normalised ``z`` (``z`` space), or linear
interpolation of ``w = mapping(z)`` (``w`` space). The images (constant noise, re-drawn per
batch) are optionally cropped to the face region (rows 3/8..7/8, columns 2/8..6/8, the
StyleGAN paper's crop), box-downsampled to 256 when larger, scaled to [0, 255]; the sample's
value is ``LPIPS(img_t, img_t+eps) / eps^2``. PPL is the mean of the values between the 1st
(rounded down) and 99th (rounded up) percentiles.

Batch ``b`` draws everything from a generator seeded by ``(seed, b)``; in a distributed run
each rank takes every ``world``-th batch and the values are gathered in order, so the result
does not depend on the number of processes. The generator is deep-copied (its noise buffers
are overwritten), never changed.
"""
from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from mmengine.dist import get_dist_info
from torch import nn

from .features import gather_in_order, latent_generator, my_batches
from .precision_recall import draw_conditions
from .scores import MetricError

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # [N] of two [N, C, H, W]


@dataclass(frozen=True)
class PPLConfig:
    """One PPL variant: latent ``space`` ('z' | 'w'), ``sampling`` ('full' | 'end'), face
    ``crop``, ``epsilon`` and the number of samples."""

    space: str = 'w'
    sampling: str = 'end'
    crop: bool = False
    epsilon: float = 1e-4
    num_samples: int = 50000


# NVIDIA's metric_main.py: ppl2 = StyleGAN2's (whole image), ppl = StyleGAN's (face crop).
PPL_METRICS = {
    'ppl2_wend': PPLConfig('w', 'end', crop=False),
    'ppl_zfull': PPLConfig('z', 'full', crop=True),
    'ppl_wfull': PPLConfig('w', 'full', crop=True),
    'ppl_zend': PPLConfig('z', 'end', crop=True),
    'ppl_wend': PPLConfig('w', 'end', crop=True),
}


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of ``a`` and ``b`` (rows), at ``t``
    (``[N, 1]``); the result has unit length."""
    a, b = _normalize(a), _normalize(b)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t * torch.acos(cos)
    ortho = _normalize(b - cos * a)
    return _normalize(a * torch.cos(angle) + ortho * torch.sin(angle))


def face_crop(img: torch.Tensor) -> torch.Tensor:
    """The StyleGAN paper's face region of square images: rows 3/8..7/8, columns 2/8..6/8."""
    if img.shape[2] != img.shape[3]:
        raise MetricError(f'the face crop needs square images, got {tuple(img.shape[2:])}')
    c = img.shape[2] // 8
    return img[:, :, c * 3:c * 7, c * 2:c * 6]


def to_lpips_range(img: torch.Tensor, resolution: int, crop: bool) -> torch.Tensor:
    """Generated images in [-1, 1] → what LPIPS sees: face crop, box-downsampling by
    ``resolution // 256`` when larger than 256, [0, 255] (not rounded), three channels."""
    if crop:
        img = face_crop(img)
    factor = resolution // 256
    if factor > 1:
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
    img = (img + 1) * (255 / 2)
    return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img


_NOISE_BUFFER = re.compile(r'(^|\.)(noise_const|noise\d+)$')


def noise_buffers(generator: nn.Module) -> list[torch.Tensor]:
    """Constant-noise buffers: ``*.noise_const`` (StyleGAN2/ADA) and ``synthesis.noise<i>``
    (StyleGAN)."""
    return [buf for name, buf in generator.named_buffers() if _NOISE_BUFFER.search(name)]


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class PathSampler:
    """Per-sample path lengths ``[n]`` of batch ``b`` (see the module doc).

    Args:
        generator: A style-based generator (``.mapping(z, c)`` → ``ws``,
            ``.synthesis(ws, noise_mode='const')``) or, for ``z`` space only, any
            ``G(z, c)``; it is deep-copied. Attributes ``z_dim``, ``img_resolution``.
        config: The PPL variant.
        distance: ``distance(img0, img1) → [N]`` on images in [0, 255] (LPIPS).
        labels, c_dim: Conditions (dataset label rows, or one-hot classes).
        seed: Seed of batch ``b``'s draws ``(seed, b)``.
    """

    def __init__(self, generator: nn.Module, config: PPLConfig, distance: Distance, *,
                 labels: np.ndarray | None = None, c_dim: int = 0, seed: int = 0):
        if config.space not in ('z', 'w') or config.sampling not in ('full', 'end'):
            raise MetricError(f'PPL space must be z or w and sampling full or end, got '
                              f'{config.space!r}, {config.sampling!r}')
        styled = hasattr(generator, 'mapping') and hasattr(generator, 'synthesis')
        if config.space == 'w' and not styled:
            raise MetricError(f'PPL in w needs a style-based generator (.mapping and '
                              f'.synthesis); {type(generator).__name__} has none: use a z '
                              f'metric (ppl_zfull, ppl_zend)')
        self.G = copy.deepcopy(generator).eval().requires_grad_(False)
        self.styled, self.config, self.distance = styled, config, distance
        self.labels, self.c_dim, self.seed = labels, c_dim, seed
        self.z_dim = int(generator.z_dim)
        self.resolution = int(getattr(generator, 'img_resolution', 0) or 0)
        self.device = next(self.G.parameters()).device
        self.dtype = next(self.G.parameters()).dtype
        self.synthesis_kwargs = {'noise_mode': 'const'}
        if styled and _accepts(self.G.synthesis.forward, 'force_fp32'):
            self.synthesis_kwargs['force_fp32'] = True

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def __call__(self, b: int, n: int) -> torch.Tensor:
        cfg, rng = self.config, latent_generator(self.seed, b)
        t = torch.rand(n, generator=rng) * (1 if cfg.sampling == 'full' else 0)
        z0, z1 = torch.randn(2 * n, self.z_dim, generator=rng).chunk(2)
        c = draw_conditions(rng, n, self.labels, self.c_dim)
        t, z0, z1, c2 = self._to(t), self._to(z0), self._to(z1), self._to(torch.cat([c, c]))
        for buf in noise_buffers(self.G):  # the same noise for both ends of every path
            buf.copy_(torch.randn(buf.shape, generator=rng))
        if cfg.space == 'w':
            w0, w1 = self.G.mapping(torch.cat([z0, z1]), c2).chunk(2)
            tt = t.view(-1, *[1] * (w0.ndim - 1))
            ws = torch.cat([w0.lerp(w1, tt), w0.lerp(w1, tt + cfg.epsilon)])
            img = self.G.synthesis(ws, **self.synthesis_kwargs)
        else:
            tt = t[:, None]
            zs = torch.cat([slerp(z0, z1, tt), slerp(z0, z1, tt + cfg.epsilon)])
            if self.styled:
                img = self.G.synthesis(self.G.mapping(zs, c2), **self.synthesis_kwargs)
            else:
                img = self.G(zs, c2)
        img = to_lpips_range(img, self.resolution or img.shape[-1], cfg.crop)
        img0, img1 = img.chunk(2)
        return self.distance(img0, img1) / cfg.epsilon ** 2


def reject_outliers_mean(values: np.ndarray) -> float:
    """Mean of the values between the 1st (lower) and 99th (higher) percentiles."""
    values = np.asarray(values, dtype=np.float64)
    lo = np.percentile(values, 1, method='lower')
    hi = np.percentile(values, 99, method='higher')
    return float(values[(values >= lo) & (values <= hi)].mean())


def path_lengths(sampler: Callable[[int, int], torch.Tensor], num_samples: int,
                 batch_size: int = 2, progress: bool = False) -> np.ndarray:
    """Every sample's value ``[num_samples]`` (float64), each rank computing its batches."""
    from tqdm import tqdm
    values = []
    rank, world = get_dist_info()
    batches = my_batches(num_samples, batch_size)
    for b, start, stop in tqdm(batches, desc='PPL', disable=not progress or rank != 0,
                               leave=False, dynamic_ncols=True):
        values.append(sampler(b, stop - start).double())
    device = getattr(sampler, 'device', torch.device('cpu'))
    local = torch.cat(values) if values else torch.zeros(0, dtype=torch.float64, device=device)
    return gather_in_order(local[:, None], num_samples, batch_size)[:, 0].cpu().numpy()


def perceptual_path_length(generator: nn.Module, distance: Distance,
                           config: PPLConfig = PPL_METRICS['ppl2_wend'], *,
                           batch_size: int = 2, labels: np.ndarray | None = None,
                           c_dim: int | None = None, seed: int = 0,
                           progress: bool = False) -> float:
    """PPL of ``generator`` under ``config`` with ``distance`` (LPIPS: see
    :func:`~.lpips.lpips_distance`). Call on every rank of a distributed run."""
    if config.num_samples < 1:
        raise MetricError(f'PPL needs at least one sample, got {config.num_samples}')
    c_dim = int(getattr(generator, 'c_dim', 0) or 0) if c_dim is None else c_dim
    sampler = PathSampler(generator, config, distance, labels=labels, c_dim=c_dim, seed=seed)
    return reject_outliers_mean(path_lengths(sampler, config.num_samples, batch_size,
                                             progress))
