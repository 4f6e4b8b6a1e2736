# The built-in demo (`bash tools/demo.sh`): a small conditional StyleGAN2 on the built-in shapes
# dataset (`builtin:shapes32`, 32x32: written on first use to ~/.cache/genforce/builtin), sized
# to show coloured shapes within minutes on 2 CPU cores: 64-wide w, 2-layer mapping, at most 32
# channels (16 at 32x32), float32 only, batch 16, lr 0.005, no path length or style mixing (as
# the official cifar config), EMA half-life 2 kimg with ramp-up. Half the channels of the
# first demo (64, 32 at 32x32) learn as much per kimg at twice the speed (docs/demo_tuning.md),
# so the demo trains 100 kimg in about 10 minutes. R1 gamma 5, far above the official `auto`
# rule (0.0002 * 32^2 / 16 = 0.0128): gamma 5 and 2 covered 52 % and 45 % of the
# shape/colour/ground combinations after 60 kimg, gamma 0.01 collapsed onto one or two colours.
# Conditional on each image's built-in label, its shape, colour and ground as one 15-d vector
# (three one-hots; the official conditional StyleGAN2-ADA: label embedding in G's mapping,
# projection in D), so what a square is is learned from the squares of every colour and
# ground: after 100 kimg (seed 0) 65 % recognised and 98 % of the 96 combinations covered,
# against 27 % and 49 % unconditional (docs/demo_tuning.md). D maps the label through 2
# layers as G does (the official 8 learn more slowly here).
# Everything else is the StyleGAN2 base.
_base_ = ['_base_/models/stylegan2.py']
resolution = 32
model = dict(
    generator=dict(z_dim=64, w_dim=64, c_dim=15, img_resolution=resolution,
                   mapping_kwargs=dict(num_layers=2),
                   synthesis_kwargs=dict(channel_base=512, channel_max=32, num_fp16_res=0,
                                         conv_clamp=None)),
    discriminator=dict(c_dim=15, img_resolution=resolution, channel_base=512, channel_max=32,
                       num_fp16_res=0, conv_clamp=None, mapping_kwargs=dict(num_layers=2)),
    d_reg=dict(gamma=5),
    g_reg=None,
    style_mixing_prob=0,
    ema=dict(half_life_kimg=2, rampup=0.05),
)
# reg_interval=4: G's Adam keeps the lazy-regularization rescaling, as official with PL off.
optim_wrapper = dict(generator=dict(reg_interval=4, optimizer=dict(lr=0.005)),
                     discriminator=dict(optimizer=dict(lr=0.005)))
train_dataloader = dict(batch_size=16, num_workers=1,
                        dataset=dict(path='builtin:shapes32', resolution=resolution,
                                     use_labels=True))
train_cfg = dict(total_kimg=100)
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg=10, num_samples=64),
    dict(type='GANProgressHook', interval=100),
    dict(type='KimgCheckpointHook', interval_kimg=20, max_keep_ckpts=2),
    dict(type='KimgEvalHook', interval_kimg=10),
]
# Quality of the samples, offline (ShapesQuality from genforce-plugin-metrics-fid): 1000
# generated images judged by a small classifier of the built-in shapes (trained once, cached in
# ~/.cache/genforce/shapes_classifier): shapes_recognised, shapes_coverage (of the 96
# shape/colour/ground combinations) and shapes_fd, logged every 10 kimg and at the end, and
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
