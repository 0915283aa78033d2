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
from rich.text import Text

from sparkify import __version__, api, config, pipeline
from sparkify.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ChecksFailed,
    EmptyRun,
    SparkifyError,
)
from sparkify.progress import Progress
from sparkify.targets.base import Step

log = logging.getLogger("sparkify")
err_console = Console(stderr=True)
out_console = Console()

EXTRA_COMMANDS = {"generate": "sparkify.generate", "report": "sparkify.report"}
"""Commands that live in their own module, each with add_arguments(parser) and main(args)."""

EPILOG = """exit codes:
  0  success
  1  the run or command failed (a source, a target, an empty run with --fail-on-empty, ...)
  2  usage or configuration error (bad option, unknown setting, unknown query name)
  3  data-quality checks failed (sparkify check)
  4  reject limit exceeded (--max-rejects): nothing was written
"""

TARGET_HELP = ("where the star is: a .duckdb file or duckdb://PATH (default sparkify.duckdb), "
               "postgresql://..., redshift://..., lake://PATH (or file://PATH) or s3://bucket/prefix for a "
               "Parquet lake")


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """--config and -v, taken before the command (default: their value) or after it (SUPPRESS: keep the first)."""
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="settings file (default: ./sparkify.toml if present, or SPARKIFY_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default or False,
                        help="debug logging, and a traceback on errors")


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="sparkify", description=__doc__, epilog=EPILOG, formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"sparkify {__version__}")
    _global_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], epilog=EPILOG,
                              formatter_class=formatter)

    run = command("run", "load new raw files into the star schema")
    run.add_argument("--songs", help="song_data source: directory, glob or s3:// URL")
    run.add_argument("--logs", help="log_data source: directory, glob or s3:// URL")
    run.add_argument("--target", help=TARGET_HELP)
    run.add_argument("--engine", choices=list(pipeline.ENGINES),
                     help="what computes the tables (default: the target's own; duckdb except on Redshift)")
    run.add_argument("--spark-master", help="Spark master URL for --engine spark (default local[2])")
    run.add_argument("--full-refresh", action="store_true", default=None,
                     help="rebuild the target from every file, loaded before or not")
    run.add_argument("--max-rejects", metavar="N|P%",
                     help="fail, writing nothing, above N rejected records (N >= 0) or P%% of those read (0-100)")
    run.add_argument("--memory-limit", metavar="SIZE",
                     help="DuckDB memory limit, e.g. 600MB (the default), 1.5GiB or 80%%; the rest spills to disk")
    run.add_argument("--fail-on-empty", action="store_true", default=None,
                     help="exit 1 when the run loads no record (empty sources, or every record rejected)")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    run.add_argument("--pushdown", action="store_true",
                     help="compute the star inside a SQL target's server (the same as --engine warehouse)")
    run.add_argument("--dry-run", action="store_true", help="SQL targets: print the statements, run nothing")

    check = command("check", "data-quality checks; exit 3 if any fails")
    check.add_argument("--target", help=TARGET_HELP)
    check.add_argument("--json", action="store_true",
                       help="print {check name: offending rows} as one JSON object on stdout")

    query = command("query", "run SQL (or a named query) against a target")
    query.add_argument("sql", nargs="?", metavar="NAME_OR_SQL",
                       help="a SELECT statement or the name of a packaged query (see --list)")
    query.add_argument("--target", help=TARGET_HELP)
    query.add_argument("--format", choices=["table", "csv", "json"], default="table",
                       help="table (the default; never cut when piped), csv with a header line, or json: "
                            "JSON Lines, one object per row")
    query.add_argument("--list", action="store_true", help="list the packaged queries")

    schema = command("schema", "create the tables (with --reset: drop and recreate them)")
    schema.add_argument("--target", help=TARGET_HELP)
    schema.add_argument("--reset", action="store_true", help="drop the tables first: every row is lost")
    schema.add_argument("--dry-run", action="store_true", help="SQL targets: print the statements, run nothing")

    for name, module in EXTRA_COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(command(name, mod.__doc__.splitlines()[0]))
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    options = {"songs": args.songs, "logs": args.logs, "target": args.target, "config": args.config,
               "engine": "warehouse" if args.pushdown else args.engine, "full_refresh": args.full_refresh}
    if args.dry_run:
        print_steps(api.statements(**options))
        return EXIT_OK
    try:
        summary = api.run(**options, max_rejects=args.max_rejects, memory_limit=args.memory_limit,
                          fail_on_empty=args.fail_on_empty, spark_master=args.spark_master,
                          progress=Progress(err_console))
    except EmptyRun as exc:
        _report(exc.summary, args.json)
        raise
    _report(summary, args.json)
    return EXIT_OK


