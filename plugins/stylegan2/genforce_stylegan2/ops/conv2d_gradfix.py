"""``conv2d`` / ``conv_transpose2d`` that differentiate twice and can skip weight gradients.

R1 and path-length regularization differentiate a gradient: they need the backward pass of a
convolution to be differentiable itself (double backward). They also only ask for gradients
with respect to images or latents; inside :func:`no_weight_gradients` the convolutions below do
not compute the (unneeded) gradients of their weights, which saves a third of the backward work.

Implementation: an autograd Function whose backward calls ``aten.convolution_backward``, a
differentiable op, so the gradient graph supports another backward pass. The flag is read when
the backward runs, so wrap the ``torch.autograd.grad`` call (not the forward) in the context:

    with no_weight_gradients():
        grads, = torch.autograd.grad(logits.sum(), [real], create_graph=True)

Some convolution weights are activations rather than parameters: the per-sample kernels of a
fused modulated convolution depend on the latents, and a path-length gradient flows through
them. Convolutions run inside :func:`weights_are_activations` (a forward-time context) always
keep their weight gradients.

Set ``enabled = False`` to fall back to plain ``torch.nn.functional`` convolutions (which also
differentiate twice, but always compute weight gradients).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

enabled = True  # use the custom autograd Function (False: plain torch.nn.functional ops)
weight_gradients_disabled = False  # set by no_weight_gradients(), read in backward
_weights_are_activations = False  # set by weights_are_activations(), read in forward


@contextlib.contextmanager
def no_weight_gradients(disable: bool = True) -> Iterator[None]:
    """Within the block, backward passes through these convolutions skip weight gradients."""
    global weight_gradients_disabled
    previous = weight_gradients_disabled
    if disable:
        weight_gradients_disabled = True
    try:
        yield
    finally:
        weight_gradients_disabled = previous


@contextlib.contextmanager
def weights_are_activations() -> Iterator[None]:
    """Convolutions run in this block keep weight gradients even under no_weight_gradients."""
    global _weights_are_activations
    previous = _weights_are_activations
    _weights_are_activations = True
    try:
        yield
    finally:
        _weights_are_activations = previous


def _pair(v) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    v = [int(e) for e in v]
    return v * 2 if len(v) == 1 else v


def _use_custom(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return enabled and torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)


def _autocast(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """Cast as autocast (``--amp``) casts ``F.conv2d``: the Function's ``aten.convolution``
    is not on autocast's lists, so under it a float16 input would meet a float32 weight."""
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return x, weight, bias
    dtype = torch.get_autocast_dtype(device)
    return x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)


def conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """Drop-in for :func:`torch.nn.functional.conv2d` (integer or pair padding only)."""
    if _use_custom(input, weight):
        return _ConvFunction.apply(*_autocast(input, weight, bias), _pair(stride),
                                   _pair(padding), _pair(dilation), False, [0, 0], groups)
    return F.conv2d(input, weight, bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


def conv_transpose2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> torch.Tensor:
    """Drop-in for :func:`torch.nn.functional.conv_transpose2d`."""
    if _use_custom(input, weight):
        return _ConvFunction.apply(*_autocast(input, weight, bias), _pair(stride),
                                   _pair(padding), _pair(dilation), True, _pair(output_padding),
                                   groups)
    return F.conv_transpose2d(input, weight, bias, stride=stride, padding=padding,
                              output_padding=output_padding, groups=groups, dilation=dilation)


class _ConvFunction(torch.autograd.Function):
    """Convolution (or transposed convolution) with a differentiable, flag-aware backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, transposed, output_padding,
                groups):
        ctx.conf = (stride, padding, dilation, transposed, output_padding, groups)
        ctx.weight_is_activation = _weights_are_activations
        ctx.bias_shape = None if bias is None else list(bias.shape)
        ctx.save_for_backward(x, weight)
        return torch.ops.aten.convolution(x, weight, bias, stride, padding, dilation, transposed,
                                          output_padding, groups)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, transposed, output_padding, groups = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_w = need_w and (ctx.weight_is_activation or not weight_gradients_disabled)
        if not (need_x or need_w or need_b):
            return (None,) * 9
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out, x, weight, ctx.bias_shape, stride, padding, dilation, transposed,
            output_padding, groups, [need_x, need_w, need_b and ctx.bias_shape is not None])
        return (grad_x if need_x else None, grad_w if need_w else None,
                grad_b if need_b else None) + (None,) * 6
