"""Writers of official-format files, for tests (no NVIDIA, TF or rosinality code needed).

The files are built from networks in the official PyTorch names, with stand-in classes that
carry the official module names (``torch_utils.persistence``, ``dnnlib.util.EasyDict``,
``dnnlib.tflib.network.Network``) so the pickles reference exactly the globals the real
releases do. The stand-ins exist only while writing (:func:`official_modules`).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import os
import pickle
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .rosinality import official_to_rosinality_discriminator, official_to_rosinality_generator
from .tf_stylegan2 import official_to_tf_discriminator, official_to_tf_generator

# Embedded in every written pickle as the "source code" of the networks; the converters must
# keep it as text. Running it would create the file named by the marker.
EMBEDDED_SOURCE = ("import pathlib\npathlib.Path({marker!r}).write_text('embedded source ran')\n"
                   'class Generator: pass\n')


@contextlib.contextmanager
def official_modules() -> Iterator[types.SimpleNamespace]:
    """Temporarily install stand-ins for NVIDIA's modules in ``sys.modules``."""
    names = ['torch_utils', 'torch_utils.persistence', 'dnnlib', 'dnnlib.util', 'dnnlib.tflib',
             'dnnlib.tflib.network', 'tfutil']
    saved = {name: sys.modules.get(name) for name in names}
    mods = {name: types.ModuleType(name) for name in names}

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - must never be called
        raise AssertionError('the persistence reconstructor ran')

    class EasyDict(dict):
        pass

    class Network:
        def __init__(self, state: dict):
            self._state = state

        def __getstate__(self) -> dict:
            return self._state

    for obj, module in ((_reconstruct_persistent_obj, 'torch_utils.persistence'),
                        (EasyDict, 'dnnlib.util'), (Network, 'dnnlib.tflib.network')):
        obj.__module__ = module
        obj.__qualname__ = obj.__name__
        setattr(mods[module], obj.__name__, obj)
    mods['dnnlib'].EasyDict = EasyDict

    class PGGANNetwork(Network):  # PGGAN's release pickles tfutil.Network
        pass

    PGGANNetwork.__module__, PGGANNetwork.__qualname__ = 'tfutil', 'Network'
    PGGANNetwork.__name__ = 'Network'
    mods['tfutil'].Network = PGGANNetwork
    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict,
                                    Network=Network, PGGANNetwork=PGGANNetwork)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Persistent:
    """Pickles as ``_reconstruct_persistent_obj(meta)``, like NVIDIA's persistent classes."""

    def __init__(self, reconstruct, meta: dict):
        self.reconstruct, self.meta = reconstruct, meta

    def __reduce__(self):
        return self.reconstruct, (self.meta,)


def _record(module: nn.Module, mods, marker: str, kwargs: Mapping | None = None) -> _Persistent:
    state: dict[str, Any] = {k: module.__dict__[k] for k in (
        'training', '_parameters', '_buffers', '_non_persistent_buffers_set')}
    state['_modules'] = collections.OrderedDict(
        (name, _record(child, mods, marker)) for name, child in module._modules.items())
    for key, value in module.__dict__.items():  # numbers as NVIDIA keeps them (numpy floats)
        if isinstance(value, float):
            state[key] = np.float64(value)
        elif isinstance(value, (int, str, bool)) and not key.startswith('_'):
            state[key] = value
    if kwargs is not None:
        state['_init_args'] = ()
        state['_init_kwargs'] = _easy(kwargs, mods.EasyDict)
    meta = dict(type='class', version=6, module_src=EMBEDDED_SOURCE.format(marker=marker),
                class_name=type(module).__name__, state=state)
    return _Persistent(mods.reconstruct, meta)


def _easy(value: Any, easy_dict: type) -> Any:
    if isinstance(value, Mapping):
        return easy_dict({k: _easy(v, easy_dict) for k, v in value.items()})
    return value


def flatten_synthesis_kwargs(g_kwargs: Mapping) -> dict:
    """StyleGAN3-repo style: ``Generator(..., mapping_kwargs, **synthesis_kwargs)``."""
    kwargs = dict(g_kwargs)
    return {**{k: v for k, v in kwargs.items() if k != 'synthesis_kwargs'},
            **kwargs.get('synthesis_kwargs', {})}


