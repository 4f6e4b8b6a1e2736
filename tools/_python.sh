# Shared by the launch scripts (sourced): the Python interpreter they start.
# $PYTHON when set (words are split, so PYTHON="python -X faulthandler" works), else the
# repository's .venv/bin/python when it exists (tools/setup_env.sh makes it), else python3.

# genforce_python: prints the interpreter command.
genforce_python() {
    local venv
    venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/python"
    if [[ -n ${PYTHON:-} ]]; then
        echo "$PYTHON"
    elif [[ -x $venv ]]; then
        echo "$venv"
    else
        echo python3
    fi
}
