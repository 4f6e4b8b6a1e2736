"""The registered converters: official files -> genforce checkpoints (``CONVERTERS``).

Every converter has ``read(source) -> ConvertedModel`` and ``convert_file(source, output)``
(what ``genforce convert``, ``tools/convert_model.py`` and the model zoo call). None of them
runs code from the source: pickles go through :mod:`.safe_pickle`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforce_core.api import CONVERTERS, CheckpointError, read_genforce_v1_checkpoint

from . import stylegan2_arch
from .genforce_v1 import is_v1_stylegan2, v1_to_official_generator
from .output import ConvertedModel
from .rosinality import rosinality_to_official_discriminator, rosinality_to_official_generator
from .safe_pickle import (
    StubObject,
    TFNetwork,
    _plain,
    init_kwargs,
    load_pickle,
    load_torch_file,
    module_state_dict,
    read_network_pickle,
)
from .tf_stylegan2 import tf_to_official_discriminator, tf_to_official_generator

_G_TOP_KWARGS = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'mapping_kwargs',
                 'synthesis_kwargs')


class Converter:
    """Base class: subclasses implement :meth:`read`."""

    name = '?'
    description = ''

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        raise NotImplementedError

    def convert_file(self, source: str | os.PathLike, output: str | os.PathLike) -> Path:
        """Convert ``source`` and write a genforce checkpoint to ``output``."""
        return self.read(source).save(output)


def _meta(source: Path, fmt: str, **extra: Any) -> dict[str, Any]:
    return dict(source=str(source), format=fmt, family='stylegan2', **extra)


# --------------------------------------------------------------------------- NVIDIA PyTorch

def _check_not_stylegan3(sd: dict, obj: Any, source: Path) -> None:
    src = getattr(obj, 'module_src', None) or ''
    if 'synthesis.input.freqs' in sd or 'class SynthesisInput' in src:
        raise CheckpointError(f'{source} holds a StyleGAN3 (alias-free) generator: use the '
                              'stylegan3_pth converter. StyleGAN3-era pickles of StyleGAN2 '
                              'networks (cfg stylegan2) convert with this one.')


def _generator_kwargs(obj: Any, sd: dict) -> dict[str, Any]:
    """NVIDIA's recorded constructor kwargs, nested (StyleGAN2-ADA) or flattened (StyleGAN3
    repo: ``Generator(z_dim, ..., mapping_kwargs, **synthesis_kwargs)``)."""
    kwargs = init_kwargs(obj)
    if not kwargs:
        return stylegan2_arch.generator_kwargs(sd)
    synthesis = dict(kwargs.pop('synthesis_kwargs', None) or {})
    for key in [k for k in kwargs if k not in _G_TOP_KWARGS]:
        synthesis[key] = kwargs.pop(key)
    kwargs['synthesis_kwargs'] = synthesis
    kwargs['mapping_kwargs'] = dict(kwargs.get('mapping_kwargs') or {})
    return kwargs


@CONVERTERS.register_module(name='stylegan2ada_pth')
class StyleGAN2ADAPickleConverter(Converter):
    """NVIDIA StyleGAN2-ADA / StyleGAN3-repo PyTorch pickles (``network-snapshot-*.pkl``):
    ``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``."""

    name = 'stylegan2ada_pth'
    description = 'NVIDIA StyleGAN2-ADA / StyleGAN3-repo PyTorch pickle (StyleGAN2 networks)'

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        data, nets = read_network_pickle(source, 'StyleGAN2-ADA',
                                         ': use the stylegan2_tf converter')
        for obj, sd in nets.values():
            _check_not_stylegan3(sd, obj, source)
        g_obj, g_sd = nets.get('G_ema') or nets['G']
        meta = _meta(source, self.name)
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
            d_kwargs = init_kwargs(d_obj) or stylegan2_arch.discriminator_kwargs(d_sd)
        return ConvertedModel(
            model_type='StyleGAN2', generator_type='StyleGAN2Generator',
            g_kwargs=_generator_kwargs(g_obj, g_sd),
            generator_ema=nets['G_ema'][1] if 'G_ema' in nets else None,
            generator=nets['G'][1] if 'G' in nets else None,
            discriminator_type='StyleGAN2Discriminator' if d_obj is not None else None,
            d_kwargs=d_kwargs, discriminator=d_sd, meta=meta)


# --------------------------------------------------------------------------- NVIDIA TF

def _tf_hints(net: TFNetwork) -> dict[str, Any]:
    kwargs = net.static_kwargs
    hints = {k: kwargs.get(k) for k in ('conv_clamp', 'num_fp16_res', 'mbstd_group_size')}
    if kwargs.get('mapping_lrmul') is not None:
        hints['mapping_lr_multiplier'] = kwargs['mapping_lrmul']
    return _plain(hints)


def _read_tf_networks(source: Path) -> tuple[TFNetwork | None, TFNetwork | None, TFNetwork]:
    data = load_pickle(source)
    if isinstance(data, dict) and ('G_ema' in data or 'G' in data):
        raise CheckpointError(f'{source} is a PyTorch pickle: use the stylegan2ada_pth '
                              'converter')
    if isinstance(data, TFNetwork):
        data = (None, None, data)
    if not (isinstance(data, (tuple, list)) and len(data) == 3
            and isinstance(data[2], TFNetwork)):
        raise CheckpointError(f'{source} is not a TF (G, D, Gs) pickle: found '
                              f'{type(data).__name__}')
    return data[0], data[1], data[2]


class _TFConverter(Converter):
    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        G, D, Gs = _read_tf_networks(source)
        build = (Gs.state or {}).get('build_func_name')
        if build in ('G_style', 'G_paper'):
            family = 'StyleGAN (v1)' if build == 'G_style' else 'PGGAN'
            raise CheckpointError(f'{source} holds a {family} generator: use the '
                                  f'{"stylegan_tf" if build == "G_style" else "pggan_tf"} '
                                  'converter')
        hints = _tf_hints(Gs)
        g_ema = tf_to_official_generator(Gs.variables())
        g = tf_to_official_generator(G.variables()) if isinstance(G, TFNetwork) else None
        d = d_kwargs = None
        if isinstance(D, TFNetwork):
            d = tf_to_official_discriminator(D.variables())
            d_kwargs = stylegan2_arch.discriminator_kwargs(d, {**hints, **_tf_hints(D)})
        return ConvertedModel(
            model_type='StyleGAN2', generator_type='StyleGAN2Generator',
            g_kwargs=stylegan2_arch.generator_kwargs(g_ema, hints), generator_ema=g_ema,
            generator=g, discriminator_type='StyleGAN2Discriminator' if d else None,
            d_kwargs=d_kwargs, discriminator=d,
            meta=_meta(source, self.name, tf_static_kwargs=_plain(Gs.static_kwargs)))


@CONVERTERS.register_module(name='stylegan2_tf')
class StyleGAN2TFConverter(_TFConverter):
    """NVIDIA StyleGAN2 TensorFlow pickles ``(G, D, Gs)``."""

    name = 'stylegan2_tf'
    description = 'NVIDIA StyleGAN2 TensorFlow pickle (G, D, Gs)'


@CONVERTERS.register_module(name='stylegan2ada_tf')
class StyleGAN2ADATFConverter(_TFConverter):
    """NVIDIA StyleGAN2-ADA TensorFlow pickles ``(G, D, Gs)`` (same variables, plus
    ``conv_clamp`` / label embeddings)."""

    name = 'stylegan2ada_tf'
    description = 'NVIDIA StyleGAN2-ADA TensorFlow pickle (G, D, Gs)'


# --------------------------------------------------------------------------- rosinality

def estimate_w_avg(g_kwargs: dict, sd: dict, num: int = 10000, seed: int = 0) -> torch.Tensor:
    """Mean of ``mapping(z)`` over ``num`` latents (for files that do not store it)."""
    from genforce_stylegan2.networks import MappingNetwork

    num_ws = 2 * int(np.log2(g_kwargs['img_resolution'])) - 2
    mapping = MappingNetwork(z_dim=g_kwargs['z_dim'], c_dim=g_kwargs['c_dim'],
                             w_dim=g_kwargs['w_dim'], num_ws=num_ws,
                             **g_kwargs['mapping_kwargs'])
    mapping.load_state_dict({k[len('mapping.'):]: v for k, v in sd.items()
                             if k.startswith('mapping.') and k != 'mapping.w_avg'}, strict=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn([num, g_kwargs['z_dim']], generator=gen)
        c = torch.zeros([num, g_kwargs['c_dim']])
        return mapping(z, c, update_emas=False)[:, 0].mean(dim=0)


@CONVERTERS.register_module(name='stylegan2_rosinality')
class RosinalityConverter(Converter):
    """rosinality's stylegan2-pytorch checkpoints (``g_ema``, ``g``, ``d``, ``latent_avg``)."""

    name = 'stylegan2_rosinality'
    description = "rosinality's stylegan2-pytorch checkpoint (g_ema, g, d)"

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        data = load_torch_file(source)
        if not isinstance(data, dict) or not ({'g_ema', 'g'} & set(data)):
            keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f'{source} is not a rosinality stylegan2-pytorch checkpoint: '
                                  f'expected g_ema / g / d, found {keys}')
        latent_avg = data.get('latent_avg')
        g_ema = g = None
        if data.get('g_ema') is not None:
            g_ema = rosinality_to_official_generator(data['g_ema'], latent_avg)
        if data.get('g') is not None:
            g = rosinality_to_official_generator(data['g'], latent_avg)
        ref = g_ema if g_ema is not None else g
        g_kwargs = stylegan2_arch.generator_kwargs(ref)
        meta = _meta(source, self.name, w_avg_estimated=latent_avg is None)
        if latent_avg is None:  # training checkpoints do not store it
            for sd in (g_ema, g):
                if sd is not None:
                    sd['mapping.w_avg'] = estimate_w_avg(g_kwargs, sd)
        d = rosinality_to_official_discriminator(data['d']) if data.get('d') else None
        return ConvertedModel(
            model_type='StyleGAN2', generator_type='StyleGAN2Generator', g_kwargs=g_kwargs,
            generator_ema=g_ema, generator=g,
            discriminator_type='StyleGAN2Discriminator' if d else None,
            d_kwargs=stylegan2_arch.discriminator_kwargs(d) if d else None, discriminator=d,
            meta=meta)


