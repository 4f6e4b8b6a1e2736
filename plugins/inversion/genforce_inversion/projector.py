"""Projection by optimisation: find the latent code (and noise) that regenerates an image.

The procedure of the StyleGAN2 paper (Karras et al. 2020, appendix D):

* start from the mean ``w`` of 10k mapped latents (or a given code, e.g. the encoder's
  output) and optimise ``w`` (one code broadcast to all layers) or ``w+`` (one per layer),
  plus the per-layer noise maps;
* Adam with a learning rate ramped up over the first 5 % of the steps and down with a cosine
  over the last 25 %;
* Gaussian noise added to ``w``, of scale ``sigma_w * 0.05`` decaying quadratically to zero
  over the first 75 % of the steps (``sigma_w``: spread of ``w`` over 10k mapped latents), so
  the search explores before it settles;
* loss = perceptual distance (LPIPS-style, on VGG16 features) + pixel MSE + ``1e5`` * noise
  regularisation: the squared autocorrelation of every noise map at shifts of one pixel, on a
  pyramid of downsampled copies, which keeps the noise from encoding the image; after each
  step the noise maps are renormalised to zero mean and unit variance.
"""
from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .loading import check_invertible
from .perceptual import VGG16Features, fit_for_vgg, normalized_feature_distance

PERCEPTUAL_LAYERS = ('conv1_2', 'conv2_2', 'conv3_3', 'conv4_3')


@dataclass
class ProjectionResult:
    """Outcome of :func:`project` for a batch of ``N`` targets."""

    ws: torch.Tensor                       # [N, num_ws, w_dim] best codes
    images: torch.Tensor                   # [N, C, R, R] their images, in [-1, 1]
    noise: dict[str, torch.Tensor]         # noise buffer name -> [N, 1, H, W]
    losses: list[float] = field(default_factory=list)   # total loss per step
    mse: list[float] = field(default_factory=list)      # pixel MSE per step


def noise_buffers(G: nn.Module) -> dict[str, torch.Tensor]:
    """The synthesis network's constant-noise buffers, by name: ``...noise_const`` (StyleGAN2)
    or ``noise<i>`` (StyleGAN)."""
    return {name: buf for name, buf in G.synthesis.named_buffers()
            if re.fullmatch(r'noise_const|noise\d*', name.split('.')[-1])}


@contextlib.contextmanager
def override_buffers(module: nn.Module, values: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily replace named buffers of ``module`` (e.g. with tensors that need grad)."""
    saved = {}
    try:
        for name, value in values.items():
            owner_name, _, attr = name.rpartition('.')
            owner = module.get_submodule(owner_name) if owner_name else module
            saved[name] = (owner, attr, owner._buffers[attr])
            owner._buffers[attr] = value
        yield
    finally:
        for owner, attr, original in saved.values():
            owner._buffers[attr] = original


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Sum over noise maps ``[N, 1, H, W]`` and pyramid levels (down to 8x8) of the squared
    mean products of the map with itself shifted by one pixel, horizontally and vertically
    (wrapping around), averaged over the batch."""
    reg = 0
    for noise in noises:
        level = noise
        while True:
            reg = reg + (level * torch.roll(level, 1, dims=3)).mean(dim=[1, 2, 3]).square()
            reg = reg + (level * torch.roll(level, 1, dims=2)).mean(dim=[1, 2, 3]).square()
            if level.shape[2] <= 8:
                break
            level = F.avg_pool2d(level, 2)
    return reg  # type: ignore[return-value]


def learning_rate(step: int, num_steps: int, initial_lr: float, rampup: float,
                  rampdown: float) -> float:
    """Linear ramp-up over the first ``rampup`` of the run, cosine ramp-down over the last
    ``rampdown``."""
    t = step / num_steps
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / rampup)
    return initial_lr * ramp


@torch.no_grad()
def w_statistics(G: nn.Module, num_samples: int = 10000, seed: int = 123,
                 batch: int = 1000) -> tuple[torch.Tensor, float]:
    """``(w_avg [w_dim], sigma_w)`` from ``num_samples`` mapped latents; ``sigma_w`` is the
    root mean squared distance of ``w`` from its mean."""
    device = next(G.parameters()).device
    gen = torch.Generator(device='cpu').manual_seed(seed)
    ws = []
    for start in range(0, num_samples, batch):
        z = torch.randn(min(batch, num_samples - start), G.z_dim, generator=gen).to(device)
        c = torch.zeros(z.shape[0], getattr(G, 'c_dim', 0), device=device)
        ws.append(G.mapping(z, c)[:, 0].float())
    ws = torch.cat(ws)
    w_mean = ws.mean(dim=0)
    sigma = float(((ws - w_mean).square().sum() / num_samples).sqrt())
    return w_mean, sigma


