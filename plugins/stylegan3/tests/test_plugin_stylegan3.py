"""The stylegan3 plugin is found through its entry point and honours the plugin contract."""
from genforce_core.api import MODELS, load_plugins
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-stylegan3')


def test_stylegan3_plugin_contract():
    check_plugin_contract('stylegan3', 'genforce-plugin-stylegan3')


def test_registers_the_generator_and_training_model_and_reports_its_op():
    manager = load_plugins()
    assert {'StyleGAN3Generator', 'StyleGAN3'} <= set(MODELS.module_dict)
    status = manager.pm.get_plugin('stylegan3').genforce_op_status()
    assert set(status) == {'filtered_lrelu'}
    assert status['filtered_lrelu'] in ('cuda', 'not built yet') or \
        status['filtered_lrelu'].startswith('reference (')
