# StyleGAN2-ADA on MetFaces 1024x1024 (official cfg 'paper1024'): global batch 32 on 8 GPUs
# (4 per GPU), channel base 32768, minibatch-std group 4, lr 0.002, gamma 2, EMA 10 kimg,
# 8-layer mapping, x-flips; ADA 'bgc', target 0.6.
#   genforce prepare-dataset metfaces/images data/metfaces/metfaces1024.zip --resolution 1024
#   tools/dist_train.sh configs/stylegan2ada_metfaces1024.py 8
# The paper's best MetFaces results start from FFHQ 1024 (transfer learning):
#   --cfg-options model.init_from.checkpoint=work_dirs/ffhq1024.pth
_base_ = ['stylegan2ada_afhqcat512.py']
resolution = 1024
model = dict(
    generator=dict(img_resolution=resolution),
    discriminator=dict(img_resolution=resolution, epilogue_kwargs=dict(mbstd_group_size=4)),
    d_reg=dict(gamma=2),
    ema=dict(half_life_kimg=10),
)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.002)),
                     discriminator=dict(optimizer=dict(lr=0.002)))
train_dataloader = dict(batch_size=4, dataset=dict(path='data/metfaces/metfaces1024.zip',
                                                   resolution=resolution))
