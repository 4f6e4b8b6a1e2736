"""The model contract suite: behaviour checks every generator and discriminator must pass.

A plugin declares tiny training-model configs with the ``genforce_test_models`` hook; each
check below builds one and asserts a part of the contracts of :mod:`genforce_core.contracts`.
Use it through :mod:`genforce_core.testing` (``contract_tests`` for pytest,
``check_model_contract`` for one config).
"""
from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from . import contracts
from .registry import MODELS, explaining_misses

NOT_APPLICABLE = 'not applicable'
"""What a check returns (instead of None) when the model has nothing it could check."""

BATCH = 4  # minibatch-stddev layers group by up to 4


@dataclass(frozen=True)
class ModelCase:
    """One tiny model of a plugin: ``model`` is a training-model config
    (``dict(type='GAN' or a family model, generator=..., discriminator=..., ...)``)."""

    plugin: str
    name: str
    model: Mapping[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return f'{self.plugin}:{self.name}'


# --------------------------------------------------------------------------- cases

def model_cases(plugin: str | None = None) -> list[ModelCase]:
    """The test models every loaded plugin (or only ``plugin``) declares through the
    ``genforce_test_models`` hook; a malformed entry is an AssertionError naming it."""
    from .plugins import load_plugins

    manager = load_plugins()
    if plugin is not None:
        info = manager.plugins.get(plugin)
        why = f'{info.status}: {info.error}' if info is not None else 'not installed'
        loaded = sorted(n for n, i in manager.plugins.items() if i.status == 'loaded')
        assert info is not None and info.status == 'loaded', (
            f'plugin {plugin} is not loaded ({why}); loaded: {", ".join(loaded)}')
    cases = []
    for impl in manager.pm.hook.genforce_test_models.get_hookimpls():
        if plugin is not None and impl.plugin_name != plugin:
            continue
        entries = impl.function()
        assert isinstance(entries, list), (
            f'{impl.plugin_name}: genforce_test_models must return a list, got '
            f'{type(entries).__name__}')
        for index, entry in enumerate(entries):
            where = f'{impl.plugin_name}: genforce_test_models()[{index}]'
            assert isinstance(entry, Mapping) and isinstance(entry.get('name'), str) \
                and isinstance(entry.get('model'), Mapping), (
                    f"{where} must be dict(name='...', model=dict(type=..., ...)), got {entry!r}")
            cases.append(ModelCase(impl.plugin_name, entry['name'], copy.deepcopy(
                dict(entry['model']))))
    ids = [case.id for case in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f'test model names declared twice: {duplicates}'
    return cases


def _config_types(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        found = {value['type']} if isinstance(value.get('type'), str) else set()
        for item in value.values():
            found |= _config_types(item)
        return found
    if isinstance(value, (list, tuple)):
        return set().union(*(_config_types(v) for v in value)) if value else set()
    return set()


def _must_be_covered(name: str, declares_models: bool) -> bool:
    """Registered models the suite must cover: every class whose name ends with
    ``Generator`` or ``Discriminator``, and the training models (GAN subclasses) of a plugin
    that declares test models."""
    from .models import GAN

    cls = MODELS.module_dict.get(name)
    return name.endswith(('Generator', 'Discriminator')) or (
        declares_models and isinstance(cls, type) and issubclass(cls, GAN))


def uncovered_models(plugin: str | None = None) -> list[str]:
    """The generators, discriminators and training models registered by ``plugin`` (or by
    any loaded plugin) that no test model builds, as ``'plugin: Name'``."""
    from .plugins import load_plugins

    manager = load_plugins()
    covered: set[str] = set()
    for case in model_cases():
        covered |= _config_types(case.model)
    declaring = {impl.plugin_name
                 for impl in manager.pm.hook.genforce_test_models.get_hookimpls()}
    missing = []
    for name, info in manager.plugins.items():
        if info.status != 'loaded' or plugin not in (None, name):
            continue
        for key in info.registered.get('models', []):
            if _must_be_covered(key, name in declaring) and key not in covered:
                missing.append(f'{name}: {key}')
    return sorted(missing)


# --------------------------------------------------------------------------- helpers

def build(case: ModelCase | Mapping[str, Any], seed: int = 0) -> nn.Module:
    """The training model of ``case`` (or of a model config), built with ``seed``."""
    cfg = case.model if isinstance(case, ModelCase) else case
    torch.manual_seed(seed)
    with explaining_misses():
        model = MODELS.build(copy.deepcopy(dict(cfg)))
    assert isinstance(getattr(model, 'generator', None), nn.Module), (
        f'{type(model).__name__} has no generator: a test model must be a training model '
        '(type=GAN or a family model) with generator= and discriminator=')
    return model


def _inputs(G: nn.Module, batch: int = BATCH, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, int(G.z_dim), generator=gen)
    c = torch.zeros(batch, int(G.c_dim))
    if G.c_dim:
        c[torch.arange(batch), torch.arange(batch) % int(G.c_dim)] = 1
    return z, c


def _sample(G: nn.Module, z: torch.Tensor, c: torch.Tensor, **options: Any) -> torch.Tensor:
    with torch.no_grad():
        return G(z, c, **contracts.sampling_options(G), **options)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor]) -> list[str]:
    return [k for k in before if not torch.equal(before[k], after[k])]


def _name(module: Any) -> str:
    return type(module).__name__


# --------------------------------------------------------------------------- checks

def check_build(case: ModelCase) -> None:
    """The model builds; its networks, loss and regularizers have the contracts'
    attributes, and generator and discriminator agree on images and labels."""
    model = build(case)
    G, D = model.generator, model.discriminator
    assert isinstance(G, contracts.Generator), (
        f'{_name(G)} lacks z_dim, c_dim, img_resolution or img_channels (Generator contract)')
    for attr in ('z_dim', 'c_dim', 'img_resolution', 'img_channels'):
        assert isinstance(getattr(G, attr), int) and getattr(G, attr) >= 0, (
            f'{_name(G)}.{attr} must be a non-negative int, got {getattr(G, attr)!r}')
    if D is not None:
        assert isinstance(D, contracts.Discriminator), (
            f'{_name(D)} lacks c_dim, img_resolution or img_channels (Discriminator contract)')
        for attr in ('c_dim', 'img_resolution', 'img_channels'):
            assert getattr(D, attr) == getattr(G, attr), (
                f'{_name(G)}.{attr}={getattr(G, attr)} but {_name(D)}.{attr}='
                f'{getattr(D, attr)}: the networks do not fit together')
    if isinstance(G, contracts.StyleGenerator):
        assert isinstance(G.mapping, contracts.MappingNetwork), (
            f'{_name(G)}.mapping lacks z_dim, c_dim, w_dim, num_ws or w_avg (MappingNetwork)')
        assert isinstance(G.synthesis, contracts.SynthesisNetwork), (
            f'{_name(G)}.synthesis lacks w_dim or num_ws (SynthesisNetwork contract)')
        assert G.num_ws == G.mapping.num_ws == G.synthesis.num_ws, (
            f'{_name(G)}: num_ws differs between G, mapping and synthesis')
        assert G.w_dim == G.mapping.w_dim == G.synthesis.w_dim
        assert tuple(G.mapping.w_avg.shape) == (G.w_dim,), (
            f'{_name(G)}.mapping.w_avg must be [w_dim={G.w_dim}], got '
            f'{list(G.mapping.w_avg.shape)}')
        assert any(buf is G.mapping.w_avg for buf in G.buffers()), (
            f'{_name(G)}.mapping.w_avg must be a registered buffer (checkpoints carry it)')
    loss = getattr(model, 'loss', None)
    if loss is not None:
        assert isinstance(loss, contracts.AdversarialLoss), (
            f'{_name(loss)} lacks d_loss(real_logits, fake_logits) or g_loss(fake_logits)')
    for attr, protocol in (('d_reg', contracts.DiscriminatorRegularizer),
                           ('g_reg', contracts.GeneratorRegularizer)):
        reg = getattr(model, attr, None)
        if reg is not None:
            assert isinstance(reg, protocol) and isinstance(reg.interval, int) \
                and reg.interval >= 1, f'{attr} {_name(reg)} needs an int interval >= 1'


def check_forward_backward(case: ModelCase) -> None:
    """Images and scores of the documented shapes; gradients reach both networks (and the
    images, for R1 and gradient penalties); one full ``train_step`` gives finite losses and
    changes the weights."""
    model = build(case).train()
    G, D = model.generator, model.discriminator
    z, c = _inputs(G)
    img = G(z, c)
    shape = [BATCH, G.img_channels, G.img_resolution, G.img_resolution]
    assert list(img.shape) == shape, f'{_name(G)}(z, c) gave {list(img.shape)}, expected {shape}'
    assert torch.isfinite(img).all(), f'{_name(G)} gave non-finite pixels'
    if D is None:
        return
    img = img.detach().requires_grad_(True)
    scores = D(img, c)
    assert scores.shape[0] == BATCH and scores.numel() == BATCH, (
        f'{_name(D)}(img, c) gave {list(scores.shape)}, expected [{BATCH}, 1]')
    (grad,) = torch.autograd.grad(scores.sum(), img)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0, (
        f'{_name(D)}: no gradient with respect to the images (R1 needs one)')
    D(G(z, c), c).sum().backward()
    for net in (G, D):
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), (
            f'{_name(net)}: backward reached none of its parameters')
        assert all(torch.isfinite(g).all() for g in grads if g is not None)
    model.zero_grad(set_to_none=True)

    _check_train_step(model, OptimWrapper)


