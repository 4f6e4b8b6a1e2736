"""Entry point of the example plugin (``[project.entry-points."genforce.plugins"]``)."""
from genforce_core.api import hookimpl

# The plugin API this plugin was written against; genforce skips it with a warning if the
# installed genforce-core speaks an incompatible one.
GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules(registries):
    # Importing the module runs its @MODELS.register_module() decorators; genforce records
    # that this plugin registered DCGANGenerator and DCGANDiscriminator.
    from . import networks  # noqa: F401


@hookimpl
def genforce_op_status():
    return {}  # no custom CUDA ops: plain PyTorch layers


@hookimpl
def genforce_test_models():
    # Tiny models the core's contract suite checks (tests/test_contract.py runs it).
    nets = dict(resolution=16, base_channels=8)
    return [dict(name='dcgan_tiny', model=dict(
        type='GAN',
        generator=dict(type='DCGANGenerator', z_dim=16, **nets),
        discriminator=dict(type='DCGANDiscriminator', **nets),
        ema=dict(half_life_kimg=0.01)))]


@hookimpl
def genforce_config_dirs() -> list[str]:
    """The configs shipped in this package (``genforce configs`` lists them)."""
    import os.path as osp

    return [osp.join(osp.dirname(__file__), 'configs')]
