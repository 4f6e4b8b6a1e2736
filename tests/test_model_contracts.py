"""The model contract suite (genforce_core.testing) passes a well-behaved model, fails broken
ones with a message naming the check, covers every registered network, and truncation asked
of a generator without it is refused in one line."""
from __future__ import annotations

import contextlib
import types

import pytest
import torch
from torch import nn

from genforce_core import contracts, hookimpl
from genforce_core.checkpoint import save_checkpoint
from genforce_core.errors import UsageError
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS
from genforce_core.stored_config import config_to_data
from genforce_core.testing import CHECKS, check_model_contract, model_cases, uncovered_models


class TinyGenerator(nn.Module):
    """A well-behaved generator: one linear layer."""

    def __init__(self, z_dim: int = 8, img_resolution: int = 8, img_channels: int = 3):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, 0
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.fc = nn.Linear(z_dim, img_channels * img_resolution ** 2)

    def image(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z)).view(-1, self.img_channels, self.img_resolution,
                                           self.img_resolution)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.image(z)


class TinyDiscriminator(nn.Module):
    def __init__(self, img_resolution: int = 8, img_channels: int = 3):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = 0, img_resolution, img_channels
        self.fc = nn.Linear(img_channels * img_resolution ** 2, 1)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(img.flatten(1))


class NoisyEvalGenerator(TinyGenerator):
    """Adds fresh noise in eval mode too: not deterministic."""

    def forward(self, z, c=None):
        return self.image(z) + 0.01 * torch.randn(z.shape[0], 1, 1, 1)


class UnsavedStateGenerator(TinyGenerator):
    """Keeps a tensor it computes with outside the state_dict (a plain attribute)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.offset = torch.randn(1)

    def forward(self, z, c=None):
        return self.image(z) + self.offset


class BatchNormInEvalGenerator(TinyGenerator):
    """Normalises with the batch's statistics even in eval mode."""

    def forward(self, z, c=None):
        img = self.image(z)
        return img - img.mean(dim=0, keepdim=True)


class SilentTruncationGenerator(TinyGenerator):
    """Takes truncation_psi and ignores it."""

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None):
        return self.image(z)


