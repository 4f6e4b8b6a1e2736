"""Reading official pickles without running any code from them.

NVIDIA's releases are pickles of live objects: PyTorch pickles rebuild every network through
``torch_utils.persistence._reconstruct_persistent_obj`` (which would ``exec`` the source code
embedded in the file), TensorFlow pickles hold ``dnnlib.tflib.network.Network`` objects (whose
``__setstate__`` would build a TF graph from embedded source). Unpickling them normally runs that
code, and a pickle can call any importable function (``os.system``, ``builtins.eval``, ...).

:class:`SafeUnpickler` overrides :meth:`pickle.Unpickler.find_class`, the only way a pickle
reaches a Python global, with an allow-list:

* NVIDIA persistence / network / EasyDict classes become inert stubs that only record the state
  they are given (:class:`PersistentObject`, :class:`StubObject`, :class:`TFNetwork`,
  :class:`EasyDict`); embedded ``module_src`` stays a string and is never executed;
* numpy arrays, dtypes and scalars, torch tensors / parameters / storages (rebuilt through
  ``torch.load(weights_only=True)``), ``collections.OrderedDict`` and a few builtins are real;
* anything else is refused with :class:`UnsafePickleError` naming the global.
"""
from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforce_core.api import CheckpointError

__all__ = ['UnsafePickleError', 'SafeUnpickler', 'load_pickle', 'load_torch_file',
           'PersistentObject', 'StubObject', 'TFNetwork', 'EasyDict', 'module_state_dict',
           'init_kwargs']


class UnsafePickleError(CheckpointError):
    """A pickle referenced a global outside the allow-list; nothing was run."""


# --------------------------------------------------------------------------- stubs

class EasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: a dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class StubObject:
    """An instance of a foreign class (a network, a torch module): records its pickled state.

    ``stub_module`` / ``stub_name`` name the class the file referred to.
    """

    stub_module = '?'
    stub_name = '?'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    @property
    def class_name(self) -> str:
        return f'{self.stub_module}.{self.stub_name}'

    def __repr__(self) -> str:
        return f'<stub of {self.class_name}>'


