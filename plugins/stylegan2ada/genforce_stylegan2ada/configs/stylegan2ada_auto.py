# StyleGAN2-ADA with the official cfg=auto heuristic, here for 256x256 on 8 GPUs: global batch
# 64 (8 per GPU), minibatch-std group 4, channel base 16384, lr 0.0025,
# gamma = 0.0002 * 256**2 / 64 = 0.2048, EMA 64 * 10 / 32 = 20 kimg with ramp-up 0.05,
# 2-layer mapping; ADA 'bgc', target 0.6. Other resolutions and GPU counts:
#   python -m genforce_stylegan2ada.auto --resolution 512 --gpus 4 --data D.zip --out my.py
# (genforce_stylegan2ada.auto.auto_settings holds the formulas; a test checks these numbers).
_base_ = ['stylegan2ada_afhqcat512.py']
resolution = 256
model = dict(
    generator=dict(img_resolution=resolution, mapping_kwargs=dict(num_layers=2),
                   synthesis_kwargs=dict(channel_base=16384)),
    discriminator=dict(img_resolution=resolution, channel_base=16384,
                       epilogue_kwargs=dict(mbstd_group_size=4)),
    d_reg=dict(gamma=0.2048),
    ema=dict(half_life_kimg=20.0, rampup=0.05),
)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.0025)),
                     discriminator=dict(optimizer=dict(lr=0.0025)))
train_dataloader = dict(batch_size=8, dataset=dict(path='data/mydata256.zip',
                                                   resolution=resolution))
