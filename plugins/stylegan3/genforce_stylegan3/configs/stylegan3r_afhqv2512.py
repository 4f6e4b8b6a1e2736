# StyleGAN3-R on AFHQv2 512x512: global batch 32 on 8 GPUs, gamma 16.4, x-flips, adaptive
# augmentation as stylegan3t_afhqv2512, blur of D's inputs from sigma 10 over 200 kimg.
#   genforce prepare-dataset afhqv2/train data/afhqv2/afhqv2512.zip --resolution 512
#   tools/dist_train.sh configs/stylegan3r_afhqv2512.py 8
_base_ = ['stylegan3t_afhqv2512.py']
model = dict(
    generator=dict(channel_base=65536, channel_max=1024, conv_kernel=1,
                   use_radial_filters=True),
    d_reg=dict(gamma=16.4),
    blur_init_sigma=10,
)
