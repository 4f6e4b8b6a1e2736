# StyleGAN3-T on MetFaces-U 1024x1024 (unaligned MetFaces), the official fine-tuning setting:
# global batch 32 on 8 GPUs, gamma 6.6, x-flips, adaptive augmentation, 5000 kimg, starting
# from a StyleGAN3-T trained on FFHQ-U 1024 (transfer learning; give a genforce checkpoint,
# e.g. a converted official one). As officially when resuming: ADA speed 100 kimg, no EMA
# ramp-up (and no blur of D's inputs for R):
#   genforce prepare-dataset metfacesu/images data/metfacesu/metfacesu1024.zip --resolution 1024
#   tools/dist_train.sh configs/stylegan3t_metfacesu1024.py 8 \
#       --cfg-options model.init_from.checkpoint=stylegan3t_ffhqu1024.pth
_base_ = ['stylegan3t_afhqv2512.py']
resolution = 1024
model = dict(
    generator=dict(img_resolution=resolution),
    discriminator=dict(img_resolution=resolution),
    d_reg=dict(gamma=6.6),
    ema=dict(rampup=None),
    ada_kimg=100,
)
train_dataloader = dict(dataset=dict(path='data/metfacesu/metfacesu1024.zip',
                                     resolution=resolution))
train_cfg = dict(total_kimg=5000)