def project(G: nn.Module,
            target: torch.Tensor,
            perceptual: VGG16Features | None,
            num_steps: int = 1000,
            w_plus: bool = False,
            optimize_noise: bool = True,
            initial_ws: torch.Tensor | None = None,
            initial_lr: float = 0.1,
            lr_rampup: float = 0.05,
            lr_rampdown: float = 0.25,
            initial_noise_factor: float = 0.05,
            noise_ramp_length: float = 0.75,
            noise_reg_weight: float = 1e5,
            perceptual_weight: float = 1.0,
            pixel_weight: float = 1.0,
            w_avg_samples: int = 10000,
            seed: int = 0,
            progress: Callable[[int, dict[str, float]], None] | None = None,
            ) -> ProjectionResult:
    """Project ``target`` images (``[N, C, R, R]`` in [-1, 1]) into ``G``'s latent space.

    Args:
        G: Style-based generator (``mapping``, ``synthesis``, ``num_ws``, ``w_dim``).
        target: Images at the generator's resolution.
        perceptual: VGG16 feature extractor (None: pixel loss only).
        num_steps: Optimisation steps.
        w_plus: Optimise one code per layer (``w+``) instead of one ``w`` for all.
        optimize_noise: Optimise the noise maps too (with their regulariser).
        initial_ws: Start codes ``[N, num_ws, w_dim]`` or ``[N, w_dim]`` (e.g. the encoder's
            output); default the mean of ``w_avg_samples`` mapped latents. With
            ``w_plus=False`` the layers are averaged.
        progress: Called after each step with ``(step, {'loss', 'mse', 'lr'})``.

    ``G`` is put in eval mode with its parameters frozen; its noise buffers are only replaced
    during the calls and restored. Returns the final codes (broadcast to
    ``[N, num_ws, w_dim]``), their images rendered without ``w`` noise, and the noise maps.
    """
    check_invertible(G)
    if target.ndim != 4 or target.shape[-1] != G.img_resolution:
        raise ValueError(f'targets must be [N, C, {G.img_resolution}, {G.img_resolution}] '
                         f'images in [-1, 1], got {list(target.shape)}')
    device = target.device
    n, num_ws = target.shape[0], G.num_ws
    G = G.eval().requires_grad_(False)
    w_mean, sigma_w = w_statistics(G, w_avg_samples)
    if initial_ws is None:
        start = w_mean.view(1, 1, -1).expand(n, num_ws if w_plus else 1, -1)
    else:
        start = initial_ws.to(device).float()
        if start.ndim == 2:
            start = start.unsqueeze(1).expand(-1, num_ws, -1)
        if not w_plus:
            start = start.mean(dim=1, keepdim=True)
    w_opt = start.detach().clone().requires_grad_(True)

    gen = torch.Generator(device='cpu').manual_seed(seed)
    buffers = noise_buffers(G) if optimize_noise else {}
    noise = {name: torch.randn([n, 1, *buf.shape[-2:]], generator=gen).to(device)
             .requires_grad_(True) for name, buf in buffers.items()}
    params = [w_opt, *noise.values()]
    optimizer = torch.optim.Adam(params, lr=initial_lr, betas=(0.9, 0.999))

    target_feats = None
    if perceptual is not None:
        perceptual = perceptual.to(device)
        with torch.no_grad():
            target_feats = perceptual(fit_for_vgg(target), PERCEPTUAL_LAYERS)

    result = ProjectionResult(ws=w_opt, images=target, noise={})
    for step in range(num_steps):
        lr = learning_rate(step, num_steps, initial_lr, lr_rampup, lr_rampdown)
        for group in optimizer.param_groups:
            group['lr'] = lr
        noise_scale = sigma_w * initial_noise_factor * max(
            0.0, 1.0 - step / (noise_ramp_length * num_steps)) ** 2
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * noise_scale
        ws = (w_opt + w_noise).expand(-1, num_ws, -1)
        with override_buffers(G.synthesis, noise):
            synth = G.synthesis(ws, noise_mode='const')
        per_image = F.mse_loss(synth, target, reduction='none').mean(dim=[1, 2, 3])
        mse = per_image.detach()
        per_image = per_image * pixel_weight
        if target_feats is not None:
            feats = perceptual(fit_for_vgg(synth), PERCEPTUAL_LAYERS)
            per_image = per_image + perceptual_weight * normalized_feature_distance(
                feats, target_feats)
        if noise:
            per_image = per_image + noise_reg_weight * noise_regularization(list(noise.values()))
        loss = per_image.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for buf in noise.values():  # renormalise each noise map
                buf -= buf.mean(dim=[1, 2, 3], keepdim=True)
                buf /= buf.square().mean(dim=[1, 2, 3], keepdim=True).sqrt()
        value = float(loss.detach()) / n
        result.losses.append(value)
        result.mse.append(float(mse.mean()))
        if progress is not None:
            progress(step, dict(loss=value, mse=float(mse.mean()), lr=lr))

    ws = w_opt.detach().expand(-1, num_ws, -1).clone()
    final_noise = {k: v.detach() for k, v in noise.items()}
    with torch.no_grad(), override_buffers(G.synthesis, final_noise):
        images = G.synthesis(ws, noise_mode='const')
    result.ws, result.images, result.noise = ws, images, final_noise
    return result
