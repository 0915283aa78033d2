#!/usr/bin/env bash
# Run the scheduling examples (examples/) in-process against the sample, each orchestrator in its
# own venv, apart from .venv so the main suite stays lean:
#   .venv-airflow   sparkify (editable) + Apache Airflow 3   tests/test_examples.py -k airflow
#   .venv-dagster   sparkify (editable) + Dagster            tests/test_examples.py -k dagster
# Versions: constraints.txt, then examples/constraints.txt for what it does not pin.
#   scripts/test-examples.sh                  both
#   scripts/test-examples.sh dagster          one (airflow or dagster)
#   scripts/test-examples.sh airflow -- -x    arguments after -- go to pytest
#   scripts/test-examples.sh --install        the venvs only (scripts/test.sh starts this beside its setup)
# Idempotent: a venv installed from the same constraints and pyproject.toml is not touched again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

declare -A PACKAGE=([airflow]=apache-airflow [dagster]=dagster)
names=()
install_only=
[[ ${1:-} == --install ]] && { install_only=1; shift; }
while [[ $# -gt 0 && $1 != -- ]]; do
  [[ -n ${PACKAGE[$1]:-} ]] || { echo "usage: $0 [airflow|dagster]... [-- pytest args]" >&2; exit 2; }
  names+=("$1")
  shift
done
[[ ${1:-} == -- ]] && shift
[[ ${#names[@]} -gt 0 ]] || names=(airflow dagster)

install() {  # one orchestrator's venv (on a fresh machine, mostly downloads: both are installed at once)
  local name=$1 venv=.venv-$1 start=$SECONDS stamp
  stamp=$(cat constraints.txt examples/constraints.txt pyproject.toml | sha256sum | cut -c1-16)
  if [[ $(cat "$venv/.installed-from" 2>/dev/null) != "$stamp" ]]; then  # a check of every package takes seconds
    venv_install "$venv" -c constraints.txt -c examples/constraints.txt -e . "${PACKAGE[$name]}" pytest
  fi
  "$venv/bin/python" -c "import sparkify, ${name}" && echo "$stamp" > "$venv/.installed-from" \
    && echo "$venv ready in $((SECONDS - start)) s"
}

declare -A installing
for name in "${names[@]}"; do
  install "$name" & installing[$name]=$!
done
status=0
for name in "${names[@]}"; do
  wait "${installing[$name]}" || { status=1; continue; }
  [[ -n $install_only ]] && continue
  TZ=UTC ".venv-$name/bin/python" -m pytest tests/test_examples.py -m examples -k "$name" "$@" \
    || status=$?
done
exit "$status"
