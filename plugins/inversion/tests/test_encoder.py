"""The encoder network and its training model (In-Domain GAN Inversion)."""
from __future__ import annotations

import pytest
import torch

from genforce_core.data.builtin import ensure_builtin_dataset
from genforce_core.data.datasets import ImageDataset
from genforce_core.engine.optim import GANOptimWrapperConstructor
from genforce_core.registry import MODELS
from genforce_inversion.encoder import ResNetStyleEncoder, split_ws


@pytest.mark.parametrize('res', [16, 32])
def test_encoder_output_matches_the_generator(tiny_generator, tiny, res):
    G = tiny_generator(res)
    E = MODELS.build(dict(tiny.encoder, resolution=res, num_ws=G.num_ws, w_dim=G.w_dim))
    ws = E(torch.rand(3, 3, res, res) * 2 - 1)
    assert ws.shape == (3, G.num_ws, G.w_dim)
    assert G.synthesis(ws, noise_mode='const').shape == (3, 3, res, res)
    with pytest.raises(ValueError, match=f'\\[N, 3, {res}, {res}\\]'):
        E(torch.zeros(1, 3, res // 2, res // 2))


def test_heads_split_the_codes_coarse_to_fine():
    assert split_ws(14, 3) == [4, 4, 6]  # GenForce's split at 256x256
    assert split_ws(7, 3) == [3, 2, 2]
    E = ResNetStyleEncoder(64, num_ws=10, w_dim=8, base_channels=8, max_channels=16,
                           fpn_channels=8, norm='none')
    assert E.ws_per_head == [4, 4, 2] and len(E.stages) == 4
    E.w_offset.fill_(3)
    for head in E.heads:  # with zero heads the output is the offset (w_avg)
        torch.nn.init.zeros_(head[-1].weight)
        torch.nn.init.zeros_(head[-1].bias)
    assert torch.equal(E(torch.zeros(2, 3, 64, 64)), torch.full((2, 10, 8), 3.0))
    with pytest.raises(ValueError, match='ws_per_head'):
        ResNetStyleEncoder(64, num_ws=10, w_dim=8, ws_per_head=[5, 5])


def build_model(tiny, vgg_weights, **kwargs):
    G, D = tiny.networks(16)
    torch.manual_seed(0)
    cfg = dict(type='InDomainEncoder', generator=G, discriminator=D, encoder=tiny.encoder,
               perceptual=dict(weights=str(vgg_weights)))
    return MODELS.build(dict(cfg, **kwargs))


def test_training_reduces_the_losses_and_keeps_the_generator_frozen(tiny, vgg_weights,
                                                                    tmp_path):
    model = build_model(tiny, vgg_weights)
    assert model.encoder.num_ws == model.generator.num_ws
    assert not any(k.startswith('perceptual') for k in model.state_dict())
    optim = GANOptimWrapperConstructor(dict(
        encoder=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.99))),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99)))))(model)
    assert optim['discriminator'].optimizer.param_groups[0]['lr'] == 1e-4  # no lazy rescale
    data = ImageDataset(path=str(ensure_builtin_dataset(tmp_path, resolution=16,
                                                        num_images=32)), resolution=16)
    imgs = torch.stack([torch.as_tensor(data[i]['img']) for i in range(16)])
    g_before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    model.train()
    logs = [model.train_step(dict(img=imgs[i % 2 * 8:i % 2 * 8 + 8], label=torch.zeros(8, 0)),
                             optim) for i in range(24)]
    assert {'loss_pix', 'loss_feat', 'loss_adv', 'loss_d_real', 'loss_d_fake', 'loss_r1'} \
        <= set(logs[0])

    def mean(key, part):
        return sum(float(log[key]) for log in part) / len(part)

    assert mean('loss_pix', logs[-4:]) < 0.5 * mean('loss_pix', logs[:4])
    assert mean('feat_mse', logs[-4:]) < mean('feat_mse', logs[:4])
    assert all(torch.equal(v, g_before[k]) for k, v in model.generator.state_dict().items())
    assert any(not torch.equal(v, d_before[k])
               for k, v in model.discriminator.state_dict().items())
    assert int(model.images_seen) == 24 * 8 and not model.generator.training


def test_loss_weights_follow_genforce(tiny, vgg_weights):
    model = build_model(tiny, vgg_weights)
    assert (model.pixel_weight, model.perceptual_weight, model.adv_weight,
            model.r1_gamma) == (1.0, 5e-5, 0.08, 10.0)
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    losses = model._e_losses(img, torch.zeros(2, 0))
    rec = model.reconstruct(img)
    torch.testing.assert_close(losses['loss_pix'], (rec - img).square().mean())
    torch.testing.assert_close(losses['loss_feat'], losses['feat_mse'] * 5e-5)
    logits = model.discriminator(rec, torch.zeros(2, 0))
    torch.testing.assert_close(losses['loss_adv'],
                               torch.nn.functional.softplus(-logits).mean() * 0.08)


def test_generator_and_discriminator_from_a_gan_checkpoint(tiny, vgg_weights, gan_checkpoint):
    from genforce_core.checkpoint import load_checkpoint

    state = load_checkpoint(gan_checkpoint)['state_dict']
    model = MODELS.build(dict(type='InDomainEncoder', gan_checkpoint=str(gan_checkpoint),
                              encoder=tiny.encoder, perceptual=dict(weights=str(vgg_weights))))
    for k, v in model.generator.state_dict().items():
        assert torch.equal(v, state[f'generator_ema.{k}']), k
    for k, v in model.discriminator.state_dict().items():
        assert torch.equal(v, state[f'discriminator.{k}']), k
    torch.testing.assert_close(model.encoder.w_offset, state['generator_ema.mapping.w_avg'])
    with pytest.raises(ValueError, match='gan_checkpoint'):
        MODELS.build(dict(type='InDomainEncoder', encoder=tiny.encoder))


def test_stylegan_v1_generator_trains_an_encoder(vgg_weights, tiny):
    """Any style-based generator works: the StyleGAN (v1) networks, when installed."""
    networks = pytest.importorskip('genforce_stylegan.networks')
    torch.manual_seed(0)
    G = networks.StyleGANGenerator(z_dim=16, w_dim=16, img_resolution=16,
                                   mapping_kwargs=dict(num_layers=2),
                                   synthesis_kwargs=dict(fmap_base=64, fmap_max=16))
    with torch.no_grad():
        G.mapping.dlatent_avg.normal_()
    D = networks.StyleGANDiscriminator(img_resolution=16, fmap_base=64, fmap_max=16,
                                       mbstd_group_size=2)
    model = MODELS.build(dict(type='InDomainEncoder', generator=G, discriminator=D,
                              encoder=tiny.encoder, perceptual=dict(weights=str(vgg_weights))))
    assert torch.equal(model.encoder.w_offset, G.mapping.dlatent_avg)
    optim = GANOptimWrapperConstructor(dict(
        encoder=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-4))))(model)
    model.train()
    img = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    logs = [model.train_step(dict(img=img, label=torch.zeros(4, 0)), optim) for _ in range(8)]
    assert float(logs[-1]['loss_pix']) < float(logs[0]['loss_pix'])
    assert model.encode(img.float() / 127.5 - 1).shape == (4, G.num_ws, 16)