def check_autocast_step(case: ModelCase) -> str | None:
    """One full ``train_step`` under autocast, as ``genforce train --amp`` runs it (here the
    CPU's float16 autocast; mmengine's AmpOptimWrapper needs a GPU): finite losses, both
    networks change, and every parameter and buffer stays float32."""
    model = build(case).train()
    if model.discriminator is None:
        return NOT_APPLICABLE
    _check_train_step(model, _CpuAutocastOptimWrapper)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert not tensor.is_floating_point() or tensor.dtype == torch.float32, (
            f'{name} became {tensor.dtype} under autocast')
    return None


class _CpuAutocastOptimWrapper(OptimWrapper):
    """What ``--amp`` does to the forward passes, on the CPU."""

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.float16):
            yield


def _check_train_step(model: nn.Module, wrapper: Callable[[torch.optim.Optimizer], Any]) -> None:
    """One ``train_step`` of ``model`` gives finite losses, counts the images and changes
    both networks."""
    G, D = model.generator, model.discriminator
    z, c = _inputs(G)
    shape = [BATCH, G.img_channels, G.img_resolution, G.img_resolution]
    optims = OptimWrapperDict(**{
        name: wrapper(torch.optim.Adam(net.parameters(), lr=1e-3))
        for name, net in (('generator', G), ('discriminator', D))})
    before = {'generator': _state(G), 'discriminator': _state(D)}
    gen = torch.Generator().manual_seed(2)
    data = dict(img=torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen), label=c)
    log = model.train_step(data, optims)
    for key, value in log.items():
        if torch.is_tensor(value) or isinstance(value, float):
            assert torch.isfinite(torch.as_tensor(value)).all(), f'train_step logged {key}={value}'
    assert int(model.num_steps) == 1 and int(model.images_seen) == BATCH
    for name, net in (('generator', G), ('discriminator', D)):
        assert _changed(before[name], _state(net)), f'train_step did not change the {name}'