def write_stylegan2ada_pickle(path: str | os.PathLike, G: nn.Module, D: nn.Module | None,
                              g_kwargs: Mapping, d_kwargs: Mapping | None, *,
                              G_ema: nn.Module | None = None, marker: str = 'marker',
                              protocol: int = pickle.DEFAULT_PROTOCOL,
                              training_set_kwargs: Mapping | None = None,
                              augment_p: float | None = None) -> Path:
    """A ``network-snapshot`` pickle: ``dict(G, D, G_ema, augment_pipe, training_set_kwargs)``."""
    with official_modules() as mods:
        data: dict[str, Any] = dict(G=_record(G, mods, marker, g_kwargs),
                                    G_ema=_record(G_ema or G, mods, marker, g_kwargs))
        if D is not None:
            data['D'] = _record(D, mods, marker, d_kwargs)
        if augment_p is not None:
            pipe = nn.Module()
            pipe.register_buffer('p', torch.tensor(augment_p))
            data['augment_pipe'] = _record(pipe, mods, marker, dict(xflip=1, rotate90=1))
        if training_set_kwargs is not None:
            data['training_set_kwargs'] = _easy(training_set_kwargs, mods.EasyDict)
        with open(path, 'wb') as file:
            pickle.dump(data, file, protocol=protocol)
    return Path(path)


def write_tf_pickle(path: str | os.PathLike, G_sd: Mapping[str, torch.Tensor],
                    D_sd: Mapping[str, torch.Tensor] | None, Gs_sd: Mapping | None = None, *,
                    static_kwargs: Mapping | None = None, marker: str = 'marker',
                    protocol: int = 3) -> Path:
    """A TF ``(G, D, Gs)`` pickle of ``dnnlib.tflib.network.Network`` objects, its variables
    in TF names and layouts, made from official PyTorch state dicts."""
    src = EMBEDDED_SOURCE.format(marker=marker)

    def network(mods, name: str, variables: Mapping, components: dict | None = None,
                build: str = 'G_main', kwargs: Mapping | None = None):
        return mods.Network(dict(
            version=4, name=name, static_kwargs=dict(kwargs or {}),
            components=mods.EasyDict(components or {}), build_module_src=src,
            build_func_name=build, variables=list(variables.items())))

    def generator(mods, name: str, sd: Mapping):
        tf_vars = official_to_tf_generator(sd)
        own = {k: v for k, v in tf_vars.items() if '/' not in k}
        parts = {c: {k.split('/', 1)[1]: v for k, v in tf_vars.items()
                     if k.startswith(c + '/')} for c in ('mapping', 'synthesis')}
        comps = dict(mapping=network(mods, 'G_mapping', parts['mapping'], build='G_mapping'),
                     synthesis=network(mods, 'G_synthesis', parts['synthesis'],
                                       build='G_synthesis_stylegan2'))
        return network(mods, name, own, comps, kwargs=static_kwargs)

    with official_modules() as mods:
        G = generator(mods, 'G', G_sd)
        Gs = generator(mods, 'Gs', Gs_sd if Gs_sd is not None else G_sd)
        D = (network(mods, 'D', official_to_tf_discriminator(D_sd), build='D_stylegan2',
                     kwargs=static_kwargs) if D_sd is not None else None)
        with open(path, 'wb') as file:
            pickle.dump((G, D, Gs), file, protocol=protocol)
    return Path(path)


def write_rosinality_checkpoint(path: str | os.PathLike, G_sd: Mapping[str, torch.Tensor],
                                D_sd: Mapping[str, torch.Tensor] | None, *,
                                with_latent_avg: bool = True) -> Path:
    """``torch.save({'g_ema', 'g', 'd', 'args', ['latent_avg']})`` as his train.py /
    convert_weight.py write it (with FIR kernels as extra buffers)."""
    g, latent_avg = official_to_rosinality_generator(G_sd)
    g['convs.0.conv.blur.kernel'] = torch.ones(4, 4) / 4  # his derived buffers
    data: dict[str, Any] = dict(g_ema=g, g={k: v.clone() for k, v in g.items()},
                                args=argparse.Namespace(size=0, n_mlp=0))
    if D_sd is not None:
        data['d'] = official_to_rosinality_discriminator(D_sd)
    if with_latent_avg:
        data['latent_avg'] = latent_avg
    torch.save(data, path)
    return Path(path)


