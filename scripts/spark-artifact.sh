#!/usr/bin/env bash
# Build what a Spark cluster runs: the sparkify package as one zip for spark-submit --py-files,
# the entry script, and the requirements the nodes install (pinned as in constraints.txt).
#
#   scripts/spark-artifact.sh [OUT_DIR]        # default: dist/
#
# writes
#   OUT_DIR/sparkify-spark.zip                 src/sparkify (sources and package data, no bytecode),
#                                              entries in a fixed order with a fixed date: the same
#                                              sources give the same bytes
#   OUT_DIR/spark_job.py                       the entry point (src/sparkify/spark_job.py): spark-submit
#                                              needs a file; it imports sparkify from the zip
#   OUT_DIR/sparkify-spark-requirements.txt    sparkify's dependencies with the s3 extra, at
#                                              constraints.txt's versions (pyspark excluded: the
#                                              cluster's own Spark runs the job)
#
# Submit (the tests do exactly this on a standalone cluster; deploy/emr/create_emr.sh on EMR):
#   spark-submit --master spark://HOST:7077 --py-files OUT_DIR/sparkify-spark.zip OUT_DIR/spark_job.py \
#     --songs ... --logs ... --out ...
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/dist}
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=python3
mkdir -p "$out"
"$python" - "$repo" "$out" <<'PY'
import re
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

repo, out = Path(sys.argv[1]), Path(sys.argv[2])
src = repo / "src"
files = sorted(p for p in (src / "sparkify").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))
tmp = out / "sparkify-spark.zip.tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for path in files:
        info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, path.read_bytes())
tmp.replace(out / "sparkify-spark.zip")
shutil.copyfile(src / "sparkify" / "spark_job.py", out / "spark_job.py")

project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
wanted = [*project["dependencies"], *project["optional-dependencies"]["s3"]]
pins = {}
for line in (repo / "constraints.txt").read_text().splitlines():
    if "==" in line and not line.startswith("#"):
        name, version = line.split("==", 1)
        pins[name.strip().lower().replace("_", "-")] = version.strip()
lines = []
for requirement in wanted:
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
    lines.append(f"{name}=={pins[name]}" if name in pins else requirement.split(";")[0].strip())
(out / "sparkify-spark-requirements.txt").write_text("\n".join(lines) + "\n")
print(f"{out / 'sparkify-spark.zip'}: {len(files)} files")
PY