def check_state_dict_round_trip(case: ModelCase) -> None:
    """Everything the networks compute with is in the ``state_dict``: a model built with
    another seed and given the first one's ``state_dict`` computes the same outputs."""
    first, second = build(case, seed=0), build(case, seed=1)
    _set_lod(first, 0.5)  # a non-default buffer value must travel too
    state = first.state_dict()
    assert all(torch.is_tensor(v) for v in state.values()), 'state_dict holds non-tensors'
    result = second.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    first.eval()
    second.eval()
    for attr in ('generator', 'inference_generator'):
        G1, G2 = getattr(first, attr), getattr(second, attr)
        z, c = _inputs(G1)
        out1, out2 = _sample(G1, z, c), _sample(G2, z, c)
        assert torch.equal(out1, out2), (
            f'{_name(G1)} ({attr}): the same state_dict computes different images '
            f'(max difference {float((out1 - out2).abs().max()):.3g}); keep every tensor '
            'the forward pass uses in a parameter or a registered buffer')
    D1, D2 = first.discriminator, second.discriminator
    if D1 is not None:
        img = torch.rand(BATCH, D1.img_channels, D1.img_resolution, D1.img_resolution) * 2 - 1
        with torch.no_grad():
            assert torch.equal(D1(img, c), D2(img, c)), (
                f'{_name(D1)}: the same state_dict computes different scores')