class _Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def write_malicious_pickle(path: str | os.PathLike, marker: str | os.PathLike) -> Path:
    """A pickle that, loaded with plain ``pickle``, would create ``marker`` via ``os.system``."""
    with open(path, 'wb') as file:
        pickle.dump({'G_ema': _Exploit(str(marker))}, file)
    return Path(path)


def official_to_v1_generator(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original-GenForce (v1) ``StyleGAN2Generator`` state dict from official names."""
    from .genforce_v1 import v1_to_tf_name

    tf_vars = official_to_tf_generator(sd)
    res = sorted({int(k.split('.')[1][1:]) for k in sd if k.startswith('synthesis.b')})
    fields = ('weight', 'bias', 'style.weight', 'style.bias', 'noise_strength', 'noise')
    candidates = ['truncation.w_avg', 'synthesis.early_layer.const']
    candidates += [f'mapping.dense{i}.{f}' for i in range(32) for f in ('weight', 'bias')]
    candidates += [f'synthesis.layer{j}.{f}' for j in range(2 * len(res)) for f in fields]
    candidates += [f'synthesis.output{b}.{f}' for b in range(len(res)) for f in fields[:4]]
    out = {}
    for key in candidates:
        tf_name, layout = v1_to_tf_name(key)
        if tf_name not in tf_vars:
            continue
        value = tf_vars[tf_name]
        if layout == 'dense':
            value = value.T
        elif layout == 'conv':
            value = value.transpose(3, 2, 0, 1)
        out[key] = torch.from_numpy(np.array(value, order='C'))
    return out


def write_tf_family_pickle(path: str | os.PathLike, family: str, G_vars: Mapping,
                           D_vars: Mapping | None, Gs_vars: Mapping | None = None, *,
                           static_kwargs: Mapping | None = None, marker: str = 'marker') -> Path:
    """A StyleGAN (v1, ``family='stylegan'``: ``G_style`` with ``G_mapping`` / ``G_synthesis``
    components) or PGGAN (``'pggan'``: ``tfutil.Network`` ``G_paper``) TF release pickle from
    official variable dicts (``{'G_mapping/Dense0/weight': array, ...}``)."""
    src = EMBEDDED_SOURCE.format(marker=marker)
    kwargs = dict(static_kwargs or {})

    def network(cls, name, build, variables, components=None):
        state = dict(version=4 if family == 'stylegan' else 2, name=name, static_kwargs=kwargs,
                     build_module_src=src, build_func_name=build,
                     variables=[(k, np.asarray(v)) for k, v in variables.items()])
        if components is not None:
            state['components'] = components
        return cls(state)

    def generator(mods, name, variables):
        if family == 'pggan':
            return network(mods.PGGANNetwork, name, 'G_paper', variables)
        own = {k: v for k, v in variables.items() if '/' not in k}
        comps = mods.EasyDict(
            mapping=network(mods.Network, 'G_mapping', 'G_mapping', {
                k.split('/', 1)[1]: v for k, v in variables.items()
                if k.startswith('G_mapping/')}),
            synthesis=network(mods.Network, 'G_synthesis', 'G_synthesis', {
                k.split('/', 1)[1]: v for k, v in variables.items()
                if k.startswith('G_synthesis/')}))
        return network(mods.Network, name, 'G_style', own, comps)

    with official_modules() as mods:
        G = generator(mods, 'G', G_vars)
        Gs = generator(mods, 'Gs', Gs_vars if Gs_vars is not None else G_vars)
        D = None
        if D_vars is not None:
            cls = mods.PGGANNetwork if family == 'pggan' else mods.Network
            D = network(cls, 'D', 'D_paper' if family == 'pggan' else 'D_basic', D_vars,
                        None if family == 'pggan' else mods.EasyDict())
        with open(path, 'wb') as file:
            pickle.dump((G, D, Gs), file, protocol=3)
    return Path(path)