def _report(summary: api.RunSummary, as_json: bool) -> None:
    _print_summary(summary.to_dict())
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), sort_keys=True) + "\n")


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
    # The heading is its own line, not the narrow table's title: a title wraps to the table's width,
    # which cut the run id in two at any terminal width.
    console.print(Text.assemble(("sparkify run ", "bold"), (summary["run_id"], "bold"), " -> ", summary["target"]))
    tables = RichTable(title="rows per table")
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
    results = api.check(args.target, args.config)
    described, enforces = api.describe(args.target, args.config)
    if args.json:
        sys.stdout.write(json.dumps({r.name: r.failures for r in results}) + "\n")
    table = RichTable(title=f"data-quality checks on {described}")
    table.add_column("check")
    table.add_column("offending rows", justify="right")
    table.add_column("result")
    for r in results:
        table.add_row(r.name, f"{r.failures:,}", "[green]pass[/green]" if r.passed else "[red]FAIL[/red]")
    (err_console if args.json else out_console).print(table)
    if not enforces:
        err_console.print(f"{described} does not enforce keys itself: the key and reference checks "
                          "above are what proves them", markup=False, highlight=False)
    failed = [r for r in results if not r.passed]
    if failed:
        err_console.print(f"[red]{len(failed)} of {len(results)} checks failed[/red]")
        return ChecksFailed.exit_code
    err_console.print(f"[green]all {len(results)} checks passed[/green]")
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    if args.list:
        for name, description in api.queries().items():
            out_console.print(f"[bold]{name}[/bold]  {description}")
        return EXIT_OK
    if not args.sql:
        raise config.ConfigError("give a SQL statement or a query name (see --list)")
    table = api.query(args.sql, args.target, args.config)
    write_rows(table.column_names, zip(*(column.to_pylist() for column in table.columns)), args.format)
    return EXIT_OK


def write_rows(columns: list[str], rows, fmt: str) -> None:
    """Rows on stdout as csv, JSON Lines (one object per row) or a table (cut to the terminal's width only)."""
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
        _table_console().print(table)


def _table_console() -> Console:
    """stdout's console; when it is not a terminal, one wide enough for any table (no column is ever cut)."""
    if out_console.is_terminal:
        return out_console
    return Console(width=1_000_000, highlight=False)


def cmd_schema(args: argparse.Namespace) -> int:
    if args.dry_run:
        print_steps(api.schema_statements(args.target, args.reset, args.config))
        return EXIT_OK
    described = api.create_schema(args.target, args.reset, args.config)
    err_console.print(f"tables {'recreated' if args.reset else 'ready'} in {described}", markup=False,
                      highlight=False)
    return EXIT_OK


OUT_OF_MEMORY = "Out of Memory Error"
MEMORY_ADVICE = ("DuckDB reached its memory limit; nothing was written. Raise it with --memory-limit "
                 "(or memory_limit in sparkify.toml): the default loads 10 million events in one run.")

COMMANDS = {"run": cmd_run, "check": cmd_check, "query": cmd_query, "schema": cmd_schema}


def main(argv: list[str] | None = None) -> int:
    """Run one command: its exit code (see EPILOG); every failure is one `error:` line on stderr."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
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
        return exc.exit_code if isinstance(exc, SparkifyError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