def check_deterministic_eval(case: ModelCase) -> None:
    """In eval mode the generator is a function of its inputs: the same call gives the same
    images, an image does not depend on the rest of its batch, and no buffer changes."""
    model = build(case).eval()
    for attr in ('generator', 'inference_generator'):
        G = getattr(model, attr)
        z, c = _inputs(G)
        before = _state(G)
        first, again = _sample(G, z, c), _sample(G, z, c)
        assert torch.equal(first, again), (
            f'{_name(G)} ({attr}) in eval mode gave different images for the same inputs '
            f'(max difference {float((first - again).abs().max()):.3g})')
        single = _sample(G, z[1:2], c[1:2])
        assert torch.allclose(single[0], first[1], atol=1e-5, rtol=1e-4), (
            f'{_name(G)} ({attr}) in eval mode: an image depends on the rest of its batch')
        changed = _changed(before, _state(G))
        assert not changed, f'{_name(G)} ({attr}) changed {changed} in eval mode'
    D = model.discriminator
    if D is not None:
        img = torch.rand(BATCH, D.img_channels, D.img_resolution, D.img_resolution) * 2 - 1
        with torch.no_grad():
            assert torch.equal(D(img, c), D(img, c)), f'{_name(D)} is not deterministic in eval'


def check_load_generator(case: ModelCase, tmp_dir: str | Path | None = None) -> None:
    """A checkpoint saved as the runner saves one (``state_dict`` + the config as plain data
    in ``meta.cfg``) loads with ``load_generator`` into the same inference generator."""
    from mmengine.config import Config

    from . import load_generator
    from .checkpoint import save_checkpoint
    from .stored_config import config_to_data

    model = build(case).eval()
    _set_lod(model, 0.5)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as folder:
        path = Path(folder) / 'iter_1.pth'
        save_checkpoint(dict(meta=dict(cfg=config_to_data(Config(dict(model=dict(
            case.model))))), state_dict=model.state_dict()), path)
        loaded = load_generator(path)
    expected = model.inference_generator
    assert type(loaded) is type(expected), (
        f'load_generator gave a {_name(loaded)}, expected {_name(expected)}')
    assert not loaded.training, 'load_generator must return the generator in eval mode'
    z, c = _inputs(expected)
    out, ref = _sample(loaded, z, c), _sample(expected, z, c)
    assert torch.equal(out, ref), (
        f'{_name(loaded)} from load_generator computes other images than the saved model '
        f'(max difference {float((out - ref).abs().max()):.3g})')


