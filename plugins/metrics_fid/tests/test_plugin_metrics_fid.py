"""The metrics_fid plugin is found through its entry point and honours the plugin contract."""
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-metrics-fid')


def test_metrics_fid_plugin_contract():
    check_plugin_contract('metrics_fid', 'genforce-plugin-metrics-fid')
