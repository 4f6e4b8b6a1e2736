# The built-in demo (`bash tools/demo.sh`): a small conditional StyleGAN2 on the built-in shapes
# dataset (`builtin:shapes32`, 32x32: written on first use to ~/.cache/genforce/builtin), sized
# to draw recognisable coloured shapes within about 10 minutes on 2 CPU cores: 64-wide w, 2-layer
# mapping at 30x the official mapping learning rate, at most 32 channels (8 at 32x32, 16 at
# 16x16), float32 only, batch 32, lr 0.01, no path length or style mixing (as the official cifar
# config), EMA half-life 2 kimg with ramp-up.
# Every setting below was measured (docs/demo_tuning.md): batch 32 trains ~1.6x the images per
# second of batch 16 on 2 cores and, at lr 0.01, learns as much per kimg as batch 16 at 0.005;
# half the channels again (`channel_base=256`) trains ~1.3-1.7x faster and, after a slower start,
# learns as much per kimg from 100 kimg on. R1 gamma 5, far above the official `auto` rule
# (0.0002 * 32^2 / 32 = 0.0064): gamma 0.01 collapsed the unconditional demo onto one or two
# colours, gamma 1 late in training learned no faster. Conditional on each image's built-in label, its shape, colour and ground as one
# 15-d vector (three one-hots; the official conditional StyleGAN2-ADA: label embedding in G's
# mapping, projection in D), so what a square is is learned from the squares of every colour
# and ground. D maps the label through 2 layers as G does (the official 8 learn more slowly).
# Mapping lr multiplier 0.3 in G and D (official 0.01): at 200 kimg 83-94 % recognised on seeds
# 0-3, against 71-81 % (seeds 0-2) with 0.01 and 73-90 % with 0.1.
# Everything else is the StyleGAN2 base.
_base_ = ['_base_/models/stylegan2.py']
resolution = 32
model = dict(
    generator=dict(z_dim=64, w_dim=64, c_dim=15, img_resolution=resolution,
                   mapping_kwargs=dict(num_layers=2, lr_multiplier=0.3),
                   synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0,
                                         conv_clamp=None)),
    discriminator=dict(c_dim=15, img_resolution=resolution, channel_base=256, channel_max=32,
                       num_fp16_res=0, conv_clamp=None,
                       mapping_kwargs=dict(num_layers=2, lr_multiplier=0.3)),
    d_reg=dict(gamma=5),
    g_reg=None,
    style_mixing_prob=0,
    ema=dict(half_life_kimg=2, rampup=0.05),
)
# reg_interval=4: G's Adam keeps the lazy-regularization rescaling, as official with PL off.
optim_wrapper = dict(generator=dict(reg_interval=4, optimizer=dict(lr=0.01)),
                     discriminator=dict(optimizer=dict(lr=0.01)))
train_dataloader = dict(batch_size=32, num_workers=1,
                        dataset=dict(path='builtin:shapes32', resolution=resolution,
                                     use_labels=True))
# 200 kimg: the recognised share passes 80 % by then on seeds 0-3 (docs/demo_tuning.md).
train_cfg = dict(total_kimg=200)
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg=10, num_samples=64),
    dict(type='GANProgressHook', interval=100),
    dict(type='KimgCheckpointHook', interval_kimg=20, max_keep_ckpts=2),
    dict(type='KimgEvalHook', interval_kimg=20),
]
# Quality of the samples, offline (ShapesQuality from genforce-plugin-metrics-fid): 1000
# generated images judged by a small classifier of the built-in shapes (trained once, cached in
# ~/.cache/genforce/shapes_classifier): shapes_recognised, shapes_coverage (of the 96
# shape/colour/ground combinations) and shapes_fd, logged every 20 kimg and at the end, and
# computed by `genforce test configs/demo.py CHECKPOINT`.
val_dataloader = dict(batch_size=64, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='ImageDataset', path='builtin:shapes32',
                                   resolution=resolution),
                      collate_fn=dict(type='default_collate'))
val_cfg = dict(type='GenerativeValLoop')
val_evaluator = [dict(type='ShapesQuality', num_gen=1000)]
test_dataloader = val_dataloader
test_cfg = dict(type='GenerativeTestLoop')
test_evaluator = val_evaluator
default_hooks = dict(logger=dict(interval=100))
