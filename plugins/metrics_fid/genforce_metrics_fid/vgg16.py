"""VGG16 of NVIDIA's precision/recall and LPIPS (perceptual path length), and its weight files.

The network is torchvision's VGG16 ('D'): 13 3x3 convolutions with ReLU in five blocks, each
closed by a 2x2 max pool, then ``fc1`` and ``fc2`` (4096, ReLU). Module names are
torchvision's (``features.0.weight`` ... ``classifier.3.bias``) so its state dict loads as is.

* Precision/recall features (:meth:`VGG16.forward`): uint8 (or float in [0, 255]) RGB images
  of any size, resized to 224x224 with TF-1 ``resize_bilinear`` (as NVIDIA's ``vgg16.pt``
  does), scaled to [0, 1] and normalised with the ImageNet mean and std, → ``fc2`` after its
  ReLU, 4096-d.
* LPIPS (:mod:`.lpips`): the outputs of ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3`` and
  ``relu5_3`` (no resize), weighted per channel by the learned linear layers of Zhang et al.

Weight files, either works (read without running anything in them: see
:func:`genforce_core.weight_files.check_weight_file`):

* NVIDIA's TorchScript ``vgg16.pt`` (StyleGAN2-ADA / StyleGAN3 metrics): the convolutions, the
  fully connected layers and the LPIPS weights in one file (``layers.conv1`` ... ``lpips4``).
  Its tensors are read from the archive by a restricted unpickler; its code is never run.
* torchvision's ``vgg16-397923af.pth`` (the file the inversion plugin reads too); for LPIPS
  with the ``lpips`` package's linear layers, ``weights/v0.1/vgg.pth`` (7 kB, inside the
  ``lpips`` wheel), found in an installed ``lpips`` package without importing it.

Where the VGG16 file comes from, first match wins: the ``vgg16=PATH`` argument (metric
option, ``--vgg16``), ``$GENFORCE_VGG16_WEIGHTS``, ``$GENFORCE_CACHE_DIR/vgg16/`` (default
``~/.cache/genforce/vgg16/``) holding ``vgg16.pt`` or ``vgg16-397923af.pth``, torchvision's
cache (``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth``), then a download of NVIDIA's
``vgg16.pt`` checked against its sha256. The LPIPS file: ``lpips=PATH`` (``--lpips``),
``$GENFORCE_LPIPS_WEIGHTS``, ``$GENFORCE_CACHE_DIR/lpips/vgg.pth``, an installed ``lpips``
package, then a download of the package's file checked against its sha256.
"""
from __future__ import annotations

import importlib.util
import os
import os.path as osp
import re
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genforce_core.api import (
    WeightFileError,
    check_weight_file,
    clean_torch_message,
    is_torchscript_archive,
    load_torch_weights,
)

from .inception import tf_resize_bilinear

ENV_VGG16 = 'GENFORCE_VGG16_WEIGHTS'  # shared with the inversion plugin
ENV_LPIPS = 'GENFORCE_LPIPS_WEIGHTS'
ENV_CACHE = 'GENFORCE_CACHE_DIR'
NVIDIA_FILE = 'vgg16.pt'
NVIDIA_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/'
              + NVIDIA_FILE)
NVIDIA_SHA256 = 'b437eb095feaeb0b83eb3fa11200ebca4548ee39a07fb944a417ddc516cc07c3'
TORCHVISION_FILE = 'vgg16-397923af.pth'
TORCHVISION_URL = 'https://download.pytorch.org/models/' + TORCHVISION_FILE
LPIPS_FILE = 'vgg.pth'
LPIPS_URL = ('https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/'
             'v0.1/vgg.pth')
LPIPS_SHA256 = 'a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868'

INPUT_SIZE = 224
WIDTHS = (64, 128, 256, 512, 512)  # channels of the five blocks
CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
FC_DIM = 4096
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

VGG16_HINT = (f"Use NVIDIA's {NVIDIA_URL} or torchvision's {TORCHVISION_URL}, passed with "
              f'--vgg16 PATH / the metric option vgg16=PATH or ${ENV_VGG16}.')
LPIPS_HINT = (f"Use the lpips package's weights/v0.1/vgg.pth ({LPIPS_URL}, also inside "
              f'`pip download lpips`), passed with --lpips PATH / the metric option lpips=PATH '
              f'or ${ENV_LPIPS}; or use NVIDIA\'s {NVIDIA_FILE}, which holds them.')


