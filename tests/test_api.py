"""The Python API: sparkify.run / check / query, the summary as --json gives it, typed errors."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pyarrow as pa
import pytest

import sparkify
from sparkify import api, batch, config, errors, files, sources
from sparkify.targets import base
from tests.conftest import REPO, run_cli


@pytest.fixture(scope="module")
def star(tmp_path_factory, sample) -> tuple[Path, sparkify.RunSummary]:
    target = tmp_path_factory.mktemp("api") / "star.duckdb"
    summary = sparkify.run(str(sample / "song_data"), str(sample / "log_data"), target=str(target))
    return target, summary


def test_run_returns_the_summary_the_cli_prints(star, sample, tmp_path):
    _, summary = star
    assert isinstance(summary, sparkify.RunSummary)
    assert summary.tables["songplays"] == 6820 and summary.accounting["events"]["loaded"] == 6820
    code, out = run_cli("run", "--songs", sample / "song_data", "--logs", sample / "log_data",
                        "--target", tmp_path / "cli.duckdb", "--json")
    assert code == 0
    printed = json.loads(out.splitlines()[-1])
    mine = summary.to_dict()
    assert set(mine) == set(printed) == {"run_id", "target", "engine", "files", "accounting", "tables", "timings"}
    for key in ("engine", "files", "accounting", "tables"):
        assert mine[key] == printed[key], key
    assert json.loads(json.dumps(mine)) == mine  # plain JSON values
    with pytest.raises(AttributeError):
        summary.run_id = "changed"  # frozen


def test_check_returns_every_result(star):
    target, _ = star
    results = sparkify.check(str(target))
    assert results and all(isinstance(r, sparkify.CheckResult) for r in results)
    assert all(r.passed and r.failures == 0 for r in results)


def test_check_can_raise_checks_failed(tmp_path):
    target = tmp_path / "empty.duckdb"
    api.create_schema(str(target))
    assert not all(r.passed for r in sparkify.check(str(target)))  # an empty star fails "is not empty"
    with pytest.raises(sparkify.ChecksFailed) as caught:
        sparkify.check(str(target), raise_on_failure=True)
    assert caught.value.exit_code == 3 and "songplays is not empty" in str(caught.value)
    assert len(caught.value.results) == len(sparkify.check(str(target)))


def test_query_by_name_or_sql_gives_arrow(star):
    target, _ = star
    table = sparkify.query("plays_by_level", target=str(target))
    assert isinstance(table, pa.Table) and table.num_rows == 2
    frame = table.to_pandas()
    assert list(frame.columns) == table.column_names
    same = sparkify.query("SELECT 1 AS a, 1 AS a, NULL AS nothing", target=str(target))
    assert same.column_names == ["a", "a", "nothing"] and same.num_rows == 1
    empty = sparkify.query("SELECT user_id FROM users WHERE false", target=str(target))
    assert empty.column_names == ["user_id"] and empty.num_rows == 0


def test_query_to_polars(star):
    import polars
    target, _ = star
    frame = polars.from_arrow(sparkify.query("top_songs", target=str(target)))
    assert frame.height > 0


def test_an_unknown_query_name_is_a_config_error(star):
    target, _ = star
    with pytest.raises(sparkify.ConfigError, match=r"unknown query 'top_sngs', did you mean top_songs\?"):
        sparkify.query("top_sngs", target=str(target))
    with pytest.raises(sparkify.ConfigError, match="sparkify query --list"):
        sparkify.query("zzzzzz", target=str(target))


def test_settings_resolve_as_the_cli_does(tmp_path, monkeypatch, sample):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sparkify.toml").write_text(f'songs = "{sample / "song_data"}"\nlogs = "{sample / "log_data"}"\n')
    monkeypatch.setenv("SPARKIFY_TARGET", str(tmp_path / "from_env.duckdb"))
    summary = sparkify.run()
    assert summary.target.endswith("from_env.duckdb") and summary.tables["songplays"] == 6820
    with pytest.raises(sparkify.ConfigError, match="did you mean max_rejects"):
        sparkify.run(config=str(_write(tmp_path / "typo.toml", 'max_reject = "1%"\n')))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_reject_limit_raises_its_typed_error(tmp_path, sample):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bad.json").write_text("not json\n")
    with pytest.raises(sparkify.RejectLimitExceeded) as caught:
        sparkify.run(str(sample / "song_data"), str(logs), target=str(tmp_path / "t.duckdb"), max_rejects=0)
    assert caught.value.exit_code == 4 and "nothing was written" in str(caught.value)


def test_an_empty_run_raises_empty_run_with_its_summary(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "l").mkdir()
    with pytest.raises(sparkify.EmptyRun) as caught:
        sparkify.run(str(tmp_path / "s"), str(tmp_path / "l"), target=str(tmp_path / "t.duckdb"), fail_on_empty=True)
    assert caught.value.exit_code == 1 and caught.value.summary.empty


def test_a_missing_source_and_a_bad_target_are_typed(tmp_path):
    with pytest.raises(sparkify.SourceError, match="source not found"):
        sparkify.run(str(tmp_path / "none"), str(tmp_path / "none"), target=str(tmp_path / "t.duckdb"))
    with pytest.raises(sparkify.ConfigError, match="lake://"):
        sparkify.check(str(tmp_path / "warehouse.db"))
    with pytest.raises(sparkify.TargetError, match="does not exist"):
        sparkify.check(str(tmp_path / "absent.duckdb"))


def test_errors_are_typed_and_keep_their_old_homes():
    expected = {errors.ConfigError: (2, ValueError), errors.SourceError: (1, ValueError),
                errors.TargetError: (1, RuntimeError), errors.RejectLimitExceeded: (4, RuntimeError),
                errors.ChecksFailed: (3, Exception)}
    for cls, (code, builtin) in expected.items():
        assert issubclass(cls, errors.SparkifyError) and issubclass(cls, builtin) and cls.exit_code == code
    assert config.ConfigError is errors.ConfigError is sparkify.ConfigError
    assert files.SourceError is sources.SourceError is errors.SourceError
    assert base.TargetError is errors.TargetError
    assert batch.RejectLimitExceeded is errors.RejectLimitExceeded


def test_errors_module_imports_nothing_from_sparkify():
    tree = ast.parse((REPO / "src" / "sparkify" / "errors.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + \
               [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("sparkify")]


def test_the_package_exposes_the_api_and_its_version():
    assert sparkify.__version__ == "0.1.0"
    assert sparkify.run is api.run and sparkify.check is api.check and sparkify.query is api.query
    assert {"run", "check", "query", "RunSummary", "SparkifyError"} <= set(dir(sparkify))
    with pytest.raises(AttributeError):
        sparkify.no_such_thing  # noqa: B018
