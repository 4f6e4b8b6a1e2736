"""The pggan plugin is found through its entry point and honours the plugin contract."""
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-pggan')


def test_pggan_plugin_contract():
    check_plugin_contract('pggan', 'genforce-plugin-pggan')