class PersistentObject(StubObject):
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` would have rebuilt.

    ``meta`` holds ``class_name``, ``module_src`` (kept as text, never run), ``version`` and
    ``state`` (the object's ``__dict__``; for an ``nn.Module`` its ``_parameters``,
    ``_buffers``, ``_modules``, ... and the persistence's ``_init_kwargs``).
    """

    def __init__(self, meta: dict) -> None:
        super().__init__()
        if not isinstance(meta, dict) or meta.get('type') != 'class':
            raise UnsafePickleError(f'unexpected persistent-object record: {type(meta).__name__}')
        self.meta = meta
        self.state = meta.get('state')
        self.module_src = meta.get('module_src')

    @property
    def class_name(self) -> str:
        return str(self.meta.get('class_name'))


class TFNetwork(StubObject):
    """Stand-in for ``dnnlib.tflib.network.Network`` (and PGGAN's ``tfutil.Network``).

    Its pickled state has ``name``, ``static_kwargs``, ``variables`` (``[(name, array)]``),
    ``components`` (sub-networks) and the build function's source (kept as text).
    """

    def variables(self, prefix: str = '', by_name: bool = False) -> dict[str, np.ndarray]:
        """Every variable of this network and its components: ``key/var`` names, with ``key``
        the component's key (``mapping``), or its network name (``G_mapping``, as TF's
        ``Network.vars``) when ``by_name``."""
        state = self.state or {}
        out = {f'{prefix}{name}': np.asarray(value) for name, value in state.get('variables', [])}
        for key, comp in (state.get('components') or {}).items():
            if isinstance(comp, TFNetwork):
                head = comp.name if by_name else key
                out.update(comp.variables(f'{prefix}{head}/', by_name))
        return out

    @property
    def static_kwargs(self) -> dict:
        kwargs = dict((self.state or {}).get('static_kwargs') or {})
        for comp in ((self.state or {}).get('components') or {}).values():
            if isinstance(comp, TFNetwork):
                kwargs = {**comp.static_kwargs, **kwargs}
        return kwargs

    @property
    def name(self) -> str:
        return str((self.state or {}).get('name'))


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    return PersistentObject(meta)


def _load_storage_from_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes``: the bytes are a torch file, loaded weights-only."""
    return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)


def _codecs_encode(text: str, encoding: str = 'utf-8') -> bytes:
    """Protocol-2 pickles write ``bytes`` as ``_codecs.encode(str, 'latin1')``."""
    if codecs.lookup(encoding).name not in ('latin-1', 'iso8859-1', 'utf-8', 'ascii'):
        raise UnsafePickleError(f'refused _codecs.encode with codec {encoding!r}')
    return codecs.encode(text, encoding)


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` restricted to the stubs and plain containers."""
    if isinstance(cls, type) and issubclass(cls, StubObject):
        return cls.__new__(cls)
    if cls in (dict, list, EasyDict, collections.OrderedDict) and base in (object, cls, dict):
        return cls() if state is None else cls(state)
    raise UnsafePickleError(f'refused copyreg._reconstructor for {cls!r}')


def _rebuild_from_type_v2(func: Any, new_type: type, args: tuple, state: Any) -> Any:
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafePickleError(f'refused tensor subclass {new_type!r}')
    return func(*args)


_STUB_CLASSES: dict[tuple[str, str], type] = {}


def _stub_class(module: str, name: str, base: type = StubObject) -> type:
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(name, (base,), {'stub_module': module, 'stub_name': name,
                                                   '__module__': __name__})
    return _STUB_CLASSES[key]


# Modules whose classes become stubs: NVIDIA's network / augmentation modules and torch's
# layers (only their state is needed).
_STUB_MODULE_PREFIXES = ('training.', 'torch_utils.', 'dnnlib.', 'torch.nn.modules.',
                         'metrics.', 'networks_', 'networks.')

_EXACT: dict[str, Any] = {
    'torch_utils.persistence._reconstruct_persistent_obj': _reconstruct_persistent_obj,
    'dnnlib.EasyDict': EasyDict,
    'dnnlib.util.EasyDict': EasyDict,
    'collections.OrderedDict': collections.OrderedDict,
    'builtins.set': set,
    'builtins.frozenset': frozenset,
    'builtins.slice': slice,
    'builtins.complex': complex,
    'builtins.object': object,
    'builtins.dict': dict,
    'builtins.list': list,
    '__builtin__.set': set,
    '__builtin__.object': object,
    'copyreg._reconstructor': _reconstructor,
    'copy_reg._reconstructor': _reconstructor,
    '_codecs.encode': _codecs_encode,
    'torch.storage._load_from_bytes': _load_storage_from_bytes,
    'torch._utils._rebuild_tensor_v2': torch._utils._rebuild_tensor_v2,
    'torch._utils._rebuild_parameter': torch._utils._rebuild_parameter,
    'torch._tensor._rebuild_from_type_v2': _rebuild_from_type_v2,
    'torch.Size': torch.Size,
    'torch.device': torch.device,
    'numpy.ndarray': np.ndarray,
    'numpy.dtype': np.dtype,
    'argparse.Namespace': None,  # filled below with a stub
}
for _name in ('_rebuild_parameter_with_state', '_rebuild_tensor'):
    if hasattr(torch._utils, _name):
        _EXACT[f'torch._utils.{_name}'] = getattr(torch._utils, _name)
try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
for _core in ('numpy.core.multiarray', 'numpy._core.multiarray'):
    _EXACT[f'{_core}._reconstruct'] = _multiarray._reconstruct
    _EXACT[f'{_core}.scalar'] = _multiarray.scalar
for _dtype in ('float16', 'float32', 'float64', 'bfloat16', 'int8', 'int16', 'int32', 'int64',
               'uint8', 'bool'):
    if hasattr(torch, _dtype):
        _EXACT[f'torch.{_dtype}'] = getattr(torch, _dtype)
_EXACT['argparse.Namespace'] = _stub_class('argparse', 'Namespace')
_TF_NETWORKS = ('dnnlib.tflib.network.Network', 'tfutil.Network')


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that only resolves allow-listed globals (see the module doc)."""

    source = '<pickle>'

    def find_class(self, module: str, name: str) -> Any:
        full = f'{module}.{name}'
        if full in _EXACT:
            return _EXACT[full]
        if full in _TF_NETWORKS:
            return _stub_class(module, name, TFNetwork)
        if module.startswith('numpy') and name.startswith('dtype'):  # numpy.dtypes.Float32DType
            return np.dtype
        if module == 'numpy' and name in ('float32', 'float64', 'int64', 'int32', 'bool_',
                                          'uint8', 'float16'):
            return getattr(np, name)
        if (module.startswith(_STUB_MODULE_PREFIXES) or module in ('training', 'dnnlib')) \
                and name[:1].isupper() and name.isidentifier():
            return _stub_class(module, name)
        raise UnsafePickleError(
            f'refused to load {self.source}: it references the global {full}, which is not '
            'on the allow-list of an official GAN pickle (network stubs, numpy, torch tensors '
            'and plain data); nothing in it was run')

    # No ``persistent_load``: a plain pickle with a persistent id is refused by the base
    # class; torch.load installs its own (storages only) on the instance.


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle an official ``.pkl`` with :class:`SafeUnpickler` (never runs foreign code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path} does not exist (or is not a file)')
    with open(path, 'rb') as file:
        unpickler = SafeUnpickler(file)
        unpickler.source = str(path)
        try:
            return unpickler.load()
        except UnsafePickleError:
            raise
        except Exception as err:
            raise CheckpointError(f'{path} is not a readable pickle ({type(err).__name__}: '
                                  f'{err})') from err


