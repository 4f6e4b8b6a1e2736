# The base of every genforce GAN config: inherit it and add the model and the dataset.
#   _base_ = ['genforce_core::_base_/gan.py']
#   model = dict(type='GAN', generator=dict(type=...), discriminator=dict(type=...),
#                loss=dict(type='NonSaturatingLoss'))
#   train_dataloader = dict(dataset=dict(path='data/mydata.zip', resolution=64))
# It brings the GenforceRunner runtime with iteration-based logging, a shuffled sampler that
# resumes where it stopped (ResumableInfiniteSampler), default_collate, one optimizer per
# network (GANOptimWrapperConstructor; Adam(0.002, betas (0, 0.99)) unless the config names
# another), the kimg-based GANTrainLoop and the sample-grid, progress and checkpoint hooks.
_base_ = ['default_runtime.py', 'datasets/image_dataset.py']
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0.0, 0.99), eps=1e-8)),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0.0, 0.99), eps=1e-8)),
)
train_cfg = dict(type='GANTrainLoop', total_kimg=25000)
