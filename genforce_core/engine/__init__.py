"""The training engine on mmengine: runner, GAN loop, distributed helpers, optimizers."""
