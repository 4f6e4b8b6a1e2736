# In-Domain GAN Inversion encoder (Zhu et al. 2020) for a StyleGAN2 FFHQ 256x256 generator
# (configs/stylegan2_ffhq256.py), with the original GenForce defaults: encoder and
# discriminator Adam(lr 1e-4, betas (0.9, 0.99)), losses pixel MSE + 5e-5 * VGG16 conv4_3
# feature MSE + 0.08 * adversarial, R1 gamma 10 on reals every D step; the generator is frozen
# and the discriminator starts from the GAN's. Batch 8 per GPU (global 64 on 8 GPUs).
#   tools/dist_train.sh configs/stylegan2_ffhq256_encoder.py 8 \
#       --cfg-options model.gan_checkpoint=work_dirs/stylegan2_ffhq256/iter_N.pth
# Needs torchvision's VGG16 weights: see plugins/inversion/README.md (GENFORCE_VGG16_WEIGHTS).
_base_ = ['genforce_core::_base_/default_runtime.py',
          'genforce_core::_base_/datasets/image_dataset.py']
resolution = 256
model = dict(
    type='InDomainEncoder',
    gan_checkpoint='checkpoints/stylegan2_ffhq256.pth',  # a genforce StyleGAN2 checkpoint
    init_discriminator=True,
    encoder=dict(type='ResNetStyleEncoder', base_channels=64, max_channels=512,
                 blocks_per_stage=2, fpn_channels=512, norm='batch'),
    perceptual=dict(weights=None, last_layer='conv4_3'),  # None: $GENFORCE_VGG16_WEIGHTS, ...
    pixel_weight=1.0,
    perceptual_weight=5e-5,
    adv_weight=0.08,
    r1_gamma=10.0,
    synthesis_kwargs=dict(noise_mode='const'),
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    encoder=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99))),
    discriminator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99))),
)
train_cfg = dict(type='GANTrainLoop', total_kimg=10000)
train_dataloader = dict(batch_size=8,
                        dataset=dict(path='data/ffhq/ffhq256.zip', resolution=resolution))
custom_hooks = [
    dict(type='ReconstructionGridHook', interval_kimg=50, num_samples=16),
    dict(type='GANProgressHook', interval=100),
    dict(type='KimgCheckpointHook', interval_kimg=200, max_keep_ckpts=5),
]
