# A small StyleGAN2 on the built-in shapes dataset (32x32): what `tools/demo.sh` trains when a
# GPU is present. On 2 CPU cores it runs at about 50 img/s, so the CPU demo trains the example
# DCGAN instead (configs/demo.py, about 210 img/s).
_base_ = ['_base_/models/stylegan2.py', '_base_/datasets/image_dataset.py',
          '_base_/default_runtime.py']
resolution = 32
model = dict(
    generator=dict(z_dim=64, w_dim=64, img_resolution=resolution,
                   mapping_kwargs=dict(num_layers=2),
                   synthesis_kwargs=dict(channel_base=2048, channel_max=64, num_fp16_res=0,
                                         conv_clamp=None)),
    discriminator=dict(img_resolution=resolution, channel_base=2048, channel_max=64,
                       num_fp16_res=0, conv_clamp=None),
    d_reg=dict(gamma=0.05),
    ema=dict(half_life_kimg=2, rampup=0.05),
)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.0025)),
                     discriminator=dict(optimizer=dict(lr=0.0025)))
train_dataloader = dict(batch_size=32, num_workers=2,
                        dataset=dict(path='data/builtin/shapes32.zip', resolution=resolution))
train_cfg = dict(total_kimg=200)
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg=10, num_samples=64),
    dict(type='GANProgressHook', interval=50),
    dict(type='KimgCheckpointHook', interval_kimg=50, max_keep_ckpts=2),
]
default_hooks = dict(logger=dict(interval=50))
