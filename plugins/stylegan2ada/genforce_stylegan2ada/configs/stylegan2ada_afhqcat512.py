# StyleGAN2-ADA on AFHQ Cat 512x512 from scratch, the paper's settings (official cfg 'paper512'):
# global batch 64 on 8 GPUs (8 per GPU), full channels (base 32768), minibatch-std group 8,
# lr 0.0025, gamma 0.5, EMA 20 kimg, 8-layer mapping, x-flips, 25000 kimg; adaptive
# augmentation with the 'bgc' pipeline, target r_t = 0.6, p adjusted every 4 iterations with
# a speed of 500 kimg.
#   genforce prepare-dataset afhq/train/cat data/afhq/afhqcat512.zip --resolution 512
#   tools/dist_train.sh configs/stylegan2ada_afhqcat512.py 8
# Transfer learning (paper section 4): start from a pretrained genforce checkpoint (e.g. a
# converted official one) and optionally freeze the discriminator's first layers:
#   --cfg-options model.init_from.checkpoint=ffhq512.pth model.freeze_d=10
_base_ = ['genforce_stylegan2::_base_/models/stylegan2.py']
resolution = 512
model = dict(
    type='StyleGAN2ADA',
    generator=dict(img_resolution=resolution, synthesis_kwargs=dict(channel_base=32768)),
    discriminator=dict(img_resolution=resolution, channel_base=32768,
                       epilogue_kwargs=dict(mbstd_group_size=8)),
    d_reg=dict(gamma=0.5),
    ema=dict(half_life_kimg=20, rampup=None),
    augment=dict(type='AugmentPipe', preset='bgc', p=0.0),
    ada_target=0.6,
    ada_interval=4,
    ada_kimg=500,
    init_from=dict(checkpoint=None, generator=True, discriminator=True),
    freeze_d=0,
)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.0025)),
                     discriminator=dict(optimizer=dict(lr=0.0025)))
train_dataloader = dict(batch_size=8,
                        dataset=dict(path='data/afhq/afhqcat512.zip', resolution=resolution))
train_cfg = dict(total_kimg=25000)
