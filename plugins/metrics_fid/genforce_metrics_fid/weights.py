"""Inception weights: find, download (sha256-checked) and load both common weight files.

* pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``: a state dict with torchvision
  names (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ``fc.weight``);
* NVIDIA's TorchScript ``inception-2015-12-05.pt`` (StyleGAN2-ADA / StyleGAN3): a zip archive
  whose parameters carry the TF graph's names (``layers.conv``, ``layers.mixed_9.tower.mixed
  .conv_1``, ``output.weight``). Its tensors are read from the archive's pickled module state
  with a restricted unpickler that builds nothing but tensors and plain containers: the file's
  TorchScript code is never run.

Either file is first checked by :func:`genforce_core.weight_files.check_weight_file` (size
limit, no compressed zip members, no pickled globals besides tensors), so a hostile file is
refused with :class:`InceptionWeightsError` naming it before anything in it is run or inflated.

Where the weights come from, first match wins: the ``path`` argument (a config's
``inception=...`` or ``--inception PATH``), ``$GENFORCE_INCEPTION_WEIGHTS``, a file already in
the cache folder (``$GENFORCE_CACHE_DIR/inception``, default ``~/.cache/genforce/inception``),
or a download from :data:`DEFAULT_URL` checked against its sha256.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import os.path as osp
import pickle
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import torch

from genforce_core.api import (
    WeightFileError,
    check_weight_file,
    clean_torch_message,
    is_zip_archive,
    load_torch_weights,
)

from .inception import InceptionV3FID

ENV_WEIGHTS = 'GENFORCE_INCEPTION_WEIGHTS'
ENV_CACHE = 'GENFORCE_CACHE_DIR'
NVIDIA_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/'
              'inception-2015-12-05.pt')
DEFAULT_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
               'pt_inception-2015-12-05-6726825d.pth')
# Known files: name -> sha256 prefix (pytorch-fid names its file after its hash, torch.hub's
# convention). A download whose hash does not start with it is deleted and refused.
KNOWN_SHA256_PREFIX = {'pt_inception-2015-12-05-6726825d.pth': '6726825d'}
FILE_NAMES = ('inception-2015-12-05.pt', 'pt_inception-2015-12-05-6726825d.pth')


WHAT = 'Inception weights'
HINT = f"Use NVIDIA's {NVIDIA_URL} or pytorch-fid's {DEFAULT_URL}."


class InceptionWeightsError(WeightFileError):
    """The Inception weights are missing, unsafe, corrupt, or not an Inception file we know."""


def cache_dir() -> Path:
    root = os.environ.get(ENV_CACHE) or osp.join(osp.expanduser('~'), '.cache', 'genforce')
    return Path(root) / 'inception'


def resolve_weights(path: str | os.PathLike | None = None, *, url: str | None = DEFAULT_URL,
                    download: bool = True) -> Path:
    """The local path of the Inception weights (see the module doc for the search order)."""
    where = cache_dir()
    for source, candidate in (('argument', path), (f'${ENV_WEIGHTS}', os.environ.get(ENV_WEIGHTS))):
        if candidate:
            if not osp.isfile(candidate):
                raise InceptionWeightsError(
                    f'Inception weights {candidate} (from the {source}) do not exist. Download '
                    f'{NVIDIA_URL} or {DEFAULT_URL} and pass its path, or put it in {where}/.')
            return Path(candidate)
    for name in FILE_NAMES:
        if (where / name).is_file():
            return where / name
    if download and url:
        try:
            return download_weights(url, where)
        except (OSError, ValueError) as exc:
            reason = f'downloading {url} failed ({exc})'
    else:
        reason = 'downloads are off'
    raise InceptionWeightsError(
        f'No Inception weights found and {reason}. Download {NVIDIA_URL} (or {DEFAULT_URL}) '
        f'on a machine with internet and put it at {where / FILE_NAMES[0]} (or '
        f'{where / FILE_NAMES[1]}), or point ${ENV_WEIGHTS} / the config field inception= / '
        '--inception PATH at it.')


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def download_weights(url: str, dest_dir: str | os.PathLike, sha256: str | None = None) -> Path:
    """Download ``url`` into ``dest_dir`` and check its sha256 (the full ``sha256``, or the
    known prefix for the file name). ``file://`` URLs work too."""
    name = osp.basename(urllib.parse.urlparse(url).path)
    expected = sha256 or KNOWN_SHA256_PREFIX.get(name)
    if not expected:
        raise ValueError(f'no known sha256 for {name}; pass sha256= to download it')
    dest = Path(dest_dir) / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f'.{name}.')
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        actual = sha256_of(tmp)
        if not actual.startswith(expected.lower()):
            raise ValueError(f'sha256 of the downloaded {name} is {actual}, expected '
                             f'{expected}...; the file was deleted')
        os.replace(tmp, dest)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return dest


