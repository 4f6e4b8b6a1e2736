"""Data-parallel GAN training without DistributedDataParallel.

GAN iterations run several passes per step, freeze one network at a time and need double
backward for R1 and path-length regularization — patterns DDP handles badly. Like NVIDIA's
StyleGAN2-ADA we broadcast the weights once and average gradients explicitly after each pass.
"""
from __future__ import annotations

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_world_size
from torch import nn

from ..registry import MODEL_WRAPPERS


def _average_over_ranks(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over all ranks (one flat all-reduce)."""
    if get_world_size() == 1 or not tensors:
        return
    flat = torch.cat([t.flatten() for t in tensors])
    torch_dist.all_reduce(flat)
    flat /= get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_gradients(module: nn.Module) -> None:
    """Average the gradients of ``module``'s trainable parameters over all ranks."""
    if get_world_size() == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:  # a parameter unused on this rank still joins the reduction
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    _average_over_ranks([p.grad for p in params])


def all_reduce_buffers(module: nn.Module) -> None:
    """Average floating-point buffers (BatchNorm statistics, ``w_avg``) over all ranks, so
    every rank holds the same model; each rank updated them from its own share of the batch."""
    _average_over_ranks([b for b in module.buffers() if b.is_floating_point()])


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Make every rank start from rank ``src``'s parameters and buffers."""
    if get_world_size() == 1:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        torch_dist.broadcast(tensor.data, src=src)


@MODEL_WRAPPERS.register_module()
class GANDataParallel(nn.Module):
    """Model wrapper used by :class:`GenforceRunner` for distributed GAN training.

    It only broadcasts the initial state; :class:`~genforce_core.models.GAN` averages
    gradients itself after every pass.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        broadcast_module(module)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
