"""VGG16 perceptual features: torchvision's parameter names, weight loading, and the
documented error when the weights are missing."""
from __future__ import annotations

import pytest
import torch

from genforce_core.errors import GenforceError
from genforce_inversion.perceptual import (
    VGG16_ENV_VAR,
    VGG16_URL,
    VGG16Features,
    VGGWeightsNotFoundError,
    normalized_feature_distance,
)

TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def test_parameter_names_are_torchvisions():
    vgg = VGG16Features(last_layer='conv5_3', pretrained=False)
    expected = [f'features.{i}.{p}' for i in TORCHVISION_CONV_INDICES for p in ('weight', 'bias')]
    assert list(vgg.state_dict()) == expected
    assert list(VGG16Features(pretrained=False).state_dict()) == expected[:20]  # to conv4_3


def test_loads_a_torchvision_state_dict_and_extracts_conv4_3(vgg_weights):
    saved = torch.load(vgg_weights, weights_only=True)
    vgg = VGG16Features(weights=vgg_weights)
    assert torch.equal(vgg.features[21].weight, saved['features.21.weight'])
    assert not any(p.requires_grad for p in vgg.parameters())
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    (feat,) = vgg(img)
    assert feat.shape == (2, 512, 4, 4) and (feat >= 0).all()
    # ImageNet normalisation: the first conv sees ((x + 1) / 2 - mean) / std.
    x01 = (img + 1) / 2
    norm = (x01 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv1 = torch.nn.functional.conv2d(norm, saved['features.0.weight'],
                                       saved['features.0.bias'], padding=1).relu()
    (relu1_1,) = vgg(img, ['conv1_1'])
    torch.testing.assert_close(relu1_1, conv1)


def test_env_var_is_used(vgg_weights, monkeypatch):
    monkeypatch.setenv(VGG16_ENV_VAR, str(vgg_weights))
    assert VGG16Features().weights_path == vgg_weights


def test_missing_weights_give_the_documented_error(tmp_path, monkeypatch):
    monkeypatch.delenv(VGG16_ENV_VAR, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    with pytest.raises(VGGWeightsNotFoundError) as err:
        VGG16Features()
    message = str(err.value)
    assert VGG16_URL in message and VGG16_ENV_VAR in message and '--vgg' in message
    assert str(tmp_path / 'torch' / 'hub' / 'checkpoints' / 'vgg16-397923af.pth') in message
    with pytest.raises(VGGWeightsNotFoundError, match='nowhere.pth does not exist'):
        VGG16Features(weights=tmp_path / 'nowhere.pth')
    monkeypatch.setenv(VGG16_ENV_VAR, str(tmp_path / 'missing.pth'))
    with pytest.raises(VGGWeightsNotFoundError, match=f'{VGG16_ENV_VAR}=.*missing.pth'):
        VGG16Features()


def test_a_wrong_file_names_the_mismatch(tmp_path):
    state = VGG16Features(pretrained=False).state_dict()
    state['features.5.weight'] = torch.zeros(1, 1, 3, 3)
    path = tmp_path / 'bad.pth'
    torch.save(state, path)
    with pytest.raises(GenforceError, match='features.5.weight'):
        VGG16Features(weights=path)


def test_normalized_feature_distance():
    a = [torch.rand(2, 8, 4, 4), torch.rand(2, 16, 2, 2)]
    assert torch.allclose(normalized_feature_distance(a, a), torch.zeros(2))
    scaled = [f * 3 for f in a]  # invariant to the scale of the features
    assert torch.allclose(normalized_feature_distance(a, scaled), torch.zeros(2), atol=1e-6)
    b = [torch.rand(2, 8, 4, 4), torch.rand(2, 16, 2, 2)]
    d = normalized_feature_distance(a, b)
    assert d.shape == (2,) and (d > 0).all() and (d <= 8).all()
