"""The contracts between the core and the GAN families, as :class:`typing.Protocol` classes.

Nothing here has to be inherited: a plugin's classes fit a contract by having the attributes
and call signatures below (``isinstance(G, Generator)`` checks the attributes at run time;
:mod:`genforce_core.testing` checks the behaviour). What relies on each contract:

* :class:`Generator` — the core :class:`~genforce_core.models.GAN` (``G(z, c)``, ``z_dim``),
  ``load_generator`` / ``genforce synthesize`` (``z_dim``, ``c_dim``, sampling options), the
  sample-grid hook, the metrics, and progressive growing (``img_resolution``).
* :class:`StyleGenerator` — truncation in ``genforce synthesize``, style mixing in the
  StyleGAN / StyleGAN2 training models, the path-length regularizer, inversion
  (``mapping``, ``synthesis``, ``num_ws``, ``w_dim``, ``mapping.w_avg``).
* :class:`Discriminator` — the GAN's discriminator phases and the regularizers
  (``D(img, c) -> [N, 1]`` scores).
* :class:`AdversarialLoss`, :class:`DiscriminatorRegularizer`,
  :class:`GeneratorRegularizer` — the GAN's ``loss``, ``d_reg`` and ``g_reg``; the optimizer
  constructor reads the regularizers' ``interval`` (lazy regularization).
* :class:`ProgressiveNetwork` — :class:`~genforce_core.hooks.ProgressiveGrowingHook` writes
  the level of detail into every buffer named ``lod`` and checkpoints carry it.
* :class:`LoadsOfficialWeights` — the converters copy official (TensorFlow) variables into a
  family's registered networks with their ``load_official`` method.
* :class:`TransformableGenerator` — ``genforce synthesize --translate/--rotate`` (and anything
  that moves a generator's images, e.g. equivariance metrics) through :func:`image_transform`.

Sampling options: every generator is called as ``G(z, c, **options)`` where ``options`` are
the subset of ``truncation_psi``, ``truncation_cutoff`` and ``noise_mode`` its ``forward``
accepts (:func:`sampling_options`). Truncation is offered only by a :class:`StyleGenerator`
that tracks ``w_avg``; asking another generator for it is a :class:`TruncationUnsupported`
error, never silently ignored.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from .errors import UsageError

__all__ = [
    'Generator', 'MappingNetwork', 'SynthesisNetwork', 'StyleGenerator', 'Discriminator',
    'AdversarialLoss', 'GradientPenaltyLoss', 'DiscriminatorRegularizer',
    'GeneratorRegularizer', 'TrainingModel', 'ProgressiveNetwork', 'LoadsOfficialWeights',
    'TruncationUnsupported', 'accepts_option', 'supports_truncation', 'sampling_options',
    'progressive_modules', 'TransformableGenerator', 'TransformUnsupported',
    'supports_image_transform', 'image_transform',
]

Losses = dict[str, Any]
"""What a loss or regularizer returns: entries whose key starts with ``loss`` are summed and
back-propagated (finite scalars); the other entries are only logged."""


# --------------------------------------------------------------------------- networks

@runtime_checkable
class Generator(Protocol):
    """``G(z, c, **options) -> img``: ``z`` ``[N, z_dim]``, ``c`` ``[N, c_dim]`` (one-hot
    labels; ``[N, 0]`` or None when ``c_dim == 0``), images ``[N, img_channels,
    img_resolution, img_resolution]`` in about [-1, 1].

    In eval mode (``noise_mode='const'`` when it takes one) the output depends only on the
    inputs and the ``state_dict``: the same ``z`` gives the same image, whatever else is in
    the batch, and calling it changes no buffer. Everything the output depends on is in the
    ``state_dict`` (parameters and buffers), so a checkpoint rebuilds it exactly.
    """

    z_dim: int
    c_dim: int
    img_resolution: int
    img_channels: int

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None = None,
                 **options: Any) -> torch.Tensor: ...


@runtime_checkable
class MappingNetwork(Protocol):
    """``mapping(z, c, truncation_psi=1, truncation_cutoff=None, update_emas=None,
    skip_w_avg_update=False) -> ws [N, num_ws, w_dim]``.

    ``w_avg`` ``[w_dim]`` is the tracked average ``w`` (a buffer): in training mode each call
    moves it towards the batch mean unless ``skip_w_avg_update``; truncation returns
    ``w_avg.lerp(w, truncation_psi)`` for the first ``truncation_cutoff`` layers (all when
    None).
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    w_avg: torch.Tensor

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                 truncation_cutoff: int | None = None, **kwargs: Any) -> torch.Tensor: ...


