"""The scheduling examples, from the main suite: scripts/test-examples.sh in their own venvs, every test passing.

The examples' tests (tests/test_examples.py) need Airflow and Dagster, which the
main venv does not install; this one test runs them where they are installed,
so that the whole suite (scripts/test.sh, CI) covers them too.
"""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def test_the_airflow_and_dagster_examples_pass_in_their_own_venvs():
    done = subprocess.run(["bash", str(REPO / "scripts" / "test-examples.sh")], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    passed = [int(n) for n in re.findall(r"(\d+) passed", output)]
    assert len(passed) == 2 and all(passed), output[-4000:]  # one pytest run per orchestrator, none empty
