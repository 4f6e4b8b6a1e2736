"""VGG16 perceptual features (conv1_1 .. conv4_3 by default) for inversion losses.

The module is written here, with the parameter names of torchvision's ``vgg16`` state dict
(``features.0.weight``, ``features.0.bias``, ...), so the file torchvision publishes
(``vgg16-397923af.pth``, ImageNet-trained) loads as is; torchvision itself is not needed.

Where the weights come from, first match wins:

1. an explicit path (config ``perceptual=dict(weights=PATH)``, ``genforce invert --vgg PATH``);
2. the environment variable ``GENFORCE_VGG16_WEIGHTS``;
3. ``vgg16-397923af.pth`` in torch hub's checkpoint folder (where torchvision caches it:
   ``~/.cache/torch/hub/checkpoints/``) or in ``~/.cache/genforce/``;
4. a download from torchvision's URL when ``download=True``, checked against the SHA-256
   prefix in the file name (as torchvision checks it).

If none applies, :class:`VGGWeightsNotFoundError` says where to put the file.

The file is read by :func:`genforce_core.weight_files.load_torch_weights`: size-limited, no
compressed zip members, no pickled globals besides tensors, no TorchScript (so NVIDIA's
``vgg16.pt`` is refused, not run), then ``torch.load(weights_only=True)``; any problem is a
:class:`VGGWeightsError` naming the file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genforce_core.api import (
    GenforceError,
    WeightFileError,
    describe_state_dict_mismatch,
    load_torch_weights,
)

VGG16_URL = 'https://download.pytorch.org/models/vgg16-397923af.pth'
VGG16_FILENAME = 'vgg16-397923af.pth'
VGG16_SHA256_PREFIX = '397923af'
VGG16_ENV_VAR = 'GENFORCE_VGG16_WEIGHTS'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG16 ('D') feature stack: conv widths, 'M' = 2x2 max pooling.
_VGG16_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512)
_CONV_NAMES = ('conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3',
               'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2', 'conv5_3')


class VGGWeightsNotFoundError(GenforceError, FileNotFoundError):
    """The VGG16 weights file is missing; the message lists where to put it."""


class VGGWeightsError(WeightFileError):
    """The VGG16 weights file is unsafe, corrupt, or not torchvision's VGG16."""


def _layout() -> tuple[list[tuple[str, int, int]], dict[str, int]]:
    """``[(kind, in, out)]`` per ``features`` index and ``{conv name: index of its ReLU}``."""
    layers, relu_index, channels, conv = [], {}, 3, 0
    for item in _VGG16_CFG:
        if item == 'M':
            layers.append(('pool', channels, channels))
            continue
        layers.append(('conv', channels, item))
        layers.append(('relu', item, item))
        relu_index[_CONV_NAMES[conv]] = len(layers) - 1
        channels, conv = item, conv + 1
    return layers, relu_index


def candidate_paths() -> list[Path]:
    """Default places searched for ``vgg16-397923af.pth``."""
    return [Path(torch.hub.get_dir()) / 'checkpoints' / VGG16_FILENAME,
            Path.home() / '.cache' / 'genforce' / VGG16_FILENAME]


def resolve_vgg16_weights(path: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The VGG16 weights file to use (see the module docstring for the search order)."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise VGGWeightsNotFoundError(f'VGG16 weights file {path} does not exist. '
                                          + _where_to_put_it())
        return path
    env = os.environ.get(VGG16_ENV_VAR)
    if env:
        env_path = Path(env).expanduser()
        if not env_path.is_file():
            raise VGGWeightsNotFoundError(f'{VGG16_ENV_VAR}={env} names no file. '
                                          + _where_to_put_it())
        return env_path
    for candidate in candidate_paths():
        if candidate.is_file():
            return candidate
    if download:
        return download_vgg16_weights(candidate_paths()[-1])
    raise VGGWeightsNotFoundError('VGG16 weights for the perceptual loss were not found. '
                                  + _where_to_put_it())


def _where_to_put_it() -> str:
    places = ' or '.join(str(p) for p in candidate_paths())
    return (f'Download torchvision\'s ImageNet VGG16 ({VGG16_URL}) and either put it at '
            f'{places}, set {VGG16_ENV_VAR}=/path/to/{VGG16_FILENAME}, pass --vgg PATH to '
            "`genforce invert`, or set `perceptual=dict(weights='PATH')` in the config.")


