# In-Domain GAN Inversion encoder for a StyleGAN (v1) FFHQ 256x256 generator (a genforce
# checkpoint of a StyleGAN, trained with a StyleGAN config or converted from official weights).
# Everything else is configs/stylegan2_ffhq256_encoder.py (the original GenForce defaults).
#   tools/dist_train.sh configs/stylegan_ffhq256_encoder.py 8 \
#       --cfg-options model.gan_checkpoint=work_dirs/stylegan_ffhq256/iter_N.pth
_base_ = ['./stylegan2_ffhq256_encoder.py']

model = dict(
    gan_checkpoint='checkpoints/stylegan_ffhq256.pth',  # a genforce StyleGAN checkpoint
    # Networks are rebuilt from the config stored in the checkpoint; for a checkpoint without
    # one, give them here, e.g. generator=dict(type='StyleGANGenerator', ...).
)
