"""The blur of the discriminator's inputs at the start of StyleGAN3 training.

Early in training every image the discriminator sees (reals and fakes, in every pass) is
blurred with a Gaussian whose width ``sigma`` fades linearly from ``blur_init_sigma`` to 0
over the first ``blur_fade_kimg`` thousand images. As in the official training, ``sigma`` is
the distance at which the kernel falls to 1/2 (``2 ** -(x / sigma) ** 2``, a standard
deviation of ``sigma / sqrt(2 ln 2)``, about 0.85 sigma) and the kernel has ``floor(3 sigma)``
taps on each side; below sigma 1/3 that is one tap, no blur. The sigma depends only on the number of
images seen, so a resumed run blurs exactly as the uninterrupted one.
"""
from __future__ import annotations

import math

import torch

from genforce_stylegan2.ops.upfirdn2d import filter2d


def blur_sigma(images_seen: int, init_sigma: float, fade_kimg: float) -> float:
    """``init_sigma * max(1 - images_seen / (fade_kimg * 1000), 0)``; 0 when ``fade_kimg``
    is 0 (no blur)."""
    if fade_kimg <= 0 or init_sigma <= 0:
        return 0.0
    return init_sigma * max(1.0 - images_seen / (fade_kimg * 1e3), 0.0)


def gaussian_kernel(sigma: float, device: torch.device | str = 'cpu') -> torch.Tensor:
    """The 1-D Gaussian ``2 ** -(x / sigma) ** 2`` on ``x = -r..r`` with ``r = floor(3 sigma)``,
    normalised to sum 1 (float32)."""
    if not sigma > 0:
        raise ValueError(f'sigma must be > 0, got {sigma}')
    radius = math.floor(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    f = torch.exp2(-(x / sigma).square())
    return (f / f.sum()).float()


def blur_images(img: torch.Tensor, sigma: float, impl: str = 'cuda') -> torch.Tensor:
    """``img`` (``[N, C, H, W]``) blurred separably with :func:`gaussian_kernel`, same size
    (zero padding); ``img`` itself when the kernel has one tap (``sigma < 1/3``)."""
    if math.floor(3 * sigma) < 1:
        return img
    f = gaussian_kernel(sigma, img.device)
    return filter2d(img, f.to(img.dtype), impl=impl)