# ---------------------------------------------------------------------------------- loading
def load_inception(path: str | os.PathLike | None = None, *, device='cpu',
                   download: bool = True) -> InceptionV3FID:
    """An :class:`InceptionV3FID` holding the weights of ``path`` (either format; see
    :func:`resolve_weights` for where the file is looked for)."""
    path = resolve_weights(path, download=download)
    if _archive_pickle(path, torchscript_only=True) is not None:
        state = torchscript_to_state_dict(read_torchscript_tensors(path), where=str(path))
    else:  # both read paths check the file first (size, zip members, pickled globals)
        state = load_torch_weights(path, what=WHAT, hint=HINT, error=InceptionWeightsError)
    net = InceptionV3FID()
    load_state_dict_checked(net, state, where=str(path))
    net.weights_path = str(path)
    return net.to(device)


def load_state_dict_checked(net: InceptionV3FID, state: dict, where: str) -> None:
    """Load a torchvision-named state dict; BN ``weight`` defaults to 1 (the TF graph has
    no scale) and ``num_batches_tracked`` is optional. Mismatches name the keys."""
    if not isinstance(state, dict):
        raise InceptionWeightsError(f'{where} holds a {type(state).__name__}, not a state dict.')
    own = net.state_dict()
    state = dict(state)
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise InceptionWeightsError(f'{where} is not a state dict of tensors: {not_tensors[:5]} '
                                    f'are not tensors. {HINT}')
    for key, value in list(state.items()):  # a TF-layout (HWIO) kernel is accepted too
        if (key in own and value.ndim == 4 and value.shape != own[key].shape
                and value.permute(3, 2, 0, 1).shape == own[key].shape):
            state[key] = value.permute(3, 2, 0, 1).contiguous()
    for key, value in own.items():
        if key not in state and (key.endswith('num_batches_tracked')
                                 or key.endswith('bn.weight')):
            state[key] = torch.ones_like(value) if key.endswith('weight') else value
    missing = sorted(set(own) - set(state))
    unexpected = sorted(map(str, set(state) - set(own)))
    wrong = [f'{k} {tuple(state[k].shape)} != {tuple(v.shape)}' for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        raise InceptionWeightsError(
            f'{where} does not fit the FID Inception network: missing {missing[:5]} '
            f'({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), '
            f'wrong shapes {wrong[:5]}. Use pytorch-fid\'s pt_inception-2015-12-05-*.pth or '
            'NVIDIA\'s inception-2015-12-05.pt.')
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


# ------------------------------------------------------------ TorchScript archive (no code)
_STORAGE_DTYPES = {
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64,
    'HalfStorage': torch.float16, 'BFloat16Storage': torch.bfloat16,
    'LongStorage': torch.int64, 'IntStorage': torch.int32, 'ShortStorage': torch.int16,
    'CharStorage': torch.int8, 'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
}


class _ScriptObject:
    """Stand-in for a pickled ``__torch__.*`` module: keeps its attribute dict, runs nothing."""

    def __init__(self, *args):
        self.state: dict = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {'_state': state}


def _first_argument(value, *args):
    """Stand-in for TorchScript's list tags (``build_intlist``, ``restore_type_tag``...)."""
    return value


_LIST_TAGS = ('build_intlist', 'build_doublelist', 'build_boollist', 'build_tensorlist',
              'restore_type_tag')


def _rebuild_tensor(storage, offset, size, stride, *args):
    """A view of the storage (no copy: a hostile file referencing one storage many times, or
    with zero strides, must not multiply memory); torch checks that it stays inside."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError(f'a tensor over a {type(storage).__name__}, not a storage')
    if math.prod(size) > max(storage.numel(), 1):
        raise pickle.UnpicklingError(f'a tensor of shape {tuple(size)} over a storage of '
                                     f'{storage.numel()} elements')
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, where: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.where = archive, prefix, where
        self.storages: dict[str, torch.Tensor] = {}  # each record is read once

    def find_class(self, module: str, name: str):
        if module.startswith('__torch__'):
            return _ScriptObject
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return _rebuild_tensor
        if module == 'torch.jit._pickle' and name in _LIST_TAGS:
            return _first_argument
        if (module, name) == ('collections', 'OrderedDict'):
            return dict
        if module == 'torch' and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ('torch', 'device'):
            return str
        raise InceptionWeightsError(f'refused {WHAT} file {self.where}: it references '
                                    f'{module}.{name}, which the archive reader does not build '
                                    f'(only tensors and module attributes); nothing in it was '
                                    f'run. {HINT}')

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != 'storage' or not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f'{self.where}: unsupported storage {pid!r}')
        key = f'{self.prefix}data/{key}'
        if key not in self.storages:
            raw = bytearray(self.archive.read(key))  # sizes were checked: stored, bounded
            self.storages[key] = torch.frombuffer(raw, dtype=dtype, count=numel) if numel \
                else torch.empty(0, dtype=dtype)
        return self.storages[key]


def _archive_pickle(path, torchscript_only: bool = False) -> str | None:
    """The ``<prefix>/data.pkl`` entry of a zip archive (with ``torchscript_only``: only if
    the archive also holds TorchScript's ``<prefix>/code/`` or ``constants.pkl``, which a
    ``torch.save`` zip does not)."""
    if not is_zip_archive(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None  # the checks before loading say what is wrong with it
    for name in names:
        if name.endswith('/data.pkl') and name.count('/') == 1:
            prefix = name[:-len('data.pkl')]
            if not torchscript_only or any(
                    n.startswith(prefix + 'code/') or n == prefix + 'constants.pkl'
                    for n in names):
                return name
    return None


def read_torchscript_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript archive's module tree, by dotted name, read
    without executing the archive's code (after :func:`check_weight_file`)."""
    check_weight_file(path, what=WHAT, hint=HINT, error=InceptionWeightsError)
    pkl = _archive_pickle(path)
    if pkl is None:
        raise InceptionWeightsError(f'{path} is not a TorchScript archive (no data.pkl).')
    prefix = pkl[:-len('data.pkl')]
    try:
        with zipfile.ZipFile(path) as archive:
            root = _RestrictedUnpickler(archive.read(pkl), archive, prefix, str(path)).load()
    except InceptionWeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken archive, whatever the symptom
        detail = clean_torch_message(exc)
    else:
        return _named_tensors(root)
    # Raised outside the handler, so no chained traceback repeats the raw error.
    raise InceptionWeightsError(f'{WHAT} file {path} is a corrupt TorchScript archive '
                                f'({detail}). {HINT}')


def _named_tensors(root) -> dict[str, torch.Tensor]:
    """Tensors of a tree of :class:`_ScriptObject`, by dotted name. Iterative, and each object
    is visited once: a hostile pickle may nest deeply or refer back to itself."""
    tensors: dict[str, torch.Tensor] = {}
    todo, seen = [('', root)], set()
    while todo:
        name, obj = todo.pop()
        if isinstance(obj, torch.Tensor):
            tensors[name] = obj
        elif isinstance(obj, _ScriptObject) and id(obj) not in seen:
            seen.add(id(obj))
            todo += [(f'{name}.{key}' if name else str(key), value)
                     for key, value in obj.state.items()]
    return tensors


def _tf_names() -> dict[str, str]:
    """torchvision module name of each conv → its TF graph (NVIDIA archive) module name."""
    names = {'Conv2d_1a_3x3': 'layers.conv', 'Conv2d_2a_3x3': 'layers.conv_1',
             'Conv2d_2b_3x3': 'layers.conv_2', 'Conv2d_3b_1x1': 'layers.conv_3',
             'Conv2d_4a_3x3': 'layers.conv_4'}
    block_a = {'branch1x1': 'conv', 'branch5x5_1': 'tower.conv', 'branch5x5_2': 'tower.conv_1',
               'branch3x3dbl_1': 'tower_1.conv', 'branch3x3dbl_2': 'tower_1.conv_1',
               'branch3x3dbl_3': 'tower_1.conv_2', 'branch_pool': 'tower_2.conv'}
    block_b = {'branch3x3': 'conv', 'branch3x3dbl_1': 'tower.conv',
               'branch3x3dbl_2': 'tower.conv_1', 'branch3x3dbl_3': 'tower.conv_2'}
    block_c = {'branch1x1': 'conv', 'branch7x7_1': 'tower.conv', 'branch7x7_2': 'tower.conv_1',
               'branch7x7_3': 'tower.conv_2', 'branch7x7dbl_1': 'tower_1.conv',
               'branch_pool': 'tower_2.conv'}
    block_c.update({f'branch7x7dbl_{i}': f'tower_1.conv_{i - 1}' for i in range(2, 6)})
    block_d = {'branch3x3_1': 'tower.conv', 'branch3x3_2': 'tower.conv_1',
               'branch7x7x3_1': 'tower_1.conv', 'branch7x7x3_2': 'tower_1.conv_1',
               'branch7x7x3_3': 'tower_1.conv_2', 'branch7x7x3_4': 'tower_1.conv_3'}
    block_e = {'branch1x1': 'conv', 'branch3x3_1': 'tower.conv',
               'branch3x3_2a': 'tower.mixed.conv', 'branch3x3_2b': 'tower.mixed.conv_1',
               'branch3x3dbl_1': 'tower_1.conv', 'branch3x3dbl_2': 'tower_1.conv_1',
               'branch3x3dbl_3a': 'tower_1.mixed.conv', 'branch3x3dbl_3b': 'tower_1.mixed.conv_1',
               'branch_pool': 'tower_2.conv'}
    blocks = [('Mixed_5b', block_a), ('Mixed_5c', block_a), ('Mixed_5d', block_a),
              ('Mixed_6a', block_b), ('Mixed_6b', block_c), ('Mixed_6c', block_c),
              ('Mixed_6d', block_c), ('Mixed_6e', block_c), ('Mixed_7a', block_d),
              ('Mixed_7b', block_e), ('Mixed_7c', block_e)]
    for i, (block, table) in enumerate(blocks):
        mixed = 'layers.mixed' + (f'_{i}' if i else '')
        names.update({f'{block}.{k}': f'{mixed}.{v}' for k, v in table.items()})
    return names


TF_NAMES = _tf_names()


def _bn_role(leaf: str) -> str | None:
    leaf = leaf.lower()
    if 'var' in leaf:
        return 'running_var'
    if 'mean' in leaf:
        return 'running_mean'
    if 'beta' in leaf or 'bias' in leaf or 'offset' in leaf:
        return 'bias'
    if 'gamma' in leaf or 'weight' in leaf or 'scale' in leaf:
        return 'weight'
    return None


def torchscript_to_state_dict(tensors: dict[str, torch.Tensor], where: str) -> dict:
    """Map the TF-named tensors of NVIDIA's archive onto torchvision names.

    Under each conv module's name: the 4-D tensor is the convolution weight (OIHW), the 1-D
    ones are the batch norm's ``beta``/``mean``/``var`` (and ``gamma`` if present), told apart
    by their attribute names. ``output.weight``/``output.bias`` are the 1008-way classifier.
    """
    state: dict[str, torch.Tensor] = {}
    for ours, theirs in TF_NAMES.items():
        # No TF conv name is a dotted prefix of another, so everything below is this conv's.
        found = {k[len(theirs) + 1:]: v for k, v in tensors.items()
                 if k.startswith(theirs + '.')}
        weights = [k for k, v in found.items() if v.ndim == 4]
        if len(weights) != 1:
            raise InceptionWeightsError(
                f'{where}: expected one 4-D convolution weight under {theirs!r} (for {ours}), '
                f'found {sorted(found) or "nothing"}; is this NVIDIA\'s inception-2015-12-05.pt?')
        state[f'{ours}.conv.weight'] = found[weights[0]]
        for leaf, value in found.items():
            role = _bn_role(leaf.rsplit('.', 1)[-1]) if value.ndim == 1 else None
            if role:
                state[f'{ours}.bn.{role}'] = value
    weight = tensors.get('output.weight')
    if weight is None:
        raise InceptionWeightsError(f'{where}: no output.weight (the 1008-way classifier).')
    state['fc.weight'] = weight.t() if weight.shape[0] == 2048 else weight
    state['fc.bias'] = tensors.get('output.bias', torch.zeros(state['fc.weight'].shape[0]))
    return state
