"""Style mixing regularization of the style-based generators (StyleGAN, StyleGAN2/ADA)."""
from __future__ import annotations

from collections.abc import Callable

import torch


def mix_styles(mapping: Callable[..., torch.Tensor], z: torch.Tensor, c: torch.Tensor,
               prob: float, num_layers: int | None = None) -> torch.Tensor:
    """``ws = mapping(z, c)``; with probability ``prob`` the layers from a random cutoff in
    ``[1, num_layers)`` on take the ``w`` of a second random latent instead (mapped with
    ``skip_w_avg_update=True``). ``num_layers`` defaults to all of ``ws``; a growing StyleGAN
    passes the layers in use at its current level of detail. The random draws are the
    official ones, in the official order (cutoff, then the coin, then the second latent)."""
    ws = mapping(z, c)
    if prob > 0:
        active = ws.shape[1] if num_layers is None else num_layers
        cutoff = int(torch.randint(1, active, [])) if active > 1 else active
        if float(torch.rand([])) >= prob:
            cutoff = active
        if cutoff < active:
            ws = ws.clone()
            ws[:, cutoff:] = mapping(torch.randn_like(z), c, skip_w_avg_update=True)[:, cutoff:]
    return ws