def check_truncation(case: ModelCase) -> None:
    """A generator with truncation honours it (``psi=0`` gives the ``w_avg`` image for every
    latent, the cutoff limits it to the first layers); any other generator refuses it
    clearly (``sampling_options`` raises, and a ``truncation_psi`` it takes raises)."""
    model = build(case).eval()
    G = model.generator
    z, c = _inputs(G)
    c = c[:1].expand_as(c)  # one label: truncated images must then all be equal
    if not contracts.supports_truncation(G):
        try:
            contracts.sampling_options(G, truncation_psi=0.5)
        except contracts.TruncationUnsupported:
            pass
        else:
            raise AssertionError(f'sampling_options accepted truncation for {_name(G)}')
        if contracts.accepts_option(G, 'truncation_psi'):
            try:
                with torch.no_grad():
                    G(z, c, truncation_psi=0.5)
            except (ValueError, TypeError, NotImplementedError):
                return
            raise AssertionError(f'{_name(G)} takes truncation_psi=0.5 but has no truncation: '
                                 'it must raise, not ignore it')
        return
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    options = contracts.sampling_options(G, truncation_psi=0, truncation_cutoff=G.num_ws)
    truncated = _sample(G, z, c, **{k: v for k, v in options.items() if k != 'noise_mode'})
    plain = _sample(G, z, c)
    assert all(torch.allclose(img, truncated[0], atol=1e-5) for img in truncated), (
        f'{_name(G)}: truncation_psi=0 must give the same (w_avg) image for every latent')
    assert not torch.allclose(plain[0], plain[1], atol=1e-5), (
        f'{_name(G)}: different latents gave the same image without truncation')
    half = _sample(G, z, c, truncation_psi=0.5, truncation_cutoff=G.num_ws)
    assert not torch.allclose(half, plain, atol=1e-5) and \
        not torch.allclose(half, truncated, atol=1e-5), (
            f'{_name(G)}: truncation_psi=0.5 must lie between no and full truncation')
    if G.num_ws > 1:
        first_layer = _sample(G, z, c, truncation_psi=0, truncation_cutoff=1)
        assert not torch.allclose(first_layer[0], first_layer[1], atol=1e-5), (
            f'{_name(G)}: truncation_cutoff=1 must truncate only the first layer')
    with torch.no_grad():
        G.mapping.w_avg.add_(1)
    moved = _sample(G, z, c, truncation_psi=0, truncation_cutoff=G.num_ws)
    assert not torch.allclose(moved, truncated, atol=1e-5), (
        f'{_name(G)}: truncated images must follow mapping.w_avg')


def check_progressive(case: ModelCase) -> str | None:
    """Networks with ``lod`` buffers give (and take) full-resolution images at every level:
    at ``lod = k`` the generator's images are constant on ``2**k`` blocks."""
    model = build(case).eval()
    G, D = model.generator, model.discriminator
    nets = contracts.progressive_modules(G) + (contracts.progressive_modules(D)
                                               if D is not None else [])
    if not nets:
        return NOT_APPLICABLE
    for name, net in nets:
        assert isinstance(net, contracts.ProgressiveNetwork) and int(net.max_lod) >= 1, (
            f'{_name(net)} ({name}) has a lod buffer but no max_lod >= 1')
    lod = min(int(net.max_lod) for _, net in nets)
    _set_lod(model, float(lod))
    z, c = _inputs(G)
    img = _sample(G, z, c)
    block = 2 ** lod
    assert img.shape[-1] == G.img_resolution, f'{_name(G)} at lod {lod} changed the image size'
    coarse = img[..., ::block, ::block].repeat_interleave(block, -1).repeat_interleave(block, -2)
    assert torch.allclose(img, coarse), (
        f'{_name(G)} at lod {lod} must give images constant on {block}x{block} blocks')
    if D is not None:
        with torch.no_grad():
            scores = D(img, c)
        assert scores.numel() == BATCH and torch.isfinite(scores).all()


class _LeaveByError(Exception):
    pass


