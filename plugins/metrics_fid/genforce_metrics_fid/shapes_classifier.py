"""A small CNN that recognises the built-in shapes dataset's shape, colour and ground.

It is the detector of the ``ShapesQuality`` metric (:mod:`.shapes_quality`): trained once,
deterministically, on freshly drawn built-in images (not the 4000 training images of
``builtin:shapes32``), and cached as ``$GENFORCE_CACHE_DIR/shapes_classifier/
classifier-<key>.pth``, where ``<key>`` hashes the built-in generator's version and the training
recipe, so a change to either retrains it. A damaged cache file is retrained and replaced.

Confidence has to mean "one clean shape of a palette colour on a palette ground", so each
batch of clean images (one-hot targets on the three heads) comes with images that are not:
blends of two images (mixup: the targets blend too, so a half-circle-half-square is neither),
wobbly blobs of a palette colour on a palette ground (colour and ground known, shape uniform:
the round blobs of a half-trained GAN are no circles) and colour noise as untrained generators
draw it (uniform targets).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn
from torch.nn import functional as F

from genforce_core.api import (
    BACKGROUNDS,
    GENERATOR_VERSION,
    SHAPE_CLASSES,
    SHAPE_COLOURS,
    CheckpointError,
    load_checkpoint,
    make_shapes_samples,
    save_checkpoint,
)

from .scores import MetricError

CLASSIFIER_RESOLUTION = 32  # the classifier's input; larger images are area-downsampled
HEADS = {'shape': len(SHAPE_CLASSES), 'colour': len(SHAPE_COLOURS), 'ground': len(BACKGROUNDS)}
# Everything that decides the trained weights; any change gives a new cache key.
RECIPE = dict(version=1, width=(16, 32, 64), feature_dim=64, train_images=12000,
              train_seed=9001, heldout_images=2000, heldout_seed=9002, epochs=8,
              batch_size=128, lr=0.01, outliers_per_batch=64, mixup=(0.3, 0.7), blob_pool=2000,
              wobble=(0.3, 0.5), torch_seed=0)
REFERENCE = dict(images=5000, seed=9003)  # real images whose features the FD compares with


class ShapesClassifier(nn.Module):
    """``x [N, 3, 32, 32]`` in [-1, 1] → ``{'shape': logits [N, 3], 'colour': [N, 8],
    'ground': [N, 4]}``; :meth:`features` gives the penultimate (pre-activation) features."""

    def __init__(self, width: tuple[int, int, int] = (16, 32, 64), feature_dim: int = 64):
        super().__init__()
        c1, c2, c3 = width
        self.body = nn.Sequential(  # 32 -> 16 -> 8 -> 4
            nn.Conv2d(3, c1, 4, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.BatchNorm2d(c3), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c3 * 16, feature_dim))
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, n) for name, n in HEADS.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def classify(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = F.relu(features)
        return {name: head(hidden) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.classify(self.features(x))


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """Images ``[N, 3, H, W]`` (uint8, or float in [-1, 1] as generators give them) → what the
    classifier sees: quantised to 8 bits as a saved image would be, area-downsampled to 32²."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise MetricError(f'the shapes classifier needs RGB images [N, 3, H, W], got '
                          f'{tuple(images.shape)}')
    size = images.shape[-1]
    if images.shape[-2] != size or size < CLASSIFIER_RESOLUTION or size % CLASSIFIER_RESOLUTION:
        raise MetricError(f'the shapes metrics need square images of 32x32 or a multiple, got '
                          f'{images.shape[-2]}x{size}')
    if images.dtype == torch.uint8:
        x = images.float()
    else:
        x = (images.float().clamp(-1, 1) * 127.5 + 127.5).round()
    x = x / 127.5 - 1
    if size != CLASSIFIER_RESOLUTION:
        x = F.avg_pool2d(x, size // CLASSIFIER_RESOLUTION)
    return x


def real_shapes(num_images: int, seed: int, resolution: int = CLASSIFIER_RESOLUTION
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Built-in images ``[N, 3, R, R]`` uint8 of set ``seed`` and their factors
    ``{'shape', 'colour', 'ground'}``."""
    images, factors = [], []
    for image, *labels in make_shapes_samples(num_images, resolution, seed):
        images.append(image)
        factors.append(labels)
    table = torch.tensor(factors, dtype=torch.long)
    labels = {name: table[:, i] for i, name in enumerate(HEADS)}
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), labels


def recipe_key() -> str:
    """Hash of the built-in generator's version and :data:`RECIPE` (the cache key)."""
    blob = json.dumps(dict(generator=GENERATOR_VERSION, recipe=RECIPE), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$GENFORCE_CACHE_DIR/shapes_classifier`` or
    ``~/.cache/genforce/shapes_classifier``."""
    if root is not None:
        return Path(root).expanduser()
    base = os.environ.get('GENFORCE_CACHE_DIR') or os.path.join('~', '.cache', 'genforce')
    return Path(base).expanduser() / 'shapes_classifier'


@contextlib.contextmanager
def _deterministic_cpu():
    """One thread, deterministic kernels and a private RNG state; all restored afterwards
    (the caller may be in the middle of a training run)."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _blobs(count: int, size: int, rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` wobbly blobs (a circle of the dataset's sizes whose radius varies with angle
    by 30-50 %, in harmonics 2-6) of a palette colour on a palette ground, drawn as the
    dataset is (a polygon at 4x, box-downsampled): images in [-1, 1], colour and ground
    indices."""
    big = size * 4
    angle = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    images, colours, grounds = [], [], []
    for _ in range(count):
        colour, ground = int(rng.integers(len(SHAPE_COLOURS))), int(rng.integers(len(BACKGROUNDS)))
        cx, cy = big / 2 + rng.uniform(-0.1, 0.1, size=2) * big
        radius = rng.uniform(0.26, 0.4) * big
        wobble = sum(rng.normal() * np.cos(k * angle) + rng.normal() * np.sin(k * angle)
                     for k in range(2, 7))
        wobble *= rng.uniform(*RECIPE['wobble']) / np.abs(wobble).max()
        r = radius * (1 + wobble)
        canvas = Image.new('RGB', (big, big), BACKGROUNDS[ground])
        ImageDraw.Draw(canvas).polygon(list(zip(cx + r * np.cos(angle), cy + r * np.sin(angle))),
                                       fill=SHAPE_COLOURS[colour])
        images.append(np.asarray(canvas.resize((size, size), Image.Resampling.BOX)))
        colours.append(colour)
        grounds.append(ground)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(colours), torch.tensor(grounds)


def _colour_noise(count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Random colour fields as untrained generators draw them: coarse noise (2-8 cells, or
    one per pixel) of up to 2.5x the image range, bilinearly upsampled and clamped."""
    cells = rng.choice([2, 3, 4, 6, 8, size], size=count)
    scale = torch.from_numpy(rng.uniform(0.3, 2.5, size=(count, 1, 1, 1))).float()
    fields = torch.zeros(count, 3, size, size)
    for n in np.unique(cells):
        index = torch.from_numpy(np.flatnonzero(cells == n))
        coarse = torch.from_numpy(rng.normal(size=(len(index), 3, n, n))).float()
        fields[index] = F.interpolate(coarse, size=size, mode='bilinear', align_corners=False)
    return (fields * scale).clamp(-1, 1)


def _outliers(images: torch.Tensor, labels: dict, blob_pool: tuple, rng: np.random.Generator,
              count: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``count`` training images that are not one clean shape, with soft targets: a quarter
    mixup blends of two batch images (the targets blend too), a quarter wobbly blobs from
    ``blob_pool`` (shape uniform, colour and ground known), half colour noise (uniform)."""
    n_mix = n_blob = count // 4
    n_noise = count - n_mix - n_blob
    first = torch.from_numpy(rng.integers(len(images), size=n_mix))
    second = torch.from_numpy(rng.integers(len(images), size=n_mix))
    lo, hi = RECIPE['mixup']
    lam = torch.from_numpy(rng.uniform(lo, hi, size=n_mix)).float()
    mixed = lam.view(-1, 1, 1, 1) * images[first] + (1 - lam.view(-1, 1, 1, 1)) * images[second]
    pick = torch.from_numpy(rng.integers(len(blob_pool[0]), size=n_blob))
    blobs, blob_labels = blob_pool[0][pick], {'colour': blob_pool[1][pick],
                                              'ground': blob_pool[2][pick]}
    targets = {}
    for name, n in HEADS.items():
        onehot = F.one_hot(labels[name], n).float()
        soft = lam[:, None] * onehot[first] + (1 - lam[:, None]) * onehot[second]
        blob = F.one_hot(blob_labels[name], n).float() if name in blob_labels else \
            torch.full((n_blob, n), 1.0 / n)
        targets[name] = torch.cat([soft, blob, torch.full((n_noise, n), 1.0 / n)])
    noise = _colour_noise(n_noise, images.shape[-1], rng)
    return torch.cat([mixed, blobs, noise]), targets


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def accuracy(classifier: ShapesClassifier, images: torch.Tensor, labels: dict) -> float:
    """Share of ``images`` whose shape, colour and ground are all predicted right."""
    with torch.no_grad():
        logits = classifier(to_classifier_input(images))
    right = torch.ones(len(images), dtype=torch.bool)
    for name in HEADS:
        right &= logits[name].argmax(dim=1) == labels[name]
    return float(right.float().mean())


def train_classifier(progress: bool = False) -> tuple[ShapesClassifier, float]:
    """Train a :class:`ShapesClassifier` with :data:`RECIPE` on the CPU (deterministic: one
    thread, fixed seeds); returns it (eval mode) and its accuracy on held-out images."""
    start = time.time()
    images, labels = real_shapes(RECIPE['train_images'], RECIPE['train_seed'])
    with _deterministic_cpu():
        torch.manual_seed(RECIPE['torch_seed'])
        rng = np.random.default_rng(RECIPE['torch_seed'])
        blob_pool = _blobs(RECIPE['blob_pool'], CLASSIFIER_RESOLUTION, rng)
        net = ShapesClassifier(RECIPE['width'], RECIPE['feature_dim'])
        steps_per_epoch = len(images) // RECIPE['batch_size']
        total = RECIPE['epochs'] * steps_per_epoch
        optimizer = torch.optim.Adam(net.parameters(), lr=RECIPE['lr'])
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, RECIPE['lr'], total_steps=total)
        for _ in range(RECIPE['epochs']):
            order = torch.from_numpy(rng.permutation(len(images)))
            for step in range(steps_per_epoch):
                index = order[step * RECIPE['batch_size']:(step + 1) * RECIPE['batch_size']]
                batch = to_classifier_input(images[index])
                batch_labels = {name: value[index] for name, value in labels.items()}
                odd, soft = _outliers(batch, batch_labels, blob_pool, rng,
                                      RECIPE['outliers_per_batch'])
                logits = net(torch.cat([batch, odd]))
                loss = 0
                for name, n in HEADS.items():
                    clean = F.one_hot(batch_labels[name], n).float()
                    loss = loss + _soft_cross_entropy(logits[name],
                                                      torch.cat([clean, soft[name]]))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        net.eval()
        heldout = real_shapes(RECIPE['heldout_images'], RECIPE['heldout_seed'])
        held_accuracy = accuracy(net, *heldout)
    if progress:
        print(f'Trained the shapes classifier in {time.time() - start:.0f} s '
              f'(held-out accuracy {held_accuracy:.2%})')
    if held_accuracy < 0.99:  # 100 % on torch 2.x CPUs; the metric would mislead
        warnings.warn(f'the shapes classifier reached only {held_accuracy:.2%} on held-out '
                      'images; its metrics are unreliable', stacklevel=2)
    return net, held_accuracy


_LOADED: dict[str, dict] = {}


def _load_or_build(path: Path, build, progress: bool, what: str) -> dict:
    """The dict saved at ``path`` (memoised per process), or ``build()`` saved there first.
    A file that does not load (damaged, not ours) is rebuilt with a warning."""
    if str(path) in _LOADED:
        return _LOADED[str(path)]
    if path.is_file():
        try:
            _LOADED[str(path)] = load_checkpoint(path)
            return _LOADED[str(path)]
        except CheckpointError as err:
            warnings.warn(f'the cached {what} {path} is unusable ({err}); computing it again',
                          stacklevel=3)
    if progress:
        print(f'Computing the {what} once (cached as {path})')
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(build(), path)
    _LOADED[str(path)] = load_checkpoint(path)  # what later processes will read
    return _LOADED[str(path)]


def load_classifier(root: str | os.PathLike | None = None, progress: bool = True
                    ) -> ShapesClassifier:
    """The cached classifier (CPU, eval mode): loaded from :func:`cache_dir`, or trained and
    saved there on first use (tens of seconds). A damaged or foreign cache file is retrained."""
    path = cache_dir(root) / f'classifier-{recipe_key()}.pth'

    def build() -> dict:
        net, held_accuracy = train_classifier(progress)
        return dict(state_dict=net.state_dict(), recipe_key=recipe_key(),
                    heldout_accuracy=held_accuracy)

    net = ShapesClassifier(RECIPE['width'], RECIPE['feature_dim'])
    try:
        net.load_state_dict(_load_or_build(path, build, progress, 'shapes classifier')
                            ['state_dict'])
    except (KeyError, RuntimeError) as err:  # a loadable file holding something else
        warnings.warn(f'the cached shapes classifier {path} does not fit ({err}); training '
                      'it again', stacklevel=2)
        path.unlink()
        _LOADED.pop(str(path), None)
        net.load_state_dict(_load_or_build(path, build, progress, 'shapes classifier')
                            ['state_dict'])
    return net.eval()


def image_features(classifier: ShapesClassifier, images: torch.Tensor, batch_size: int = 500
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Features ``[N, 64]`` and softmax probabilities per head of ``images`` (see
    :func:`to_classifier_input`), computed on the CPU in batches."""
    feats, probs = [], {name: [] for name in HEADS}
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            f = classifier.features(to_classifier_input(images[start:start + batch_size].cpu()))
            feats.append(f)
            for name, logits in classifier.classify(f).items():
                probs[name].append(logits.softmax(dim=1))
    return torch.cat(feats), {name: torch.cat(p) for name, p in probs.items()}


def reference_stats(classifier: ShapesClassifier, resolution: int,
                    root: str | os.PathLike | None = None, progress: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the classifier features of real built-in images drawn at
    ``resolution`` (cached next to the classifier, keyed by its weights)."""
    digest = hashlib.sha256()
    for tensor in classifier.state_dict().values():
        digest.update(tensor.cpu().numpy().tobytes())
    path = cache_dir(root) / f'reference{resolution}-{digest.hexdigest()[:16]}.pth'

    def build() -> dict:
        images, _ = real_shapes(REFERENCE['images'], REFERENCE['seed'], resolution)
        feats = image_features(classifier, images)[0].double()
        return dict(mu=feats.mean(dim=0), sigma=torch.cov(feats.T), count=len(feats))

    stats = _load_or_build(path, build, progress, f'{resolution}x{resolution} reference features')
    return stats['mu'].numpy(), stats['sigma'].numpy()
