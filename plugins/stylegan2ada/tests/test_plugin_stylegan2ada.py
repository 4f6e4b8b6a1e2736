"""The stylegan2ada plugin is found through its entry point and honours the plugin contract."""
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-stylegan2ada')


def test_stylegan2ada_plugin_contract():
    check_plugin_contract('stylegan2ada', 'genforce-plugin-stylegan2ada')


def test_stylegan2ada_depends_on_stylegan2():
    from genforce_core.testing import requirement

    req = requirement('genforce-plugin-stylegan2ada', 'genforce-plugin-stylegan2')
    assert req is not None and str(req.specifier) in ('<0.2,>=0.1', '>=0.1,<0.2')