class WrongSizeGenerator(TinyGenerator):
    """Claims 16x16 images but gives 8x8."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.img_resolution = 16

    def image(self, z):
        return torch.tanh(self.fc(z)).view(-1, self.img_channels, 8, 8)


class RollingGenerator(TinyGenerator):
    """Moves its images by whole pixels (rolling them): enough for the image-transform
    contract; ``direction = -1`` moves them the wrong way, ``restores = False`` leaks."""

    direction, restores = 1, True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer('shift', torch.zeros(2))

    @contextlib.contextmanager
    def image_transform(self, translate=(0.0, 0.0), rotate=0.0):
        saved = self.shift.clone()
        self.shift.copy_(torch.tensor(translate) * self.img_resolution * self.direction)
        try:
            yield
        finally:
            if self.restores:
                self.shift.copy_(saved)

    def forward(self, z, c=None):
        dx, dy = (round(v) for v in self.shift.tolist())
        return torch.roll(self.image(z), (dy, dx), dims=(-2, -1))


class BackwardsRollingGenerator(RollingGenerator):
    direction = -1


class LeakyRollingGenerator(RollingGenerator):
    restores = False


class MismatchedDiscriminator(TinyDiscriminator):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.img_channels = 1


TEST_TYPES = {f'ContractTest{cls.__name__}': cls for cls in (
    TinyGenerator, TinyDiscriminator, NoisyEvalGenerator, UnsavedStateGenerator,
    BatchNormInEvalGenerator, SilentTruncationGenerator, WrongSizeGenerator,
    MismatchedDiscriminator, RollingGenerator, BackwardsRollingGenerator,
    LeakyRollingGenerator)}


@pytest.fixture(scope='module', autouse=True)
def registered_test_types():
    load_plugins()
    for name, cls in TEST_TYPES.items():
        MODELS.register_module(name=name, module=cls)
    yield
    for name in TEST_TYPES:
        MODELS.module_dict.pop(name, None)
        MODELS.owners.pop(name, None)


def gan(generator: str = 'TinyGenerator', discriminator: str = 'TinyDiscriminator') -> dict:
    return dict(type='GAN', generator=dict(type=f'ContractTest{generator}'),
                discriminator=dict(type=f'ContractTest{discriminator}'),
                ema=dict(half_life_kimg=0.01))


def test_a_well_behaved_model_passes_every_check():
    results = check_model_contract(gan())
    assert results == {**{name: 'passed' for name in CHECKS}, 'progressive': 'not applicable',
                       'image_transform': 'not applicable'}
    assert check_model_contract(gan('RollingGenerator'), checks=['image_transform']) == {
        'image_transform': 'passed'}


@pytest.mark.parametrize('generator, check, message', [
    ('NoisyEvalGenerator', 'deterministic_eval', 'different images for the same inputs'),
    ('BatchNormInEvalGenerator', 'deterministic_eval', 'depends on the rest of its batch'),
    ('UnsavedStateGenerator', 'state_dict', 'the same state_dict computes different images'),
    ('UnsavedStateGenerator', 'load_generator', 'other images than the saved model'),
    ('SilentTruncationGenerator', 'truncation', 'it must raise, not ignore it'),
    ('WrongSizeGenerator', 'forward_backward', r'gave \[4, 3, 8, 8\], expected \[4, 3, 16, 16\]'),
    ('BackwardsRollingGenerator', 'image_transform', r'must move the images right by 1 pixels'),
    ('LeakyRollingGenerator', 'image_transform', r"left \['shift'\] changed"),
])
def test_a_broken_generator_fails_its_check(generator, check, message):
    with pytest.raises(AssertionError, match=f"contract check '{check}' failed: .*{message}"):
        check_model_contract(gan(generator), checks=[check])


def test_networks_that_do_not_fit_together_fail_the_build_check():
    with pytest.raises(AssertionError, match='img_channels=3 but .*img_channels=1'):
        check_model_contract(gan(discriminator='MismatchedDiscriminator'), checks=['build'])


def test_every_registered_network_of_the_installed_plugins_has_a_test_model():
    declared = {case.plugin for case in model_cases()}
    assert {'pggan', 'stylegan', 'stylegan2', 'stylegan2ada'} <= declared
    assert uncovered_models() == []


def test_a_plugin_registering_an_untested_generator_is_reported():
    manager = load_plugins()
    info = manager.plugins['pggan']
    info.registered['models'].append('ContractTestTinyGenerator')
    try:
        assert uncovered_models('pggan') == ['pggan: ContractTestTinyGenerator']
    finally:
        info.registered['models'].remove('ContractTestTinyGenerator')


def test_malformed_test_models_are_named():
    manager = load_plugins()
    bad = types.SimpleNamespace(genforce_test_models=hookimpl(lambda: [dict(model={})]))
    manager.pm.register(bad, name='contract_test_bad')
    try:
        with pytest.raises(AssertionError, match=r"contract_test_bad: genforce_test_models\(\)"
                                                 r"\[0\] must be dict\(name="):
            model_cases()
    finally:
        manager.pm.unregister(bad)


# ------------------------------------------------------------------ truncation in the open

def test_sampling_options_refuse_truncation_without_a_mapping_network():
    G = TinyGenerator()
    assert contracts.sampling_options(G) == {}
    with pytest.raises(UsageError, match='TinyGenerator has no truncation .*--truncation-psi 0.7'):
        contracts.sampling_options(G, truncation_psi=0.7)
    with pytest.raises(contracts.TruncationUnsupported, match='--truncation-cutoff 2'):
        contracts.sampling_options(G, truncation_cutoff=2)


def test_image_transform_is_refused_for_a_generator_without_it():
    G = TinyGenerator()
    assert not contracts.supports_image_transform(G)
    with contracts.image_transform(G):  # nothing asked: nothing to refuse
        pass
    with pytest.raises(UsageError, match=r'TinyGenerator cannot translate or rotate its images '
                                         r'.*drop --translate 0.1,0 and --rotate 90$'):
        contracts.image_transform(G, translate=(0.1, 0), rotate=90)
    with pytest.raises(contracts.TransformUnsupported, match='drop --rotate 0$'):
        contracts.image_transform(G, rotate=0)


@pytest.mark.parametrize('translate,rotate', [((float('nan'), 0), None), (None, float('inf')),
                                              ((1, 2, 3), None)])
def test_image_transform_refuses_bad_values(translate, rotate):
    with pytest.raises(ValueError, match='finite|two numbers'):
        contracts.image_transform(RollingGenerator(), translate=translate, rotate=rotate)


def test_sampling_options_pass_truncation_to_a_style_generator():
    networks = pytest.importorskip('genforce_stylegan2.networks')
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                           mapping_kwargs=dict(num_layers=1),
                           synthesis_kwargs=dict(channel_base=64, channel_max=8,
                                                 num_fp16_res=0))
    assert isinstance(G, contracts.StyleGenerator) and contracts.supports_truncation(G)
    assert contracts.sampling_options(G, truncation_psi=0.5, noise_mode='none') == dict(
        truncation_psi=0.5, truncation_cutoff=None, noise_mode='none')
    assert contracts.sampling_options(G) == dict(noise_mode='const')


def test_synthesize_refuses_truncation_for_a_generator_without_it(genforce, tmp_path):
    pytest.importorskip('genforce_pggan')
    cfg = dict(type='PGGAN', generator=dict(type='PGGANGenerator', z_dim=8, img_resolution=8,
                                            fmap_base=32, fmap_max=8),
               discriminator=dict(type='PGGANDiscriminator', img_resolution=8, fmap_base=32,
                                  fmap_max=8))
    model = MODELS.build(cfg)
    path = save_checkpoint(dict(meta=dict(cfg=config_to_data(dict(model=cfg))),
                                state_dict=model.state_dict()), tmp_path / 'iter_1.pth')
    proc = genforce(['synthesize', str(path), '--trunc', '0.7', '--num', '1', '--device', 'cpu',
                     '--out', str(tmp_path / 'out')], check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'PGGANGenerator has no truncation' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / 'out').exists()
    proc = genforce(['synthesize', str(path), '--num', '1', '--device', 'cpu',
                     '--out', str(tmp_path / 'out')])
    assert (tmp_path / 'out' / 'seed0000.png').is_file()