class VGG16WeightsError(WeightFileError):
    """VGG16 or LPIPS weights are missing, unsafe, corrupt, or not the network we need."""


class VGG16(nn.Module):
    """VGG16 feature network (see the module doc).

    Args:
        widths: Channels of the five blocks (tests shrink them; files fix them).
        fc_dim: Width of ``fc1`` and ``fc2``; 0 builds no classifier (LPIPS only).
        lpips: Hold the LPIPS per-channel weights (buffers ``lpips0`` ... ``lpips4``).
    """

    def __init__(self, widths=WIDTHS, fc_dim: int = FC_DIM, lpips: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        self.block_ends: list[int] = []  # index of each block's last ReLU (relu1_2, ...)
        channels = 3
        for width, count in zip(widths, CONVS_PER_BLOCK):
            for _ in range(count):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
                channels = width
            self.block_ends.append(len(layers) - 1)
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)  # same indices as torchvision's vgg16
        self.widths, self.fc_dim = tuple(widths), fc_dim
        if fc_dim:
            self.classifier = nn.Sequential(nn.Linear(channels * 49, fc_dim), nn.ReLU(),
                                            nn.Dropout(), nn.Linear(fc_dim, fc_dim), nn.ReLU())
        self.has_lpips = lpips
        if lpips:
            for i, width in enumerate(widths):
                self.register_buffer(f'lpips{i}', torch.ones(width))
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255,
                             persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255,
                             persistent=False)
        self.input_size = INPUT_SIZE  # tests may shrink it
        self.weights_path: str | None = None
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> VGG16:
        return super().train(False)  # always frozen: dropout stays off

    def normalize(self, img: torch.Tensor) -> torch.Tensor:
        """``[N, 1 or 3, H, W]`` in [0, 255] → ImageNet-normalised float RGB."""
        if img.ndim != 4 or img.shape[1] not in (1, 3):
            raise ValueError(f'expected images [N, 3, H, W] (or 1 channel), got '
                             f'{tuple(img.shape)}')
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        x = img.to(self.mean.dtype)
        return (x - self.mean) / self.std

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five blocks' last ReLU outputs (``relu1_2`` ... ``relu5_3``) of normalised
        input."""
        outputs = []
        for index, layer in enumerate(self.features[:self.block_ends[-1] + 1]):
            x = layer(x)
            if index in self.block_ends:
                outputs.append(x)
        return outputs

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``fc2`` features after ReLU ``[N, fc_dim]`` (float32) of uint8 RGB images."""
        if not self.fc_dim:
            raise ValueError('this VGG16 was built without its fully connected layers')
        x = tf_resize_bilinear(img.to(self.mean.dtype), self.input_size)
        x = self.features(self.normalize(x))
        x = F.adaptive_avg_pool2d(x, 7).flatten(1)
        return self.classifier(x).float()

    def lpips_weights(self) -> list[torch.Tensor]:
        if not self.has_lpips:
            raise VGG16WeightsError('this VGG16 holds no LPIPS weights. ' + LPIPS_HINT)
        return [getattr(self, f'lpips{i}') for i in range(len(self.widths))]


# ------------------------------------------------------------------------- finding files
def cache_root() -> Path:
    return Path(os.environ.get(ENV_CACHE) or osp.join(osp.expanduser('~'), '.cache',
                                                      'genforce'))


def vgg16_candidates() -> list[Path]:
    """Default places of the VGG16 file, searched in order."""
    return [cache_root() / 'vgg16' / NVIDIA_FILE, cache_root() / 'vgg16' / TORCHVISION_FILE,
            Path(torch.hub.get_dir()) / 'checkpoints' / TORCHVISION_FILE]


def lpips_candidates() -> list[Path]:
    """Default places of the LPIPS linear layers: the cache, then an installed ``lpips``."""
    places = [cache_root() / 'lpips' / LPIPS_FILE]
    spec = importlib.util.find_spec('lpips')  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        places.append(Path(folder) / 'weights' / 'v0.1' / LPIPS_FILE)
    return places


