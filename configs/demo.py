# The built-in demo (`bash tools/demo.sh`): a small GAN on the built-in shapes dataset, a few
# minutes on 2 CPU cores. tools/demo.py writes the dataset to data/builtin/shapes32.zip first.
_base_ = ['../examples/dcgan_plugin/genforce_example_dcgan/configs/dcgan_shapes32.py']

train_dataloader = dict(batch_size=32,
                        dataset=dict(path='data/builtin/shapes32.zip', xflip=True))
train_cfg = dict(total_kimg=60)
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg=10, num_samples=64),
    dict(type='GANProgressHook', interval=50),
    dict(type='KimgCheckpointHook', interval_kimg=20, max_keep_ckpts=2),
]
default_hooks = dict(logger=dict(interval=50))