# --------------------------------------------------------------------------- GenForce v1

@CONVERTERS.register_module(name='genforce_v1')
class GenForceV1Converter(Converter):
    """Original GenForce checkpoints (``models`` / ``running_metadata`` / ``optimizers`` /
    ``learning_rates``) of StyleGAN2 generators (v1 names or official names)."""

    name = 'genforce_v1'
    description = 'original GenForce checkpoint (models / running_metadata / ...)'

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        raw = read_genforce_v1_checkpoint(source)
        nets = {}
        for name in ('generator_ema', 'generator'):
            sd = raw.get(name)
            if sd is None:
                continue
            if is_v1_stylegan2(sd):
                nets[name] = v1_to_official_generator(sd)
            elif 'synthesis.b4.conv1.weight' in sd:
                nets[name] = {k: v.detach().float() for k, v in sd.items()}
            else:
                raise CheckpointError(
                    f'{source}: {name} is not a StyleGAN2 generator in GenForce v1 or official '
                    f'names (first keys: {sorted(sd)[:6]}); PGGAN / StyleGAN v1 checkpoints '
                    'need the pggan / stylegan plugins\' converters')
        d = raw.get('discriminator')
        d_ok = d is not None and 'b4.conv.weight' in d
        ref = nets.get('generator_ema', nets.get('generator'))
        meta = _meta(source, self.name, running_metadata=_plain(raw.get('meta') or {}),
                     discriminator_dropped=d is not None and not d_ok)
        return ConvertedModel(
            model_type='StyleGAN2', generator_type='StyleGAN2Generator',
            g_kwargs=stylegan2_arch.generator_kwargs(ref), generator_ema=nets.get('generator_ema'),
            generator=nets.get('generator'),
            discriminator_type='StyleGAN2Discriminator' if d_ok else None,
            d_kwargs=stylegan2_arch.discriminator_kwargs(d) if d_ok else None,
            discriminator=dict(d) if d_ok else None, meta=meta)


# The converter names of the original GenForce's convert_model.py -> ours.
ALIASES = {'pggan': 'pggan_tf', 'stylegan': 'stylegan_tf', 'stylegan2': 'stylegan2_tf'}


def canonical_name(name: str) -> str:
    """``name`` with the original GenForce aliases resolved (``stylegan2`` -> ``stylegan2_tf``)."""
    return ALIASES.get(name, name)


def format_names() -> str:
    """The registered converter names, then the aliases: ``a, b, pggan (= pggan_tf), ...``."""
    aliases = [f'{alias} (= {name})' for alias, name in ALIASES.items()
               if name in CONVERTERS.module_dict]
    return ', '.join(sorted(CONVERTERS.module_dict) + aliases)


def get_converter(name: str) -> Converter:
    """The converter registered as ``name`` or its alias (error lists the known ones)."""
    from genforce_core.api import load_plugins

    load_plugins()
    cls = CONVERTERS.get(canonical_name(name))
    if cls is None:
        raise CheckpointError(f'unknown converter {name!r}; known: {format_names()}')
    return cls()