def _resolve(what: str, path, env: str, candidates: list[Path], url: str, sha256: str,
             hint: str, download: bool) -> Path:
    for source, given in (('argument', path), (f'${env}', os.environ.get(env))):
        if given:
            if not osp.isfile(given):
                raise VGG16WeightsError(f'{what} {given} (from the {source}) does not exist. '
                                        + hint)
            return Path(given)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if download:
        from .weights import download_weights
        try:
            return download_weights(url, candidates[0].parent, sha256=sha256)
        except (OSError, ValueError) as exc:
            reason = f'downloading {url} failed ({exc})'
    else:
        reason = 'downloads are off'
    places = ', '.join(str(c) for c in candidates)
    raise VGG16WeightsError(f'No {what} found ({places}) and {reason}. Put the file at '
                            f'{candidates[0]}. {hint}')


def resolve_vgg16(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The VGG16 weights file (see the module doc for the search order)."""
    return _resolve('VGG16 weights', path, ENV_VGG16, vgg16_candidates(), NVIDIA_URL,
                    NVIDIA_SHA256, VGG16_HINT, download)


def resolve_lpips(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The LPIPS linear-layer file ``vgg.pth`` (see the module doc for the search order)."""
    return _resolve('LPIPS weights', path, ENV_LPIPS, lpips_candidates(), LPIPS_URL,
                    LPIPS_SHA256, LPIPS_HINT, download)


# ------------------------------------------------------------------------------ loading
_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision's


def nvidia_to_torchvision(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the tensors of NVIDIA's ``vgg16.pt`` (``layers.conv1.weight`` ...
    ``layers.fc2.bias``, ``lpips0`` ...) to this module's names."""
    state = {}
    for number, index in enumerate(_CONV_INDICES, start=1):
        for kind in ('weight', 'bias'):
            key = f'layers.conv{number}.{kind}'
            if key in tensors:
                state[f'features.{index}.{kind}'] = tensors[key]
    for number, index in ((1, 0), (2, 3)):
        for kind in ('weight', 'bias'):
            key = f'layers.fc{number}.{kind}'
            if key in tensors:
                state[f'classifier.{index}.{kind}'] = tensors[key]
    for i in range(5):
        if f'lpips{i}' in tensors:
            state[f'lpips{i}'] = tensors[f'lpips{i}'].reshape(-1)
    return state


def read_torchscript_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a TorchScript archive by dotted name, read after
    :func:`check_weight_file` by the Inception reader's restricted unpickler (tensors and
    module attributes only; the archive's code is never run)."""
    from . import weights as inception_weights

    check_weight_file(path, what='VGG16 weights', hint=VGG16_HINT, error=VGG16WeightsError)
    pkl = inception_weights._archive_pickle(path)
    if pkl is None:
        raise VGG16WeightsError(f'{path} is not a TorchScript archive (no data.pkl). '
                                + VGG16_HINT)
    prefix = pkl[:-len('data.pkl')]
    try:
        with zipfile.ZipFile(path) as archive:
            root = inception_weights._RestrictedUnpickler(archive.read(pkl), archive, prefix,
                                                          str(path)).load()
    except inception_weights.InceptionWeightsError as exc:  # a global it does not build
        found = re.search(r'references (\S+),', str(exc))
        detail = f'it references {found.group(1) if found else "a global"}, which is not a ' \
                 'tensor or module attribute'
    except Exception as exc:  # noqa: BLE001 - a broken archive, whatever the symptom
        detail = clean_torch_message(exc)
    else:
        return inception_weights._named_tensors(root)
    # Raised outside the handler, so no chained traceback repeats the raw error.
    raise VGG16WeightsError(f'refused VGG16 weights file {path}: {detail}; nothing in it was '
                            f'run. {VGG16_HINT}')


def read_lpips_weights(path: str | os.PathLike) -> list[torch.Tensor]:
    """The five per-channel weight vectors of the ``lpips`` package's ``vgg.pth``."""
    state = load_torch_weights(path, what='LPIPS weights', hint=LPIPS_HINT,
                               error=VGG16WeightsError)
    if not isinstance(state, dict):
        raise VGG16WeightsError(f'{path} holds a {type(state).__name__}, not a state dict. '
                                + LPIPS_HINT)
    found = []
    for i in range(5):
        value = state.get(f'lin{i}.model.1.weight', state.get(f'lin{i}.model.0.weight'))
        if not isinstance(value, torch.Tensor):
            raise VGG16WeightsError(f'{path} has no lin{i}.model.1.weight: it is not the '
                                    f'lpips package\'s vgg.pth. ' + LPIPS_HINT)
        found.append(value.reshape(-1))
    return found


def _widths_of(state: dict, where: str) -> tuple[tuple[int, ...], int]:
    """Block widths and ``fc_dim`` of a torchvision-named state dict."""
    try:
        widths = tuple(int(state[f'features.{i}.weight'].shape[0]) for i in (0, 5, 10, 17, 24))
    except (KeyError, AttributeError, IndexError):
        raise VGG16WeightsError(f'{where} is not a VGG16: it lacks the first convolution of a '
                                f'block (features.0/5/10/17/24.weight). {VGG16_HINT}') from None
    fc = state.get('classifier.0.weight')
    return widths, int(fc.shape[0]) if isinstance(fc, torch.Tensor) else 0


def vgg16_from_state_dict(state: dict, where: str, *, classifier: bool,
                          lpips: list[torch.Tensor] | None = None) -> VGG16:
    """A :class:`VGG16` holding ``state`` (torchvision names) and the LPIPS weights; keys or
    shapes that do not fit are named in the error."""
    if not isinstance(state, dict):
        raise VGG16WeightsError(f'{where} holds a {type(state).__name__}, not a state dict. '
                                + VGG16_HINT)
    widths, fc_dim = _widths_of(state, where)
    if classifier and not fc_dim:
        raise VGG16WeightsError(f'{where} has no fully connected layers (classifier.0 / '
                                f'layers.fc1), which precision/recall needs. {VGG16_HINT}')
    net = VGG16(widths, fc_dim=fc_dim if classifier else 0, lpips=lpips is not None)
    own = net.state_dict()
    if lpips is not None:
        state = dict(state, **{f'lpips{i}': w for i, w in enumerate(lpips)})
    picked = {k: state[k] for k in own if k in state}
    missing = sorted(set(own) - set(picked))
    wrong = [f'{k} {tuple(picked[k].shape)} != {tuple(v.shape)}' for k, v in own.items()
             if k in picked and tuple(getattr(picked[k], 'shape', ())) != tuple(v.shape)]
    if missing or wrong:
        raise VGG16WeightsError(f'{where} does not fit VGG16: missing {missing[:5]} '
                                f'({len(missing)}), wrong shapes {wrong[:5]}. {VGG16_HINT}')
    net.load_state_dict({k: v.float() for k, v in picked.items()})
    return net


def load_vgg16(path: str | os.PathLike | None = None, *, lpips: bool = False,
               lpips_path: str | os.PathLike | None = None, classifier: bool = True,
               device='cpu', download: bool = True) -> VGG16:
    """The VGG16 of precision/recall (``classifier``) and/or LPIPS (``lpips``) from NVIDIA's
    ``vgg16.pt`` or torchvision's ``vgg16-397923af.pth`` (+ the lpips package's ``vgg.pth``
    for LPIPS). See the module doc for where the files are looked for."""
    path = resolve_vgg16(path, download=download)
    lpips_weights = None
    if is_torchscript_archive(path):
        state = nvidia_to_torchvision(read_torchscript_tensors(path))
        if lpips and lpips_path is None and all(f'lpips{i}' in state for i in range(5)):
            lpips_weights = [state[f'lpips{i}'] for i in range(5)]
    else:
        state = load_torch_weights(path, what='VGG16 weights', hint=VGG16_HINT,
                                   error=VGG16WeightsError)
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
    if lpips and lpips_weights is None:
        lpips_weights = read_lpips_weights(resolve_lpips(lpips_path, download=download))
    net = vgg16_from_state_dict(state, str(path), classifier=classifier, lpips=lpips_weights)
    net.weights_path = str(path)
    return net.to(device)


def random_vgg16(seed: int = 0, widths=WIDTHS, fc_dim: int = FC_DIM, lpips: bool = False,
                 input_size: int = INPUT_SIZE) -> VGG16:
    """A VGG16 with random weights (He-initialised convolutions; reproducible per seed), for
    tests: features differ between images like a trained network's do."""
    generator = torch.Generator().manual_seed(seed)
    net = VGG16(widths, fc_dim=fc_dim, lpips=lpips)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith('weight') and tensor.ndim > 1:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator)
                             * (2.0 / fan_in) ** 0.5)
            elif name.endswith('bias'):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.01)
            elif name.startswith('lpips'):
                tensor.copy_(torch.rand(tensor.shape, generator=generator))
    net.input_size = input_size
    return net
