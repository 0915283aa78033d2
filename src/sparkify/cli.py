"""The `sparkify` command line: run, check, query, schema, generate, report."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import logging
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table as RichTable

from sparkify import config, pipeline, quality
from sparkify.batch import RejectLimit
from sparkify.progress import Progress
from sparkify.queries import load_queries
from sparkify.targets import open_target
from sparkify.targets.base import Step, TargetError

log = logging.getLogger("sparkify")
err_console = Console(stderr=True)
out_console = Console()

EXTRA_COMMANDS = {"generate": "sparkify.generate", "report": "sparkify.report"}
"""Commands that live in their own module, each with add_arguments(parser) and main(args)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify", description=__doc__)
    parser.add_argument("--config", help="settings file (default: ./sparkify.toml if present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="load new raw files into the star schema")
    run.add_argument("--songs", help="song_data source: directory, glob or s3:// URL")
    run.add_argument("--logs", help="log_data source: directory, glob or s3:// URL")
    run.add_argument("--target", help="*.duckdb file (default sparkify.duckdb), postgresql://, redshift://, "
                                      "a directory or s3:// for a Parquet lake")
    run.add_argument("--engine", choices=list(pipeline.ENGINES),
                     help="what computes the tables (default: the target's own; duckdb except on Redshift)")
    run.add_argument("--spark-master", help="Spark master URL for --engine spark (default local[2])")
    run.add_argument("--full-refresh", action="store_true", default=None,
                     help="rebuild the target from every file, loaded before or not")
    run.add_argument("--max-rejects", help="fail, writing nothing, above N rejected records or P%%")
    run.add_argument("--memory-limit", help="DuckDB memory limit (default 600MB); the rest spills to disk")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    run.add_argument("--pushdown", action="store_true",
                     help="compute the star inside a SQL target's server (the same as --engine warehouse)")
    run.add_argument("--dry-run", action="store_true", help="SQL targets: print the statements, run nothing")

    check = sub.add_parser("check", help="data-quality checks; exit 1 if any fails")
    check.add_argument("--target")
    check.add_argument("--json", action="store_true")

    query = sub.add_parser("query", help="run SQL (or a named query) against a target")
    query.add_argument("sql", nargs="?", help="a SELECT statement or the name of a packaged query")
    query.add_argument("--target")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument("--list", action="store_true", help="list the packaged queries")

    schema = sub.add_parser("schema", help="create the tables (with --reset: drop and recreate them)")
    schema.add_argument("--target")
    schema.add_argument("--reset", action="store_true")
    schema.add_argument("--dry-run", action="store_true", help="print the statements, run nothing")

    for name, module in EXTRA_COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=mod.__doc__.splitlines()[0]))
    return parser


def _settings(args: argparse.Namespace, *names: str) -> dict:
    return config.resolve({n: getattr(args, n, None) for n in names}, args.config)


def cmd_run(args: argparse.Namespace) -> int:
    s = _settings(args, "songs", "logs", "target", "engine", "full_refresh", "max_rejects", "memory_limit")
    if s.get("memory_limit"):
        s["target_options"]["memory_limit"] = s["memory_limit"]
    for key in ("songs", "logs"):
        if not s.get(key):
            raise config.ConfigError(f"--{key} is required (or set {key} in sparkify.toml or SPARKIFY_{key.upper()})")
    target = open_target(s["target"], s["target_options"])
    engine = "warehouse" if args.pushdown else s.get("engine")
    full_refresh = str(s.get("full_refresh", "")).lower() in ("1", "true", "yes")
    if args.dry_run:
        print_steps(pipeline.statements(target, s["songs"], s["logs"], full_refresh, engine))
        return 0
    summary = pipeline.run(
        target, s["songs"], s["logs"],
        full_refresh=full_refresh,
        max_rejects=RejectLimit.parse(s.get("max_rejects")),
        progress=Progress(err_console),
        engine_name=engine,
        engine_options={**s.get("engine_options", {}), **({"master": args.spark_master} if args.spark_master else {})},
    )
    _print_summary(summary)
    if args.json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0


def print_steps(steps: list[Step]) -> None:
    """Statements as a SQL script on stdout (--dry-run), each with its parameters as a comment."""
    console = Console(soft_wrap=True)
    for step in steps:
        text = step.sql if step.sql.startswith("--") else step.sql + ";"
        if step.params:
            text += f"  -- parameters: {', '.join(map(repr, step.params))}"
        console.print(text, markup=False, highlight=False)