def check_image_transform(case: ModelCase) -> str | None:
    """A :class:`~genforce_core.contracts.TransformableGenerator` moves its images as
    documented (no motion changes no pixel; a shift of 1/8 of the image goes right and down,
    not left or up) and is restored exactly on leaving the block, also by an exception. Any
    other generator is refused by :func:`~genforce_core.contracts.image_transform`."""
    G = build(case).eval().inference_generator
    if not contracts.supports_image_transform(G):
        try:
            contracts.image_transform(G, translate=(0.0, 0.0))
        except contracts.TransformUnsupported:
            return NOT_APPLICABLE
        raise AssertionError(f'image_transform accepted a translation for {_name(G)}, which '
                             'has no image_transform method')
    z, c = _inputs(G)
    before, plain = _state(G), _sample(G, z, c)
    with contracts.image_transform(G, translate=(0.0, 0.0), rotate=0.0):
        still = _sample(G, z, c)
    assert torch.equal(still, plain), (
        f'{_name(G)}.image_transform((0, 0), 0) changed the images '
        f'(max difference {float((still - plain).abs().max()):.3g})')
    k = max(1, G.img_resolution // 8)
    for dim, translate, towards in ((-1, (k / G.img_resolution, 0.0), 'right'),
                                    (-2, (0.0, k / G.img_resolution), 'down')):
        with contracts.image_transform(G, translate=translate):
            moved = _sample(G, z, c)
        n = G.img_resolution - k
        expected = (moved.narrow(dim, k, n) - plain.narrow(dim, 0, n)).abs().mean()
        opposite = (moved.narrow(dim, 0, n) - plain.narrow(dim, k, n)).abs().mean()
        assert expected < opposite, (
            f'{_name(G)}.image_transform(translate={translate}) must move the images '
            f'{towards} by {k} pixels (mean difference to that {float(expected):.3g}, to the '
            f'opposite motion {float(opposite):.3g})')
    try:
        with contracts.image_transform(G, translate=(0.25, -0.125), rotate=30.0):
            raise _LeaveByError
    except _LeaveByError:
        pass
    changed = _changed(before, _state(G))
    assert not changed, f'{_name(G)}.image_transform left {changed} changed'
    assert torch.equal(_sample(G, z, c), plain), (
        f'{_name(G)}: the images differ after leaving image_transform')
    return None


def _set_lod(model: nn.Module, lod: float) -> None:
    for _, net in contracts.progressive_modules(model):
        lod_here = min(lod, float(getattr(net, 'max_lod', lod)))
        net.lod.fill_(lod_here)


CHECKS: dict[str, Callable[..., str | None]] = {
    'build': check_build,
    'forward_backward': check_forward_backward,
    'autocast_step': check_autocast_step,
    'state_dict': check_state_dict_round_trip,
    'deterministic_eval': check_deterministic_eval,
    'load_generator': check_load_generator,
    'truncation': check_truncation,
    'progressive': check_progressive,
    'image_transform': check_image_transform,
}
"""Every check of the suite, by name (the ids of the parametrized tests)."""


def check_model_contract(model: ModelCase | Mapping[str, Any], name: str = 'model',
                         checks: list[str] | None = None) -> dict[str, str]:
    """Run the contract checks (all, or ``checks``) on one model and return
    ``{check: 'passed' | 'not applicable'}``; the first failure raises an AssertionError
    naming the check."""
    case = model if isinstance(model, ModelCase) else ModelCase('-', name, dict(model))
    results = {}
    for check in checks or list(CHECKS):
        try:
            outcome = CHECKS[check](case)
        except AssertionError as err:
            raise AssertionError(f'{case.id}: contract check {check!r} failed: {err}') from err
        results[check] = outcome or 'passed'
    return results


def contract_tests(plugin: str) -> type:
    """A pytest test class running every check on every test model of ``plugin``::

        # tests/test_contract.py of a plugin
        from genforce_core.testing import contract_tests

        TestModelContract = contract_tests('mygan')

    Collects ``test_check[<model>-<check>]`` per model and check, plus
    ``test_every_network_has_a_test_model``.
    """
    import pytest

    cases = model_cases(plugin)

    class ModelContractTests:
        @pytest.mark.parametrize('check', list(CHECKS))
        @pytest.mark.parametrize('case', cases, ids=[case.name for case in cases])
        def test_check(self, case: ModelCase, check: str) -> None:
            if CHECKS[check](case) == NOT_APPLICABLE:
                pytest.skip(f'{check}: not applicable to {case.name}')

        def test_plugin_declares_test_models(self) -> None:
            assert cases, f'plugin {plugin} declares no test models (genforce_test_models)'

        def test_every_network_has_a_test_model(self) -> None:
            missing = uncovered_models(plugin)
            assert not missing, ('registered but built by no test model of '
                                 f'genforce_test_models: {", ".join(missing)}')

    ModelContractTests.__name__ = ModelContractTests.__qualname__ = \
        f'TestModelContract_{plugin}'
    return ModelContractTests
