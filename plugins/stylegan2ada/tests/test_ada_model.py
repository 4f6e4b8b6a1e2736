"""The StyleGAN2-ADA training model: augmented discriminator inputs, the adaptive p heuristic
(also over 2 processes), transfer learning with FreezeD, configs and the auto formula."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from genforce_core.checkpoint import save_checkpoint
from genforce_core.config import load_config
from genforce_core.engine.optim import GANOptimWrapperConstructor
from genforce_core.errors import CheckpointError
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS
from genforce_stylegan2ada.auto import auto_cfg_options, auto_settings, write_auto_config

REPO = Path(__file__).resolve().parents[3]
TINY_G = dict(type='StyleGAN2Generator', z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
              img_channels=3, mapping_kwargs=dict(num_layers=2),
              synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0))
TINY_D = dict(type='StyleGAN2Discriminator', c_dim=0, img_resolution=16, img_channels=3,
              channel_base=256, channel_max=16, num_fp16_res=0,
              epilogue_kwargs=dict(mbstd_group_size=2))


def tiny_model(seed=0, **kwargs):
    load_plugins()
    torch.manual_seed(seed)
    cfg = dict(type='StyleGAN2ADA', generator=TINY_G, discriminator=TINY_D,
               d_reg=dict(type='R1Penalty', gamma=1, interval=2),
               g_reg=dict(type='PathLengthPenalty', interval=2), ema=dict(half_life_kimg=0.01),
               augment=dict(type='AugmentPipe', preset='bgc', p=0.0))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def optimizers(model):
    return GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0, 0.99))),
        discriminator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0, 0.99)))))(model)


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(img=torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                label=torch.zeros(n, 0))


def fake_logits(model, value):
    """Make D's logits on every image ``value`` (while keeping the graph to D's weights)."""
    real = type(model).discriminate
    model.discriminate = lambda img, c: real(model, img, c) * 0 + value


def test_every_discriminator_input_is_augmented(monkeypatch):
    model = tiny_model(augment=dict(type='AugmentPipe', preset='bgc', p=0.5))
    seen = []
    pipe_forward = model.augment_pipe.forward
    monkeypatch.setattr(model.augment_pipe, 'forward',
                        lambda img: seen.append(img.shape[0]) or pipe_forward(img))
    model.train_step(batch(), optimizers(model))
    # Gmain (fakes), Dmain (fakes and reals in one call), Dreg (reals inside R1) at step 0.
    n = batch()['img'].shape[0]
    assert seen == [n, 2 * n, n]
    assert model.d_reg.interval == 2


@pytest.mark.parametrize('logit, direction', [(1.0, 1), (-1.0, -1)])
def test_p_moves_towards_the_target(logit, direction):
    model = tiny_model(ada_interval=2, ada_kimg=0.1, augment=dict(type='AugmentPipe', p=0.5))
    fake_logits(model, logit)
    optim = optimizers(model)
    logs = [model.train_step(batch(), optim) for _ in range(4)]
    step = 4 * 2 / 100  # batch * interval / (ada_kimg * 1000)
    assert [log['ada_p'] for log in logs] == pytest.approx(
        [0.5, 0.5 + direction * step, 0.5 + direction * step, 0.5 + 2 * direction * step])
    assert logs[-1]['ada_rt'] == pytest.approx(float(direction))
    assert model.ada_stats.tolist() == [0, 0]


def test_p_is_clamped_and_fixed_p_mode_never_moves():
    model = tiny_model(ada_interval=1, ada_kimg=0.001, augment=dict(type='AugmentPipe', p=0.1))
    fake_logits(model, -1.0)
    optim = optimizers(model)
    model.train_step(batch(), optim)
    assert float(model.augment_pipe.p) == 0.0
    fixed = tiny_model(ada_target=None, augment=dict(type='AugmentPipe', p=0.3))
    fake_logits(fixed, 1.0)
    logs = [fixed.train_step(batch(), optimizers(fixed)) for _ in range(4)]
    assert [log['ada_p'] for log in logs] == pytest.approx([0.3] * 4)
    assert 'ada_rt' not in logs[0]


def test_rt_counts_signs_of_real_logits_only():
    model = tiny_model()
    # D's logit of an image is its first pixel: the reals' signs sum to 2, the fakes' vary.
    real_img = torch.tensor([1.0, 1.0, -1.0, 0.5, -2, 3]).reshape(6, 1, 1, 1).expand(6, 3, 16, 16)
    model.discriminate = lambda img, c: img[:, 0, 0, :1]
    model._d_main_losses(real_img, torch.zeros(6, 0))
    assert model.ada_stats.tolist() == [2, 6]  # fake logits are not counted


def _dist_worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    from genforce_core.engine.distributed import all_reduce_buffers

    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world)
    try:
        model = tiny_model(seed=rank, ada_kimg=1, augment=dict(type='AugmentPipe', p=0.5))
        # Rank 0 alone would raise p (r_t = 1); summed over both ranks r_t = 2 / 10 = 0.2.
        model.ada_stats.copy_(torch.tensor([4, 4] if rank == 0 else [-2, 6]))
        all_reduce_buffers(model)  # the core's buffer averaging must leave the counts alone
        stats_after_reduce = model.ada_stats.tolist()
        model.adjust_p(global_batch=8)
        Path(out, f'rank{rank}.json').write_text(json.dumps(dict(
            p=float(model.augment_pipe.p), rt=float(model.ada_rt),
            stats=stats_after_reduce)))
    finally:
        dist.destroy_process_group()


def test_p_is_identical_across_two_processes(tmp_path):
    mp.start_processes(_dist_worker, args=(2, str(tmp_path / 'store'), str(tmp_path)),
                       nprocs=2, join=True, start_method='spawn')
    results = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert results[0]['stats'] == [4, 4] and results[1]['stats'] == [-2, 6]
    expected = 0.5 - 8 * 4 / 1000
    for r in results:
        assert r['p'] == pytest.approx(expected) and r['rt'] == pytest.approx(0.2)
    assert results[0]['p'] == results[1]['p']


# -- transfer learning -----------------------------------------------------------------------
def test_init_from_loads_the_networks_and_freeze_d_keeps_layers_fixed(tmp_path):
    source = tiny_model(seed=1)
    source.train_step(batch(), optimizers(source))  # EMA differs from the generator now
    path = save_checkpoint({'state_dict': source.state_dict(), 'meta': {}},
                           tmp_path / 'source.pth')
    model = tiny_model(seed=2, init_from=dict(checkpoint=str(path)), freeze_d=2)
    model.init_weights()
    for name in ('generator', 'generator_ema', 'discriminator'):
        ours, theirs = getattr(model, name).state_dict(), getattr(source, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name
    assert int(model.images_seen) == 0 and float(model.augment_pipe.p) == 0

    # FreezeD: layers 0 and 1 of the highest-resolution block (fromrgb, conv0) are frozen.
    frozen = {k for k, _ in model.discriminator.named_buffers() if k.endswith('weight')}
    assert frozen == {'b16.fromrgb.weight', 'b16.conv0.weight'}
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    model.train_step(batch(), optimizers(model))
    after = model.discriminator.state_dict()
    for key in ('b16.fromrgb.weight', 'b16.fromrgb.bias', 'b16.conv0.weight', 'b16.conv0.bias'):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before['b16.conv1.weight'], after['b16.conv1.weight'])


def test_init_from_errors_name_the_problem(tmp_path):
    other_d = dict(TINY_D, channel_max=8)
    source = tiny_model(discriminator=other_d)
    path = save_checkpoint({'state_dict': source.state_dict()}, tmp_path / 'src.pth')
    with pytest.raises(CheckpointError, match=r'discriminator of .*src\.pth does not fit.*'
                                              r'shape mismatches'):
        tiny_model(init_from=dict(checkpoint=str(path))).init_weights()
    model = tiny_model(init_from=dict(checkpoint=str(path), discriminator=False))
    model.init_weights()  # the generator alone fits
    g_only = save_checkpoint({'state_dict': {k: v for k, v in source.state_dict().items()
                                             if k.startswith('generator.')}},
                             tmp_path / 'g.pth')
    with pytest.raises(CheckpointError, match='holds no discriminator'):
        tiny_model(init_from=dict(checkpoint=str(g_only))).init_weights()
    with pytest.raises(CheckpointError, match='does not exist'):
        tiny_model(init_from=dict(checkpoint=str(tmp_path / 'missing.pth'))).init_weights()
    with pytest.raises(ValueError, match='init_from must be'):
        tiny_model(init_from=dict(checkpoint='x', strict=True))


def test_init_from_accepts_official_style_network_dicts(tmp_path):
    source = tiny_model(seed=3)
    path = save_checkpoint({'G': source.generator.state_dict(),
                            'D': source.discriminator.state_dict()}, tmp_path / 'official.pth')
    model = tiny_model(seed=4, init_from=dict(checkpoint=str(path)))
    model.init_weights()
    assert torch.equal(model.generator_ema.mapping.fc0.weight, source.generator.mapping.fc0.weight)


# -- configs ---------------------------------------------------------------------------------
PAPER = {  # batch per GPU (8 GPUs; CIFAR 2), gamma, EMA kimg, mbstd group, lr, mapping layers
    'stylegan2ada_afhqcat512': (512, 8, 0.5, 20, 8, 0.0025, 8),
    'stylegan2ada_afhqdog512': (512, 8, 0.5, 20, 8, 0.0025, 8),
    'stylegan2ada_afhqwild512': (512, 8, 0.5, 20, 8, 0.0025, 8),
    'stylegan2ada_brecahad512': (512, 8, 0.5, 20, 8, 0.0025, 8),
    'stylegan2ada_metfaces1024': (1024, 4, 2, 10, 4, 0.002, 8),
    'stylegan2ada_cifar10': (32, 32, 0.01, 500, 32, 0.0025, 2),
    'stylegan2ada_auto': (256, 8, 0.2048, 20, 4, 0.0025, 2),
}


@pytest.mark.parametrize('name', list(PAPER))
def test_configs_have_the_paper_settings(name):
    res, per_gpu, gamma, ema, mbstd, lr, mapping = PAPER[name]
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'),
                      {'model.init_from.checkpoint': None})
    m = cfg.model
    assert m.type == 'StyleGAN2ADA' and m.augment.preset == 'bgc' and m.ada_target == 0.6
    assert m.ada_interval == 4 and m.ada_kimg == 500
    assert cfg.train_dataloader.dataset.resolution == res == m.generator.img_resolution
    assert cfg.train_dataloader.batch_size == per_gpu and m.d_reg.gamma == pytest.approx(gamma)
    assert m.ema.half_life_kimg == ema
    assert m.discriminator.epilogue_kwargs.mbstd_group_size == mbstd
    assert cfg.optim_wrapper.generator.optimizer.lr == lr
    assert m.generator.mapping_kwargs.num_layers == mapping
    if name == 'stylegan2ada_cifar10':
        assert m.generator.c_dim == 10 and cfg.train_dataloader.dataset.use_labels
    if res <= 256:  # building the big ones is slow on 2 cores; the 256 one covers the type
        load_plugins()
        model = MODELS.build(cfg.model)
        assert float(model.augment_pipe.p) == 0 and model.init_from is None


def test_init_from_and_freeze_d_come_from_cfg_options():
    cfg = load_config(str(REPO / 'configs' / 'stylegan2ada_afhqcat512.py'),
                      {'model.init_from.checkpoint': 'ffhq.pth', 'model.freeze_d': 4})
    assert cfg.model.init_from == dict(checkpoint='ffhq.pth', generator=True,
                                       discriminator=True)
    assert cfg.model.freeze_d == 4


@pytest.mark.parametrize('res, gpus, expected', [
    # res, gpus -> batch, mbstd, channel base, lr, gamma, ema (the official auto formula)
    (256, 8, (64, 4, 16384, 0.0025, 0.2048, 20)),
    (512, 1, (8, 4, 32768, 0.0025, 6.5536, 2.5)),
    (1024, 8, (32, 4, 32768, 0.002, 6.5536, 10)),
    (128, 2, (64, 4, 16384, 0.0025, 0.0512, 20)),
    (64, 16, (64, 4, 16384, 0.0025, 0.0128, 20)),
])
def test_auto_formula(res, gpus, expected):
    s = auto_settings(res, gpus)
    got = (s['batch'], s['mbstd_group'], s['channel_base'], s['lr'], s['gamma'], s['ema_kimg'])
    assert got == pytest.approx(expected)
    assert s['mapping_layers'] == 2 and s['ema_rampup'] == 0.05
    with pytest.raises(ValueError, match='power of two'):
        auto_settings(300, 1)


def test_auto_config_file_matches_the_formula(tmp_path):
    cfg = load_config(str(REPO / 'configs' / 'stylegan2ada_auto.py'))
    for key, value in auto_cfg_options(256, 8).items():
        node = cfg
        for part in key.split('.'):
            node = node[part]
        assert node == pytest.approx(value), key
    path = write_auto_config(tmp_path / 'my.py', 64, 2, data='d.zip')
    cfg = load_config(str(path))
    assert cfg.train_dataloader.batch_size == 32 and cfg.model.d_reg.gamma == pytest.approx(
        0.0002 * 64 ** 2 / 64)
    assert cfg.train_dataloader.dataset.path == 'd.zip' and cfg.model.type == 'StyleGAN2ADA'
