# StyleGAN3-R on MetFaces-U 1024x1024, the official fine-tuning setting: global batch 32 on 8
# GPUs, gamma 6.6, x-flips, adaptive augmentation, 5000 kimg, no blur of D's inputs and no EMA
# ramp-up (both off when resuming, as officially), starting from a StyleGAN3-R trained on
# FFHQ-U 1024:
#   genforce prepare-dataset metfacesu/images data/metfacesu/metfacesu1024.zip --resolution 1024
#   tools/dist_train.sh configs/stylegan3r_metfacesu1024.py 8 \
#       --cfg-options model.init_from.checkpoint=stylegan3r_ffhqu1024.pth
_base_ = ['stylegan3t_metfacesu1024.py']
model = dict(
    generator=dict(channel_base=65536, channel_max=1024, conv_kernel=1,
                   use_radial_filters=True),
)  # the T config's blur_init_sigma=0 stays (R's 10 is for training from scratch)
