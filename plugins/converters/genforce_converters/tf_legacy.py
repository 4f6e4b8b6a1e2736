"""NVIDIA TensorFlow pickles of StyleGAN (v1, ``G_style``/``D_basic``) and PGGAN
(``G_paper``/``D_paper``).

The networks of the ``stylegan`` and ``pggan`` plugins keep one parameter per official TF
variable (their networks' ``load_official`` copies variables by name, transposing dense and conv
weights, and checks that every variable is there with the official shape). So these converters
only read the variables safely, rebuild the constructor arguments from the pickle's
``static_kwargs`` (the official defaults where a release did not override them) and the
variables' shapes, and let ``load_official`` do the rest. The converted checkpoint uses the core
``GAN`` model (inference; the families' training models add progressive-growing state).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from genforce_core.api import CONVERTERS, MODELS, CheckpointError

from .converters import Converter, _read_tf_networks
from .output import ConvertedModel
from .safe_pickle import TFNetwork, _plain


def _resolution_and_channels(variables: dict) -> tuple[int, int]:
    res = max(int(m[1]) for k in variables if (m := re.search(r'(\d+)x\1/', k)))
    rgb = [v for k, v in variables.items() if re.search(r'ToRGB_lod0/weight$', k)]
    return res, int(rgb[0].shape[-1]) if rgb else 3


def _load(plugin: str, net_type: str, kwargs: dict, variables: dict, what: str,
          source: Path) -> dict[str, torch.Tensor]:
    # Found through the registry: the family plugin registers ``net_type``, whose networks
    # load official TF variables themselves (``load_official``); no import of that plugin.
    if MODELS.get(net_type) is None:
        raise CheckpointError(f'converting {source} needs the {plugin} plugin, which registers '
                              f'{net_type}: pip install plugins/{plugin} '
                              f'(genforce-plugin-{plugin})')
    net = MODELS.build(dict(type=net_type, **kwargs))
    if not callable(getattr(net, 'load_official', None)):
        raise CheckpointError(f'{net_type} cannot load official TensorFlow variables (it has no '
                              'load_official method); is the right plugin installed?')
    try:
        net.load_official(variables)
    except (KeyError, ValueError) as err:
        raise CheckpointError(f'{source}: the {what} does not fit {net_type}({kwargs}): '
                              f'{err}') from err
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _get(kwargs: dict, key: str, default: Any) -> Any:
    value = kwargs.get(key)
    return default if value is None else value


class _LegacyTFConverter(Converter):
    plugin = '?'
    build_funcs: tuple[str, ...] = ()

    def networks(self, source: Path) -> tuple[TFNetwork | None, TFNetwork | None, TFNetwork]:
        from genforce_core.api import load_plugins

        load_plugins()
        G, D, Gs = _read_tf_networks(source)
        build = (Gs.state or {}).get('build_func_name')
        if build not in self.build_funcs:
            raise CheckpointError(f'{source} holds a {build} network, not {self.build_funcs[0]}'
                                  f'; pick the matching converter (stylegan2_tf, stylegan_tf, '
                                  'pggan_tf)')
        return G, D, Gs

    def convert(self, source: Path, g_type: str, d_type: str, g_kwargs, d_kwargs,
                variables) -> ConvertedModel:
        G, D, Gs = self.networks(source)
        g_ema = _load(self.plugin, g_type, g_kwargs, variables(Gs), 'generator (Gs)', source)
        g = (_load(self.plugin, g_type, g_kwargs, variables(G), 'generator (G)', source)
             if isinstance(G, TFNetwork) else None)
        d = (_load(self.plugin, d_type, d_kwargs, variables(D), 'discriminator', source)
             if isinstance(D, TFNetwork) else None)
        return ConvertedModel(
            model_type='GAN', generator_type=g_type, g_kwargs=g_kwargs, generator_ema=g_ema,
            generator=g, discriminator_type=d_type if d else None,
            d_kwargs=d_kwargs if d else None, discriminator=d,
            meta=dict(source=str(source), format=self.name, family=self.plugin,
                      tf_static_kwargs=_plain(Gs.static_kwargs)))


@CONVERTERS.register_module(name='stylegan_tf')
class StyleGANTFConverter(_LegacyTFConverter):
    """NVIDIA StyleGAN (v1) TensorFlow pickles ``(G, D, Gs)`` -> the stylegan plugin."""

    name = 'stylegan_tf'
    description = 'NVIDIA StyleGAN (v1) TensorFlow pickle (G, D, Gs)'
    plugin = 'stylegan'
    build_funcs = ('G_style',)

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        _, D, Gs = self.networks(source)
        kw = Gs.static_kwargs
        variables = Gs.variables(by_name=True)
        res, channels = _resolution_and_channels(variables)
        fmaps = dict(fmap_base=_get(kw, 'fmap_base', 8192), fmap_max=_get(kw, 'fmap_max', 512),
                     fmap_decay=_get(kw, 'fmap_decay', 1.0))
        label = variables.get('G_mapping/LabelConcat/weight')
        g_kwargs = dict(
            z_dim=_get(kw, 'latent_size', 512), c_dim=0 if label is None else label.shape[0],
            w_dim=_get(kw, 'dlatent_size', 512), img_resolution=res, img_channels=channels,
            mapping_kwargs=dict(num_layers=_get(kw, 'mapping_layers', 8),
                                layer_features=_get(kw, 'mapping_fmaps', 512),
                                lr_multiplier=_get(kw, 'mapping_lrmul', 0.01),
                                truncation_cutoff=_get(kw, 'truncation_cutoff', 8)),
            synthesis_kwargs=dict(fmaps))
        dk = D.static_kwargs if isinstance(D, TFNetwork) else {}
        d_kwargs = dict(c_dim=_get(dk, 'label_size', 0), img_resolution=res,
                        img_channels=channels, fmap_base=_get(dk, 'fmap_base', 8192),
                        fmap_max=_get(dk, 'fmap_max', 512), fmap_decay=_get(dk, 'fmap_decay', 1.0),
                        mbstd_group_size=_get(dk, 'mbstd_group_size', 4),
                        mbstd_num_features=_get(dk, 'mbstd_num_features', 1))
        return self.convert(source, 'StyleGANGenerator', 'StyleGANDiscriminator', _plain(g_kwargs),
                            _plain(d_kwargs), lambda net: net.variables(by_name=True))


@CONVERTERS.register_module(name='pggan_tf')
class PGGANTFConverter(_LegacyTFConverter):
    """NVIDIA PGGAN TensorFlow pickles ``(G, D, Gs)`` (``tfutil.Network``) -> the pggan plugin."""

    name = 'pggan_tf'
    description = 'NVIDIA Progressive GAN TensorFlow pickle (G, D, Gs)'
    plugin = 'pggan'
    build_funcs = ('G_paper',)

    def read(self, source: str | os.PathLike) -> ConvertedModel:
        source = Path(source)
        _, D, Gs = self.networks(source)
        kw = Gs.static_kwargs
        variables = Gs.variables()
        res, channels = _resolution_and_channels(variables)
        fmaps = dict(fmap_base=_get(kw, 'fmap_base', 8192), fmap_max=_get(kw, 'fmap_max', 512),
                     fmap_decay=_get(kw, 'fmap_decay', 1.0))
        g_kwargs = dict(z_dim=_get(kw, 'latent_size', min(fmaps['fmap_base'],
                                                          fmaps['fmap_max'])),
                        c_dim=_get(kw, 'label_size', 0), img_resolution=res,
                        img_channels=channels,
                        normalize_latents=_get(kw, 'normalize_latents', True),
                        use_pixelnorm=_get(kw, 'use_pixelnorm', True), **fmaps)
        dk = D.static_kwargs if isinstance(D, TFNetwork) else {}
        d_kwargs = dict(c_dim=_get(dk, 'label_size', 0), img_resolution=res,
                        img_channels=channels, fmap_base=_get(dk, 'fmap_base', 8192),
                        fmap_max=_get(dk, 'fmap_max', 512), fmap_decay=_get(dk, 'fmap_decay', 1.0),
                        mbstd_group_size=_get(dk, 'mbstd_group_size', 4))
        return self.convert(source, 'PGGANGenerator', 'PGGANDiscriminator', _plain(g_kwargs),
                            _plain(d_kwargs), lambda net: net.variables())