@runtime_checkable
class SynthesisNetwork(Protocol):
    """``synthesis(ws, noise_mode=..., **kwargs) -> img`` for ``ws`` ``[N, num_ws, w_dim]``;
    differentiable with respect to ``ws`` (path-length regularization, inversion)."""

    w_dim: int
    num_ws: int

    def __call__(self, ws: torch.Tensor, **kwargs: Any) -> torch.Tensor: ...


@runtime_checkable
class StyleGenerator(Generator, Protocol):
    """A :class:`Generator` built as ``synthesis(mapping(z, c))`` (StyleGAN, StyleGAN2).

    ``forward`` accepts ``truncation_psi``, ``truncation_cutoff`` and ``noise_mode``
    (``'const'``, ``'random'``, ``'none'``) and passes the truncation to ``mapping``.
    """

    w_dim: int
    num_ws: int
    mapping: MappingNetwork
    synthesis: SynthesisNetwork


@runtime_checkable
class Discriminator(Protocol):
    """``D(img, c) -> scores [N, 1]`` (one real/fake logit per image; ``[N]`` is accepted),
    for images ``[N, img_channels, img_resolution, img_resolution]`` in [-1, 1] and labels
    ``[N, c_dim]``. Differentiable with respect to ``img`` (R1, gradient penalty)."""

    c_dim: int
    img_resolution: int
    img_channels: int

    def __call__(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class ProgressiveNetwork(Protocol):
    """A network that grows progressively (PGGAN, StyleGAN's synthesis and discriminator).

    ``lod`` is a scalar buffer, the level of detail: 0 is full resolution, ``k`` is
    ``img_resolution / 2**k``, a fraction is a fade-in. The network still takes and gives
    full-resolution images (its output at ``lod = k`` is constant on ``2**k`` blocks).
    :class:`~genforce_core.hooks.ProgressiveGrowingHook` sets every buffer named ``lod``;
    ``max_lod`` is the largest level the network supports.
    """

    lod: torch.Tensor

    @property
    def max_lod(self) -> int: ...


@runtime_checkable
class TransformableGenerator(Generator, Protocol):
    """A :class:`Generator` whose images can be rotated and translated (StyleGAN3, through the
    transform of its Fourier input).

    Inside ``with G.image_transform(translate=(tx, ty), rotate=deg):`` the generator makes the
    images it makes outside, rotated by ``deg`` degrees counter-clockwise as displayed (about
    the image centre), then moved by ``tx`` image widths to the right and ``ty`` image heights
    down. What moves into view is generated, not wrapped around. ``translate=(0, 0),
    rotate=0`` changes no pixel. Leaving the context (also by an exception) restores the
    generator exactly: the motion never reaches a ``state_dict`` saved afterwards.
    """

    def image_transform(self, translate: tuple[float, float] = (0.0, 0.0),
                        rotate: float = 0.0) -> contextlib.AbstractContextManager[None]: ...


# --------------------------------------------------------------------------- losses

@runtime_checkable
class AdversarialLoss(Protocol):
    """The GAN's ``loss`` (LOSSES registry): the adversarial terms of both networks, from
    the discriminator's scores. Both return :data:`Losses` dicts."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> Losses: ...

    def g_loss(self, fake_logits: torch.Tensor) -> Losses: ...


@runtime_checkable
class GradientPenaltyLoss(AdversarialLoss, Protocol):
    """An :class:`AdversarialLoss` whose discriminator term also needs the images (WGAN-GP);
    the PGGAN model adds ``gradient_penalty(gan, real, fake, c)`` to the D step."""

    def gradient_penalty(self, gan: TrainingModel, real_img: torch.Tensor,
                         fake_img: torch.Tensor, c: torch.Tensor) -> Losses: ...


@runtime_checkable
class TrainingModel(Protocol):
    """What regularizers and hooks may use of the training model (the core ``GAN`` and its
    family subclasses): the networks, ``generate``/``discriminate`` (which a family may
    override, e.g. with style mixing or augmentation), ``sample_z`` and the progress
    buffers ``images_seen`` / ``num_steps``."""

    generator: nn.Module
    discriminator: nn.Module
    images_seen: torch.Tensor
    num_steps: torch.Tensor

    def sample_z(self, batch_size: int) -> torch.Tensor: ...

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor: ...

    def discriminate(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class DiscriminatorRegularizer(Protocol):
    """The GAN's ``d_reg`` (e.g. ``R1Penalty``): ``d_reg(gan, real_img, real_c) -> Losses``,
    run every ``interval`` discriminator steps in its own pass. It should multiply its loss by
    ``interval`` (lazy regularization) and call ``gan.discriminate`` so family overrides
    apply."""

    interval: int

    def __call__(self, gan: TrainingModel, real_img: torch.Tensor,
                 real_c: torch.Tensor) -> Losses: ...


@runtime_checkable
class GeneratorRegularizer(Protocol):
    """The GAN's ``g_reg`` (e.g. ``PathLengthPenalty``): ``g_reg(gan, batch_size, c) ->
    Losses``, run every ``interval`` generator steps; ``c`` are the labels to generate
    with. State it keeps across steps belongs in buffers (checkpoints carry them)."""

    interval: int

    def __call__(self, gan: TrainingModel, batch_size: int, c: torch.Tensor) -> Losses: ...


@runtime_checkable
class LoadsOfficialWeights(Protocol):
    """A network that can take the variables of an official (TensorFlow) release:
    ``network.load_official({official name: array})`` copies every variable in (all present,
    none left over, official shapes, converted to this network's layout). The converters
    plugin builds the registered type and calls this method, so a family never has to be
    imported by name."""

    def load_official(self, variables: Mapping[str, Any]) -> None: ...


# --------------------------------------------------------------------------- helpers

class TruncationUnsupported(UsageError):
    """Truncation was asked of a generator that has none."""


def _forward_parameters(G: nn.Module) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(G.forward).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return {}


def accepts_option(G: nn.Module, name: str) -> bool:
    """Whether ``G.forward`` takes keyword ``name`` (by name or through ``**kwargs``)."""
    params = _forward_parameters(G)
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def supports_truncation(G: nn.Module) -> bool:
    """A :class:`StyleGenerator` whose mapping tracks ``w_avg`` and whose ``forward`` takes
    ``truncation_psi``."""
    return (isinstance(G, StyleGenerator) and isinstance(G.mapping, MappingNetwork)
            and torch.is_tensor(getattr(G.mapping, 'w_avg', None))
            and accepts_option(G, 'truncation_psi'))


def sampling_options(G: nn.Module, *, truncation_psi: float = 1.0,
                     truncation_cutoff: int | None = None,
                     noise_mode: str = 'const') -> dict[str, Any]:
    """The keyword arguments to call ``G(z, c, **options)`` with.

    ``noise_mode`` is passed when ``G`` takes it (generators without noise inputs ignore it).
    Truncation (``truncation_psi != 1`` or a cutoff) is passed to a generator that
    :func:`supports_truncation` and is a :class:`TruncationUnsupported` error for any other.
    """
    options: dict[str, Any] = {}
    if accepts_option(G, 'noise_mode'):
        options['noise_mode'] = noise_mode
    if truncation_psi == 1 and truncation_cutoff is None:
        return options
    if not supports_truncation(G):
        raise TruncationUnsupported(
            f'{type(G).__name__} has no truncation (no mapping network tracking w_avg): drop '
            f'--truncation-psi {truncation_psi:g}'
            + (f' and --truncation-cutoff {truncation_cutoff}' if truncation_cutoff is not None
               else ''))
    options.update(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return options


class TransformUnsupported(UsageError):
    """A translation or rotation was asked of a generator that cannot move its images."""


def supports_image_transform(G: nn.Module) -> bool:
    """Whether ``G`` is a :class:`TransformableGenerator` (has ``image_transform``)."""
    return callable(getattr(G, 'image_transform', None))


def image_transform(G: nn.Module, translate: tuple[float, float] | None = None,
                    rotate: float | None = None) -> contextlib.AbstractContextManager[None]:
    """The context in which ``G`` makes moved images (see :class:`TransformableGenerator`);
    ``None`` is "not asked". Neither asked: a context that does nothing. Asked of a generator
    without ``image_transform``: a :class:`TransformUnsupported` error naming the flags
    (``--translate``/``--rotate``), never ignored. Non-finite values are a ValueError."""
    if translate is None and rotate is None:
        return contextlib.nullcontext()
    if translate is not None and len(translate) != 2:
        raise ValueError(f'translate must be two numbers (tx, ty), got {translate!r}')
    tx, ty = (float(v) for v in (translate if translate is not None else (0.0, 0.0)))
    angle = float(rotate if rotate is not None else 0.0)
    asked = ' and '.join(([f'--translate {tx:g},{ty:g}'] if translate is not None else [])
                         + ([f'--rotate {angle:g}'] if rotate is not None else []))
    if not all(math.isfinite(v) for v in (tx, ty, angle)):
        raise ValueError(f'image transform values must be finite numbers, got {asked}')
    if not supports_image_transform(G):
        raise TransformUnsupported(
            f'{type(G).__name__} cannot translate or rotate its images (it has no input '
            f'transform, as StyleGAN3 has): drop {asked}')
    return G.image_transform(translate=(tx, ty), rotate=angle)


def progressive_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, submodule)`` of ``module`` and its submodules that hold a ``lod`` buffer."""
    return [(name, sub) for name, sub in module.named_modules()
            if isinstance(sub._buffers.get('lod'), torch.Tensor)]