class _SafePickleModule:
    """The ``pickle_module`` torch.load uses for torch-saved (zip) files from other projects:
    torch resolves its storages itself, every other global goes through the allow-list."""

    Unpickler = SafeUnpickler
    load = staticmethod(lambda file, **kwargs: SafeUnpickler(file, **kwargs).load())
    __name__ = 'genforce_converters.safe_pickle'


def load_torch_file(path: str | os.PathLike) -> Any:
    """Load a ``torch.save`` file (e.g. rosinality's checkpoints, which hold an
    ``argparse.Namespace``) through the allow-list; plain pickles are read with
    :func:`load_pickle`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path} does not exist (or is not a file)')
    try:
        return torch.load(path, map_location='cpu', weights_only=False,
                          pickle_module=_SafePickleModule)
    except UnsafePickleError as err:
        raise UnsafePickleError(str(err).replace('<pickle>', str(path))) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        if 'zip' in str(err).lower() or 'magic number' in str(err).lower():
            return load_pickle(path)
        raise CheckpointError(f'{path} is not a readable torch file ({err})') from err


# --------------------------------------------------------------------------- state dicts

def _state(obj: Any) -> dict:
    state = getattr(obj, 'state', None)
    if isinstance(state, tuple):  # (dict_state, slot_state) from __reduce_ex__
        state = state[0]
    return state if isinstance(state, dict) else {}


def module_state_dict(obj: Any, prefix: str = '') -> dict[str, torch.Tensor]:
    """The ``state_dict()`` an ``nn.Module`` stub would have: parameters and persistent buffers
    of it and its children, under dotted names."""
    if isinstance(obj, dict) and '_parameters' in obj:
        state = obj
    else:
        state = _state(obj)
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get('_non_persistent_buffers_set') or ())
    for name, value in (state.get('_parameters') or {}).items():
        if value is not None:
            out[prefix + name] = torch.as_tensor(value).detach()
    for name, value in (state.get('_buffers') or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = torch.as_tensor(value).detach()
    for name, child in (state.get('_modules') or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f'{prefix}{name}.'))
    return out


def init_kwargs(obj: Any) -> dict:
    """The constructor keyword arguments NVIDIA's persistence recorded (``_init_kwargs``)."""
    kwargs = _state(obj).get('_init_kwargs') or {}
    return _plain(kwargs)


def _plain(value: Any) -> Any:
    """EasyDicts and numpy scalars as plain Python values (for configs)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_network_pickle(source: Path, kind: str, tf_hint: str
                        ) -> tuple[dict, dict[str, tuple[StubObject, dict[str, torch.Tensor]]]]:
    """The dict of an NVIDIA PyTorch network pickle (StyleGAN2-ADA / StyleGAN3 repository) and
    ``{'G'|'G_ema'|'D': (stub, state_dict)}`` of the networks it holds, read without running
    code. ``kind`` names the expected pickle in errors; ``tf_hint`` ends the error for a
    TensorFlow pickle."""
    data = load_pickle(source)
    if isinstance(data, tuple) and data and isinstance(data[0], TFNetwork):
        raise CheckpointError(f'{source} is a TensorFlow pickle{tf_hint}')
    if not isinstance(data, dict) or not ({'G', 'G_ema'} & set(data)):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f'{source} is not a {kind} pickle: expected the keys '
                              f'G, D, G_ema; found {keys}')
    nets = {}
    for key in ('G', 'G_ema', 'D'):
        obj = data.get(key)
        if obj is None:
            continue
        if not isinstance(obj, StubObject):
            raise CheckpointError(f'{source}: {key} is a {type(obj).__name__}, not a network')
        nets[key] = (obj, module_state_dict(obj))
    return data, nets
