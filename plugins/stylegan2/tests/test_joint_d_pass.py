"""One discriminator pass for fakes and reals in Dmain (``GAN.joint_d_pass``): the same
logits, losses and gradients as two passes, minibatch stddev included; off where it differs.

The discriminator computes in float32 whatever its input (as official), so "the same" is up to
float32 rounding: per-sample logits come out bit-identical, weight gradients differ only by
the order in which the batch is summed."""
from __future__ import annotations

import pytest
import torch

from genforce_core.models.base_gan import merge_pair, split_pair
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS


def build(group: int | None = 4, mbstd_channels: int = 1, c_dim: int = 0,
          model_type: str = 'StyleGAN2'):
    load_plugins()
    torch.manual_seed(0)
    G = dict(type='StyleGAN2Generator', z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16,
             img_channels=3, mapping_kwargs=dict(num_layers=2),
             synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
    D = dict(type='StyleGAN2Discriminator', c_dim=c_dim, img_resolution=16, img_channels=3,
             channel_base=256, channel_max=16, num_fp16_res=0,
             epilogue_kwargs=dict(mbstd_group_size=group, mbstd_num_channels=mbstd_channels))
    return MODELS.build(dict(type=model_type, generator=G, discriminator=D,
                             style_mixing_prob=0))


def d_main(model, joint: bool, real, fake, c, monkeypatch):
    """Logits and D gradients of one Dmain computation, joint pass on or off."""
    model.discriminator.zero_grad(set_to_none=True)
    model.discriminator.requires_grad_(True)
    with monkeypatch.context() as patch:
        patch.setattr(type(model), 'joint_d_pass', joint)
        fake_logits, real_logits = model.discriminate_pair(fake, c, real, c)
    losses = model.loss.d_loss(real_logits, fake_logits)
    (losses['loss_d_fake'] + losses['loss_d_real']).backward()
    grads = {n: p.grad.clone() for n, p in model.discriminator.named_parameters()}
    return fake_logits.detach(), real_logits.detach(), grads


@pytest.mark.parametrize('batch, group, mbstd_channels, c_dim', [
    (8, 4, 1, 0), (12, 4, 1, 0), (8, 2, 2, 0), (8, 4, 0, 0), (8, 4, 1, 5)])
def test_joint_pass_matches_two_passes(batch, group, mbstd_channels, c_dim, monkeypatch):
    model = build(group, mbstd_channels, c_dim)
    assert model.discriminator.joint_batch_groups(batch) == (group if mbstd_channels else 1)
    real = torch.randn(batch, 3, 16, 16, dtype=torch.float32)
    fake = torch.randn(batch, 3, 16, 16, dtype=torch.float32)
    c = torch.randn(batch, c_dim, dtype=torch.float32)
    calls = []
    model.discriminator.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    two = d_main(model, False, real, fake, c, monkeypatch)
    one = d_main(model, True, real, fake, c, monkeypatch)
    assert calls == [batch, batch, 2 * batch]
    torch.testing.assert_close(one[0], two[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(one[1], two[1], rtol=1e-6, atol=1e-7)
    assert one[2].keys() == two[2].keys() and len(one[2]) > 10
    for name, grad in two[2].items():
        scale = float(grad.abs().max())
        assert scale > 0, name
        torch.testing.assert_close(one[2][name], grad, rtol=1e-5, atol=1e-5 * scale,
                                   msg=name)


def test_a_wrong_merge_order_would_be_caught():
    """Plain concatenation regroups the minibatch stddev: the logits change, so the check
    above can fail."""
    model = build(4)
    real, fake = torch.randn(2, 8, 3, 16, 16, dtype=torch.float32)
    c = torch.zeros(8, 0, dtype=torch.float32)
    D = model.discriminator
    wrong = D(torch.cat([fake, real]), torch.cat([c, c]))[:8]
    assert (wrong - D(fake, c)).abs().max() > 1e-4  # far beyond the tolerances above


@pytest.mark.parametrize('batch, group', [(2, 4), (6, 4), (8, None)])
def test_no_merge_where_the_groups_would_change(batch, group):
    assert build(group).discriminator.joint_batch_groups(batch) is None


def test_merge_and_split_are_inverse_and_keep_mbstd_groups():
    a, b = torch.arange(8), torch.arange(8) + 100
    merged = merge_pair(a, b, 4)
    assert merged.tolist() == [0, 1, 100, 101, 2, 3, 102, 103, 4, 5, 104, 105,
                               6, 7, 106, 107]
    # Merged groups (j, j+4, j+8, j+12) are groups (i, i+2, i+4, i+6) of a or b alone.
    groups = {tuple(merged[j::4].tolist()) for j in range(4)}
    assert groups == {(0, 2, 4, 6), (1, 3, 5, 7), (100, 102, 104, 106), (101, 103, 105, 107)}
    x, y = split_pair(merged, 4)
    assert torch.equal(x, a) and torch.equal(y, b)
    empty = merge_pair(torch.zeros(8, 0), torch.zeros(8, 0), 4)
    assert empty.shape == (16, 0)


def test_opt_in_and_never_for_subclasses_that_change_what_d_sees():
    assert not build().joint_d_pass  # off by default
    on = build()
    on._joint_d_pass = True
    assert on.joint_d_pass
    load_plugins()
    ada = MODELS.get('StyleGAN2ADA')
    if ada is None:
        pytest.skip('stylegan2ada plugin not installed')
    ada_model = object.__new__(ada)
    ada_model.__dict__['_joint_d_pass'] = True
    assert not ada.joint_d_pass.fget(ada_model)  # augmentation differs per call
