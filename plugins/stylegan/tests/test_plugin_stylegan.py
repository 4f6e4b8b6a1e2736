"""The stylegan plugin is found through its entry point and honours the plugin contract."""
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-stylegan')


def test_stylegan_plugin_contract():
    check_plugin_contract('stylegan', 'genforce-plugin-stylegan')
