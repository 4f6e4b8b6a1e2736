"""The result of a conversion: networks in genforce's names, and how it becomes a checkpoint.

A converted file is an ordinary genforce checkpoint: ``{'meta': {'cfg': <config data>, ...},
'state_dict': <GAN model state dict>}``, so ``genforce_core.load_generator(path)`` and
``genforce synthesize path`` rebuild the network from the config stored inside.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from torch import nn

from genforce_core.api import (
    MODELS,
    CheckpointError,
    config_to_data,
    describe_state_dict_mismatch,
    explaining_misses,
    load_plugins,
    save_checkpoint,
)

FORMAT_VERSION = 1
# Buffers that the architecture fixes (FIR filters): sources that do not store them get the
# values of the freshly built network.
DERIVED_BUFFERS = ('resample_filter',)


@dataclass
class ConvertedModel:
    """Networks read from a foreign file, keyed by genforce's parameter names.

    ``generator_ema`` is what users sample from (``G_ema`` / ``Gs`` / ``g_ema``);
    ``generator`` and ``discriminator`` are kept when the source has them, so training can
    continue from the converted file.
    """

    model_type: str
    generator_type: str
    g_kwargs: dict[str, Any]
    generator_ema: dict[str, torch.Tensor] | None = None
    generator: dict[str, torch.Tensor] | None = None
    discriminator_type: str | None = None
    d_kwargs: dict[str, Any] | None = None
    discriminator: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> dict[str, Any]:
        has_ema = self.generator_ema is not None and self.generator is not None
        discriminator = None
        if self.discriminator is not None:
            discriminator = dict(type=self.discriminator_type, **self.d_kwargs)
        return dict(type=self.model_type, generator=dict(type=self.generator_type,
                                                         **self.g_kwargs),
                    discriminator=discriminator,
                    ema=dict(half_life_kimg=10, rampup=None) if has_ema else None)

    def config(self) -> Config:
        cfg = dict(model=self.model_config())
        dataset = self.meta.get('dataset')
        if dataset:
            cfg['dataset_info'] = dataset
        return Config(cfg)

    def build_model(self) -> nn.Module:
        """The GAN model with the converted weights loaded strictly."""
        if self.generator_ema is None and self.generator is None:
            raise CheckpointError('the source holds no generator')
        load_plugins()
        with explaining_misses():
            try:
                model = MODELS.build(self.config().model)
            except TypeError as err:
                raise CheckpointError(f'cannot build {self.generator_type} with the source\'s '
                                      f'arguments: {err}') from err
        parts = [('generator', self.generator if self.generator is not None
                  else self.generator_ema)]
        if self.generator is not None and self.generator_ema is not None:
            parts.append(('generator_ema', self.generator_ema))
        if self.discriminator is not None:
            parts.append(('discriminator', self.discriminator))
        for name, state in parts:
            module = getattr(model, name)
            expected = module.state_dict()
            state = dict(state)
            for key, value in expected.items():
                if key not in state and key.rsplit('.', 1)[-1] in DERIVED_BUFFERS:
                    state[key] = value
            problem = describe_state_dict_mismatch(expected, state)
            if problem:
                raise CheckpointError(f'converted {name} does not fit {type(module).__name__}'
                                      f'({self.source}): {problem}')
            module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
        return model

    @property
    def source(self) -> str:
        return str(self.meta.get('source', '?'))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the genforce checkpoint (atomically) and return its path."""
        model = self.build_model()
        meta = dict(self.meta, cfg=config_to_data(self.config()),
                    converter_format_version=FORMAT_VERSION)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_checkpoint({'meta': meta, 'state_dict': model.state_dict()}, path)

    def inference_generator(self) -> nn.Module:
        return self.build_model().inference_generator.eval().requires_grad_(False)
