"""The stylegan2 plugin is found through its entry point and honours the plugin contract."""
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-stylegan2')


def test_stylegan2_plugin_contract():
    check_plugin_contract('stylegan2', 'genforce-plugin-stylegan2')
