# Sourced by the setup scripts: `venv_install VENV ARGS...` creates VENV if missing and installs ARGS
# (pip's syntax) into it with uv, which pip installs into VENV first at the version in constraints.txt.
# uv downloads and installs in parallel: a cold install of the dev extras takes about a third of pip's time.
# --compile-bytecode, as pip does: without .pyc files (and with PYTHONDONTWRITEBYTECODE set, as on CI) every
# process would compile each module it imports, seconds at each start of the CLI.
venv_install() {
  local venv=$1
  shift
  [[ -x $venv/bin/python ]] || "${PYTHON:-python3}" -m venv "$venv"
  [[ -x $venv/bin/uv ]] || "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt uv 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/uv" pip install --quiet --compile-bytecode --python "$venv/bin/python" "$@"
}
