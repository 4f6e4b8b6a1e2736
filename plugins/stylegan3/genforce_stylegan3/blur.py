"""The blur of the discriminator's inputs at the start of StyleGAN3 training.

Early in training every image the discriminator sees (reals and fakes, in every pass) is
blurred with a Gaussian whose standard deviation fades linearly from ``blur_init_sigma`` to 0
over the first ``blur_fade_kimg`` thousand images. The sigma depends only on the number of
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
    """The 1-D Gaussian ``exp(-x^2 / (2 sigma^2))`` on ``x = -r..r`` with ``r = ceil(3 sigma)``,
    normalised to sum 1 (float32)."""
    if not sigma > 0:
        raise ValueError(f'sigma must be > 0, got {sigma}')
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    f = torch.exp(-x.square() / (2 * sigma * sigma))
    return (f / f.sum()).float()


def blur_images(img: torch.Tensor, sigma: float, impl: str = 'cuda') -> torch.Tensor:
    """``img`` (``[N, C, H, W]``) blurred separably with :func:`gaussian_kernel`, same size
    (zero padding); ``img`` itself when ``sigma`` is 0."""
    if sigma <= 0:
        return img
    f = gaussian_kernel(sigma, img.device)
    return filter2d(img, f.to(img.dtype), impl=impl)
