"""NVIDIA StyleGAN3 pickles (``stylegan3-t-*.pkl``, ``stylegan3-r-*.pkl``, snapshots of the
StyleGAN3 repository) -> genforce checkpoints (converter ``stylegan3_pth``).

The pickle is read by :mod:`.safe_pickle` (nothing in it runs). StyleGAN3's generator and its
StyleGAN2 discriminator are rebuilt from the constructor arguments NVIDIA's persistence records
(``_init_kwargs``), as the ``StyleGAN3Generator`` / ``StyleGAN2Discriminator`` registered by the
StyleGAN3 and StyleGAN2 plugins, whose parameter names are the official ones: the weights
load strictly, by name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genforce_core.api import CONVERTERS, CheckpointError

from .converters import Converter
from .output import ConvertedModel
from .safe_pickle import StubObject, _plain, init_kwargs, module_state_dict, read_network_pickle

_G_REQUIRED = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels')


def stylegan3_generator_kwargs(kwargs: dict[str, Any], source: Path) -> dict[str, Any]:
    """``StyleGAN3Generator`` arguments from NVIDIA's recorded ones: synthesis arguments flat
    (``Generator(..., mapping_kwargs, **synthesis_kwargs)``; a nested ``synthesis_kwargs`` is
    flattened) and float32 throughout (``num_fp16_res`` is a training-speed choice: the stored
    weights are float32)."""
    kwargs = dict(kwargs)
    missing = [k for k in _G_REQUIRED if k not in kwargs]
    if missing:
        raise CheckpointError(f'{source}: the generator\'s recorded arguments lack '
                              f'{", ".join(missing)}; is this a StyleGAN3 network pickle?')
    kwargs.update(kwargs.pop('synthesis_kwargs', None) or {})
    kwargs['mapping_kwargs'] = dict(kwargs.get('mapping_kwargs') or {})
    kwargs['num_fp16_res'] = 0
    return kwargs


@CONVERTERS.register_module(name='stylegan3_pth')
class StyleGAN3PickleConverter(Converter):
    """NVIDIA StyleGAN3 PyTorch pickles: ``G``, ``D``, ``G_ema`` (``augment_pipe`` and
    ``training_set_kwargs`` go to the checkpoint's meta)."""

    name = 'stylegan3_pth'
    description = 'NVIDIA StyleGAN3 PyTorch pickle (StyleGAN3-T / -R generator)'

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        data, nets = read_network_pickle(source, 'StyleGAN3', ', not a StyleGAN3 one')
        g_obj, g_sd = nets.get('G_ema') or nets['G']
        if 'synthesis.input.freqs' not in g_sd:
            raise CheckpointError(f'{source} holds no StyleGAN3 generator (no '
                                  'synthesis.input.freqs): for StyleGAN2 networks use the '
                                  'stylegan2ada_pth converter')
        recorded = init_kwargs(g_obj)
        meta: dict[str, Any] = dict(source=str(source), format=self.name, family='stylegan3',
                                    num_fp16_res=recorded.get('num_fp16_res'))
        if data.get('training_set_kwargs'):
            meta['dataset'] = _plain(dict(data['training_set_kwargs']))
        pipe = data.get('augment_pipe')
        if isinstance(pipe, StubObject):
            pipe_sd = module_state_dict(pipe)
            meta['augment_pipe'] = dict(
                init_kwargs=init_kwargs(pipe),
                p=float(pipe_sd['p'].reshape(-1)[0]) if 'p' in pipe_sd else None)
        d_obj, d_sd = nets.get('D', (None, None))
        d_kwargs = None
        if d_obj is not None:
            d_kwargs = init_kwargs(d_obj)
            if not d_kwargs:
                raise CheckpointError(f'{source}: D has no recorded constructor arguments')
        return ConvertedModel(
            model_type='StyleGAN3', generator_type='StyleGAN3Generator',
            g_kwargs=stylegan3_generator_kwargs(recorded, source),
            generator_ema=nets['G_ema'][1] if 'G_ema' in nets else None,
            generator=nets['G'][1] if 'G' in nets else None,
            discriminator_type='StyleGAN2Discriminator' if d_obj is not None else None,
            d_kwargs=d_kwargs, discriminator=d_sd, meta=meta)