def _print_summary(summary: dict) -> None:
    console = err_console
    tables = RichTable(title=f"sparkify run {summary['run_id']} -> {summary['target']}")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, count in (summary["tables"] or {}).items():
        tables.add_row(name, f"{count:,}")
    console.print(tables)
    acct = RichTable(title="accounting (read = loaded + filtered + duplicate + rejected)")
    for col in ("records", "read", "loaded", "filtered", "duplicate", "rejected"):
        acct.add_column(col, justify="right" if col != "records" else "left")
    for kind, a in summary["accounting"].items():
        acct.add_row(kind, *(f"{a.get(k, 0):,}" for k in ("read", "loaded", "filtered", "duplicate", "rejected")))
    console.print(acct)
    files = summary["files"]
    console.print(
        f"files: {files['songs']['new']} song and {files['logs']['new']} log files read, "
        f"{files['songs']['skipped'] + files['logs']['skipped']} already loaded and skipped; "
        f"{summary['timings']['total']:.2f} s"
    )


def cmd_check(args: argparse.Namespace) -> int:
    s = _settings(args, "target")
    target = open_target(s["target"], s["target_options"])
    results = quality.run_checks(target)
    if args.json:
        sys.stdout.write(json.dumps({r.name: r.failures for r in results}) + "\n")
    table = RichTable(title=f"data-quality checks on {target.describe()}")
    table.add_column("check")
    table.add_column("offending rows", justify="right")
    table.add_column("result")
    for r in results:
        table.add_row(r.name, f"{r.failures:,}", "[green]pass[/green]" if r.passed else "[red]FAIL[/red]")
    (err_console if args.json else out_console).print(table)
    if not target.capabilities.enforces_constraints:
        err_console.print(f"{target.describe()} does not enforce keys itself: the key and reference checks "
                          "above are what proves them")
    failed = [r for r in results if not r.passed]
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(results)} checks failed[/red]")
        return 1
    err_console.print(f"[green]all {len(results)} checks passed[/green]")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    queries = _query_pack()
    if args.list:
        for name, (description, _) in sorted(queries.items()):
            out_console.print(f"[bold]{name}[/bold]  {description}")
        return 0
    if not args.sql:
        raise config.ConfigError("give a SQL statement or a query name (see --list)")
    sql = queries[args.sql][1] if args.sql in queries else args.sql
    s = _settings(args, "target")
    target = open_target(s["target"], s["target_options"])
    columns, rows = target.query(sql)
    write_rows(columns, rows, args.format)
    return 0


def _query_pack() -> dict[str, tuple[str, str]]:
    return load_queries()


def write_rows(columns: list[str], rows, fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        for row in rows:
            sys.stdout.write(json.dumps(dict(zip(columns, row)), default=str) + "\n")
    else:
        table = RichTable()
        for c in columns:
            table.add_column(c)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        out_console.print(table)


def cmd_schema(args: argparse.Namespace) -> int:
    s = _settings(args, "target")
    target = open_target(s["target"], s["target_options"])
    if args.dry_run:
        if not target.capabilities.dry_run:
            raise TargetError(f"--dry-run needs a SQL target, not {target.describe()}")
        print_steps(target.schema_plan(args.reset))
        return 0
    target.create_schema(reset=args.reset)
    err_console.print(f"tables {'recreated' if args.reset else 'ready'} in {target.describe()}")
    return 0


OUT_OF_MEMORY = "Out of Memory Error"
MEMORY_ADVICE = ("DuckDB reached its memory limit; nothing was written. Raise it with --memory-limit "
                 "(or memory_limit in sparkify.toml), or load fewer days per run: a DuckDB file's key indexes "
                 "need about 50 bytes per row of songplays and time (1.5GB loads 10 million events at once).")

COMMANDS = {"run": cmd_run, "check": cmd_check, "query": cmd_query, "schema": cmd_schema}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    handler = COMMANDS.get(args.command) or importlib.import_module(EXTRA_COMMANDS[args.command]).main
    try:
        with config.given(args.config):
            return handler(args)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted: nothing was written by the unfinished step[/red]")
        return 130
    except Exception as exc:  # every failure reaches the user as one clear line
        if args.verbose:
            log.exception("failed")
        err_console.print(f"error: {exc}", style="red", highlight=False, markup=False)
        if OUT_OF_MEMORY in str(exc) or "failed to pin block" in str(exc):
            err_console.print(MEMORY_ADVICE, style="red", highlight=False, markup=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