def download_vgg16_weights(dest: str | os.PathLike) -> Path:
    """Download torchvision's VGG16 to ``dest``, verifying the SHA-256 prefix of its name."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix='.partial')
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(VGG16_URL, timeout=60) as src:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if not digest.hexdigest().startswith(VGG16_SHA256_PREFIX):
            raise GenforceError(f'{VGG16_URL} downloaded with SHA-256 {digest.hexdigest()}, '
                                f'expected a digest starting with {VGG16_SHA256_PREFIX}; the '
                                'file was discarded')
        os.replace(tmp, dest)
    except OSError as exc:
        raise VGGWeightsNotFoundError(f'could not download {VGG16_URL} ({exc}). '
                                      + _where_to_put_it()) from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


class VGG16Features(nn.Module):
    """Frozen VGG16 feature extractor on images in ``[-1, 1]`` (ImageNet normalisation inside).

    Args:
        weights: torchvision VGG16 state-dict file (None: search, see the module docstring).
        last_layer: Deepest conv layer kept (``'conv4_3'``: the perceptual feature of In-Domain
            GAN Inversion); the layers after it are not built.
        download: Download the weights when they are not found locally.
        pretrained: Load weights at all (False: torchvision's random init, for tests).
    """

    def __init__(self, weights: str | os.PathLike | None = None, last_layer: str = 'conv4_3',
                 download: bool = False, pretrained: bool = True):
        super().__init__()
        layout, self.relu_index = _layout()
        if last_layer not in self.relu_index:
            raise ValueError(f'last_layer must be one of {_CONV_NAMES}, got {last_layer!r}')
        self.last_layer = last_layer
        modules: list[nn.Module] = []
        for kind, cin, cout in layout[:self.relu_index[last_layer] + 1]:
            if kind == 'conv':
                modules.append(nn.Conv2d(cin, cout, kernel_size=3, padding=1))
            elif kind == 'relu':
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*modules)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.weights_path: Path | None = None
        for module in self.features:  # torchvision's init (used when not pretrained)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(module.bias)
        if pretrained:
            self.weights_path = resolve_vgg16_weights(weights, download=download)
            self.load_torchvision_weights(self.weights_path)
        self.requires_grad_(False).eval()

    def load_torchvision_weights(self, path: str | os.PathLike) -> None:
        """Load the ``features.*`` entries of a torchvision VGG16 state-dict file."""
        hint = f"Use torchvision's {VGG16_FILENAME} ({VGG16_URL})."
        state = load_torch_weights(path, what='VGG16 weights', hint=hint, error=VGGWeightsError)
        if isinstance(state, dict) and 'state_dict' in state:
            state = state['state_dict']
        if not isinstance(state, dict):
            raise VGGWeightsError(f'{path} holds a {type(state).__name__}, not a state dict. '
                                  + hint)
        expected = self.state_dict()
        got = {k: v for k, v in state.items() if k in expected and isinstance(v, torch.Tensor)}
        shapes = {k: getattr(v, 'shape', None) for k, v in got.items()}
        problem = describe_state_dict_mismatch({k: v.shape for k, v in expected.items()},
                                               shapes)
        if problem:
            raise VGGWeightsError(f'{path} is not a torchvision VGG16 state dict:\n{problem}')
        self.load_state_dict(got)

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # always frozen

    def forward(self, img: torch.Tensor,
                layers: Sequence[str] | None = None) -> list[torch.Tensor]:
        """Features (after ReLU) of the named conv layers, default ``[last_layer]``."""
        layers = list(layers or [self.last_layer])
        wanted = {self.relu_index[name]: i for i, name in enumerate(layers)}
        if max(wanted) >= len(self.features):
            raise ValueError(f'layers {layers} go past last_layer={self.last_layer!r}')
        x = ((img.float() + 1) / 2 - self.mean) / self.std
        out: list[torch.Tensor | None] = [None] * len(layers)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index >= max(wanted):
                break
        return out  # type: ignore[return-value]


def fit_for_vgg(img: torch.Tensor, max_resolution: int = 256) -> torch.Tensor:
    """Area-downsample images larger than ``max_resolution`` (as NVIDIA's projector does
    before its VGG16), so perceptual losses work at VGG's scale."""
    if img.shape[-1] > max_resolution:
        img = F.adaptive_avg_pool2d(img, (max_resolution, max_resolution))
    return img


def normalized_feature_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS-style distance per image, ``[N]``: for each layer, features are scaled to unit
    length over channels at every position; squared differences are summed over channels,
    averaged over positions, and summed over layers (LPIPS with uniform layer weights)."""
    total = 0
    for fa, fb in zip(a, b):
        na = fa / (fa.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
        nb = fb / (fb.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
        total = total + (na - nb).square().sum(dim=1).mean(dim=[1, 2])
    return total  # type: ignore[return-value]
