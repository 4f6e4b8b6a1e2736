"""NVIDIA TensorFlow StyleGAN2 / StyleGAN2-ADA pickles (variables in TF names and layouts)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genforce_converters.converters import get_converter
from genforce_converters.safe_pickle import TFNetwork, load_pickle
from genforce_converters.testing import write_tf_pickle
from genforce_converters.tf_stylegan2 import (
    discriminator_name,
    generator_name,
    official_to_tf_generator,
    to_torch,
)
from genforce_core import load_generator
from genforce_core.errors import CheckpointError


@pytest.mark.parametrize('fmt', ['stylegan2_tf', 'stylegan2ada_tf'])
def test_reproduces_official_outputs(tmp_path, official, check_official_outputs, fmt):
    marker = tmp_path / 'build_source_ran'
    src = write_tf_pickle(tmp_path / 'stylegan2-test-config-a.pkl', official.G.state_dict(),
                          official.D.state_dict(), marker=str(marker),
                          static_kwargs=dict(resolution=32, mbstd_group_size=4))
    converter = get_converter(fmt)
    out = converter.convert_file(src, tmp_path / 'out.pth')
    assert not marker.exists()
    check_official_outputs(official, load_generator(out))
    model = converter.read(src).build_model()
    check_official_outputs(official, model.generator, model.discriminator)


def test_pickle_holds_tf_names_and_layouts(tmp_path, official):
    """The written file looks like the TF release: Network objects, TF names, HWIO kernels."""
    src = write_tf_pickle(tmp_path / 'tf.pkl', official.G.state_dict(), official.D.state_dict())
    G, D, Gs = load_pickle(src)
    assert all(isinstance(n, TFNetwork) for n in (G, D, Gs))
    tf_vars = Gs.variables()
    assert tf_vars['synthesis/4x4/Conv/weight'].shape == (3, 3, 64, 64)  # HWIO
    assert tf_vars['synthesis/4x4/Const/const'].shape == (1, 64, 4, 4)
    assert tf_vars['synthesis/noise0'].shape == (1, 1, 4, 4)
    assert tf_vars['synthesis/noise6'].shape == (1, 1, 32, 32)
    assert tf_vars['mapping/Dense0/weight'].shape == (64, 64)
    assert tf_vars['synthesis/32x32/ToRGB/mod_weight'].shape == (64, 32)  # [w_dim, in]
    assert tf_vars['dlatent_avg'].shape == (64,)
    sd = official.G.state_dict()
    np.testing.assert_allclose(tf_vars['synthesis/8x8/Conv0_up/mod_bias'] + 1,
                               sd['synthesis.b8.conv0.affine.bias'].numpy())
    assert set(D.variables()) >= {'32x32/FromRGB/weight', '32x32/Conv1_down/weight',
                                  '32x32/Skip/weight', '4x4/Conv/weight', '4x4/Dense0/weight',
                                  'Output/weight'}
    # The Network.vars spelling (component names) maps the same way.
    assert generator_name('G_synthesis/8x8/Conv1/weight') == ('synthesis.b8.conv1.weight',
                                                              'conv')
    assert generator_name('synthesis/8x8/Conv0_up/weight')[1] == 'conv_up'
    assert discriminator_name('8x8/Conv1_down/weight') == ('b8.conv1.weight', 'conv')


def _tf_up_conv(x: torch.Tensor, w_hwio: np.ndarray) -> torch.Tensor:
    """TF ``upsample_conv_2d`` semantics, written directly: insert zeros, correlate with the
    stored kernel, blur with [1,3,3,1] (gain 4). Full padding: the caller searches the crop."""
    n, c, h, w = x.shape
    up = x.new_zeros([n, c, 2 * h, 2 * w])
    up[:, :, ::2, ::2] = x
    k = torch.from_numpy(w_hwio.transpose(3, 2, 0, 1).copy())  # OIHW, not flipped
    y = F.conv2d(up, k, padding=k.shape[-1] - 1)
    f = torch.tensor([1., 3., 3., 1.])
    f = (f[:, None] * f[None, :]) / 64 * 4
    f = f.expand(y.shape[1], 1, 4, 4)
    return F.conv2d(y, f, padding=3, groups=y.shape[1])


def _tf_down_conv(x: torch.Tensor, w_hwio: np.ndarray) -> torch.Tensor:
    """TF ``conv_downsample_2d`` semantics: blur, then correlate (stride 2, taken later)."""
    f = torch.tensor([1., 3., 3., 1.])
    f = (f[:, None] * f[None, :]) / 64
    x = F.conv2d(x, f.expand(x.shape[1], 1, 4, 4), padding=3, groups=x.shape[1])
    k = torch.from_numpy(w_hwio.transpose(3, 2, 0, 1).copy())
    return F.conv2d(x, k, padding=k.shape[-1] - 1)


def _matches_some_crop(ref: torch.Tensor, out: torch.Tensor, step: int) -> bool:
    h, w = out.shape[-2:]
    for dy in range(ref.shape[-2] - step * (h - 1)):
        for dx in range(ref.shape[-1] - step * (w - 1)):
            crop = ref[..., dy::step, dx::step][..., :h, :w]
            if crop.shape == out.shape and (crop - out).abs().max() < 1e-4:
                return True
    return False


@pytest.mark.parametrize('direction', ['up', 'down'])
def test_kernel_orientation_follows_tf_semantics(direction):
    """The layout rules, checked against TF's resampling convolutions written from their
    definition (independent of the inverse mapping used to build test files)."""
    from genforce_stylegan2.networks import Conv2dLayer

    torch.manual_seed(0)
    w_hwio = np.random.RandomState(0).randn(3, 3, 2, 3).astype(np.float32)  # asymmetric
    x = torch.randn(1, 2, 6, 6)
    layer = Conv2dLayer(2, 3, kernel_size=3, bias=False, up=2 if direction == 'up' else 1,
                        down=2 if direction == 'down' else 1)
    kind = generator_name('synthesis/8x8/Conv0_up/weight')[1] if direction == 'up' else \
        discriminator_name('8x8/Conv1_down/weight')[1]
    gain = layer.weight_gain
    ref = (_tf_up_conv(x, w_hwio) if direction == 'up' else _tf_down_conv(x, w_hwio)) * gain
    step = 1 if direction == 'up' else 2
    with torch.no_grad():
        layer.weight.copy_(to_torch(w_hwio, kind))
        assert _matches_some_crop(ref, layer(x), step)
        # The other orientation must not match anywhere (so this test can fail).
        layer.weight.copy_(to_torch(w_hwio, kind).flip([2, 3]))
        assert not _matches_some_crop(ref, layer(x), step)


def test_unknown_variables_are_reported(tmp_path, official):
    tf_vars = official_to_tf_generator(official.G.state_dict())
    assert 'synthesis/4x4/Conv/weight' in tf_vars
    from genforce_converters.tf_stylegan2 import tf_to_official_generator

    tf_vars['synthesis/4x4/Conv/StyleMod/weight'] = np.zeros(3)
    with pytest.raises(CheckpointError, match='StyleMod'):
        tf_to_official_generator(tf_vars)
    src = tmp_path / 'pt.pkl'
    import pickle
    src.write_bytes(pickle.dumps({'G_ema': 1}))
    with pytest.raises(CheckpointError, match='PyTorch pickle'):
        get_converter('stylegan2_tf').read(src)
