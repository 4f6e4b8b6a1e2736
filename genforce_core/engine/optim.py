"""Optimizers of a GAN: one per network, Adam rescaled for lazy regularization.

With a regularizer applied every ``k`` steps, the StyleGAN2 paper keeps Adam's effective
dynamics by using ``lr * c`` and ``beta ** c`` with ``c = k / (k + 1)`` (the regularization
passes are extra optimizer steps).
"""
from __future__ import annotations

import copy
from typing import Any

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS


def lazy_regularization_ratio(interval: int | None) -> float:
    """``c = k / (k + 1)`` for a regularizer applied every ``k`` steps (1 without one)."""
    return 1.0 if not interval else interval / (interval + 1)


def rescale_optimizer_cfg(cfg: dict, ratio: float) -> dict:
    """Return ``cfg`` with ``lr * ratio`` and every beta raised to ``ratio``."""
    cfg = copy.deepcopy(dict(cfg))
    if 'lr' in cfg:
        cfg['lr'] = cfg['lr'] * ratio
    if 'betas' in cfg:  # floats: torch's Adam rejects an int such as `betas=(0, 0.99)`
        cfg['betas'] = tuple(float(beta) ** ratio for beta in cfg['betas'])
    return cfg


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GANOptimWrapperConstructor:
    """Builds an :class:`OptimWrapperDict` with one optimizer per named network.

    Config::

        optim_wrapper = dict(
            constructor='GANOptimWrapperConstructor',
            generator=dict(optimizer=dict(type='Adam', lr=0.0025, betas=(0, 0.99))),
            discriminator=dict(optimizer=dict(type='Adam', lr=0.0025, betas=(0, 0.99))))

    The lazy-regularization interval of each network is read from the model
    (``model.g_reg.interval`` / ``model.d_reg.interval``); a ``reg_interval`` key in a
    network's entry overrides it (``reg_interval=None`` disables the rescaling).
    """

    REG_ATTRIBUTE = {'generator': 'g_reg', 'discriminator': 'd_reg'}

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        if paramwise_cfg is not None:
            raise ValueError('GANOptimWrapperConstructor takes paramwise_cfg per network, '
                             'inside each entry of optim_wrapper')
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = getattr(model, 'module', model)  # unwrap GANDataParallel
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            module = getattr(model, name, None)
            if not isinstance(module, nn.Module):
                raise KeyError(f"optim_wrapper has an entry '{name}' but the model has no "
                               f'network of that name')
            cfg = copy.deepcopy(dict(cfg))
            interval = cfg.pop('reg_interval', model_reg_interval(model, name))
            ratio = lazy_regularization_ratio(interval)
            cfg['optimizer'] = rescale_optimizer_cfg(cfg['optimizer'], ratio)
            cfg.setdefault('type', 'OptimWrapper')
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(module)
            # Remembered, so that whoever sets learning rates later (progressive growing)
            # applies the same ratio, override included.
            wrappers[name].lazy_regularization_ratio = ratio
        return OptimWrapperDict(**wrappers)


def model_reg_interval(model: nn.Module, name: str) -> int | None:
    """The lazy-regularization interval of network ``name`` (``generator`` /
    ``discriminator``): ``model.g_reg.interval`` / ``model.d_reg.interval``, or None."""
    reg = getattr(model, GANOptimWrapperConstructor.REG_ATTRIBUTE.get(name, ''), None)
    return getattr(reg, 'interval', None)


def regularization_ratio(wrapper: Any, model: nn.Module, name: str) -> float:
    """The lazy-regularization ratio of the optimizer of network ``name``: the one
    :class:`GANOptimWrapperConstructor` applied (``reg_interval`` override included), else the
    model's interval's."""
    ratio = getattr(wrapper, 'lazy_regularization_ratio', None)
    if ratio is not None:
        return float(ratio)
    return lazy_regularization_ratio(model_reg_interval(model, name))
