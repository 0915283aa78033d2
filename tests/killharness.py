"""Break `sparkify run` while it works, then judge what the target holds.

The command runs as a real child process in its own session (a SIGKILL or
SIGSTOP reaches all of it; output goes to files, peak memory comes from
wait4). A `Scenario` delivers the sample in two halves, so the run under
test adds the second half to a target that already holds the first: the
target must then hold exactly the state before that run or the state after
it (the five tables, the ledger of loaded files, the rejects, the run rows),
`sparkify check` must pass, and one more uninterrupted run must reach the
same state as a run that was never disturbed.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO, star_rows

CLI = [sys.executable, "-m", "sparkify.cli"]
STAGES = ("list", "songs", "events", "star", "load")
"""The stages a run logs as it completes them (sparkify.progress), in order."""
RELIABILITY = REPO / "RELIABILITY.md"


def child_env(tmpdir: Path | None = None, **extra: str) -> dict[str, str]:
    """The child's environment: this one, UTC, wide lines (no wrapped messages), a private TMPDIR."""
    env = {**os.environ, "TZ": "UTC", "COLUMNS": "250", **extra}
    if tmpdir is not None:
        tmpdir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmpdir)
    return env


@dataclass
class Result:
    code: int | None
    stdout: str
    stderr: str
    peak_rss_kb: int
    seconds: float
    killed: bool = False
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def clear_error(self) -> bool:
        """Failed with one `error:` message, a documented exit code and no traceback (what cli.main promises)."""
        return self.code in (1, 2, 3, 4) and "error:" in self.stderr and "Traceback" not in self.output


class Child:
    """One sparkify command running in its own process group."""

    def __init__(self, args: Sequence[str], workdir: Path, env: dict[str, str] | None = None,
                 setpriv: Sequence[str] = ()):
        workdir.mkdir(parents=True, exist_ok=True)
        name = f"{time.monotonic_ns()}"
        self._out = open(workdir / f"{name}.out", "w+", encoding="utf-8", errors="replace")
        self._err = open(workdir / f"{name}.err", "w+", encoding="utf-8", errors="replace")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*setpriv, *CLI, *map(str, args)], stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
            env=env or child_env(), cwd=workdir, start_new_session=True,
        )
        self.killed = False
        self._status: int | None = None
        self._rss = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def signal(self, sig: int) -> None:
        """Send `sig` to the command's process group (whatever it started too), while it runs."""
        if self.running():
            os.killpg(self.pid, sig)

    def running(self) -> bool:
        if self._status is None:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self._status, self._rss = status, usage.ru_maxrss
                self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self._status is None

    def stderr_so_far(self) -> str:
        return (Path(self._err.name)).read_text(encoding="utf-8", errors="replace")

    def reached(self, stage: str | None) -> bool:
        """Wait until the command logs `stage` as done (None: at once); False if it ended before."""
        while stage is not None and self.running() and not logged(stage, self.stderr_so_far()):
            time.sleep(0.005)
        return self.running()

    def timeline(self) -> dict[str, float]:
        """Run to the end, noting when (seconds after the start) each stage was logged; `end` too."""
        seen: dict[str, float] = {}
        while self.running():
            text = self.stderr_so_far()
            seen.update({stage: self.elapsed() for stage in STAGES if stage not in seen and logged(stage, text)})
            time.sleep(0.005)
        return {**seen, "end": self.elapsed()}

    def alive_at(self, seconds: float) -> bool:
        """Wait until `seconds` after the start; True if the command is still running then."""
        while self.running() and self.elapsed() < seconds:
            time.sleep(0.005)
        return self.running()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.killed = True

    def wait(self, timeout: float = 600) -> Result:
        timed_out = False
        while self.running():
            if self.elapsed() > timeout:
                self.signal(signal.SIGKILL)
                timed_out = True
                while self.running():
                    time.sleep(0.01)
                break
            time.sleep(0.01)
        seconds = self.elapsed()
        for fh in (self._out, self._err):
            fh.flush()
            fh.seek(0)
        result = Result(self.proc.returncode, self._out.read(), self._err.read(), self._rss, seconds,
                        killed=self.killed, timed_out=timed_out)
        self._out.close()
        self._err.close()
        return result


def sparkify(*args: object, workdir: Path, env: dict[str, str] | None = None, timeout: float = 600,
             setpriv: Sequence[str] = ()) -> Result:
    """Run one sparkify command to its end (or `timeout`)."""
    return Child([str(a) for a in args], workdir, env, setpriv).wait(timeout)


PHASES = ("start-up/list", "songs", "events", "star", "load", "after load")
"""Where a run can be: each phase ends when the run logs the stage of the same name (`list` for the first)."""
ANCHOR = dict(zip(PHASES, (None, *STAGES)))
"""The stage whose log line opens each phase."""
STRIKE_ORDER = ("load", "star", "after load", "events", "songs", "start-up/list")
"""The phases trials aim at, in turn: the commit first, so that even three trials reach it."""
STRUCK_TIMEOUT = 300
"""Seconds a struck run may take to end before it is deemed hung (and killed)."""


def logged(stage: str, stderr: str) -> bool:
    return re.search(rf"\b{stage}(?: \([\d,]+ new files\))?: [\d.]+ s", stderr) is not None


def phase(stderr: str) -> str:
    """The phase a run was in when it stopped: the first whose stage it had not logged as done."""
    for name, stage in zip(PHASES, STAGES):
        if not logged(stage, stderr):
            return name
    return PHASES[-1]


class Targets:
    """Fresh targets of one kind, named by the caller: empty, or copies of another; PostgreSQL databases are
    dropped by close()."""

    def __init__(self, request, kind: str, root: Path, s3_options: str = ""):
        self.request, self.kind, self.root, self.s3_options = request, kind, root, s3_options
        self.databases: list[str] = []

    def __call__(self, name: str) -> str:
        if self.kind == "duckdb":
            self.root.mkdir(parents=True, exist_ok=True)
            return str(self.root / f"{name}.duckdb")
        if self.kind == "lake":
            return f"lake://{self.root / name}"
        if self.kind == "s3lake":
            return f"s3://{self._bucket()}/{name}{self.s3_options}"
        return self._database()

    def clone(self, source: str, name: str) -> str:
        """A new target holding exactly what `source` holds (at rest: no run on it), copied, not rebuilt."""
        if self.kind == "postgres":
            return self._database(template=source.rsplit("/", 1)[1])
        target = self(name)
        if self.kind == "duckdb":
            shutil.copyfile(source, target)
        elif self.kind == "lake":
            shutil.copytree(source.removeprefix("lake://"), target.removeprefix("lake://"), symlinks=True)
        else:
            import boto3

            s3, bucket = boto3.client("s3"), self._bucket()
            old, new = (url.removeprefix(f"s3://{bucket}/").split("?")[0] + "/" for url in (source, target))
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=old):
                for obj in page.get("Contents", []):
                    s3.copy_object(Bucket=bucket, Key=new + obj["Key"].removeprefix(old),
                                   CopySource={"Bucket": bucket, "Key": obj["Key"]})
        return target

    def _bucket(self) -> str:
        return self.request.getfixturevalue("s3_bucket")

    def _database(self, template: str | None = None) -> str:
        import psycopg

        server = self.request.getfixturevalue("pg_server")
        db = f"t_rel_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{db}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.databases.append(db)
        return server.rsplit("/", 1)[0] + "/" + db

    def close(self) -> None:
        if self.databases:
            import psycopg

            with psycopg.connect(self.request.getfixturevalue("pg_server"), autocommit=True) as con:
                for db in self.databases:
                    con.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# -- the two deliveries ---------------------------------------------------------

BAD_EVENT = '{"ts": "yesterday", "page": "NextSong", "userId": "7"}'
BAD_SONG = '{"song_id": "SOBROKEN", "title": "No duration", "artist_id": "ARX", "artist_name": "X"}'


@dataclass
class Scenario:
    """A copy of the sample delivered in two halves (log days and song files alike).

    Files held back wait in a stash and are moved in with rename(), which
    keeps their size and modification time, so every run of every trial
    sees the same ledger identity for the same file. One bad event in each
    half and one bad song in the second give the rejects table a before and
    an after.
    """

    root: Path
    held_back: list[tuple[Path, Path]] = field(default_factory=list)

    @classmethod
    def build(cls, sample: Path, root: Path) -> Scenario:
        data, stash = root / "data", root / "stash"
        shutil.copytree(sample / "song_data", data / "song_data")
        shutil.copytree(sample / "log_data", data / "log_data")
        logs = sorted((data / "log_data").rglob("*.json"))
        songs = sorted((data / "song_data").rglob("*.json"))
        for path in (logs[0], logs[-1]):
            text = path.read_bytes()
            path.write_bytes(text + (b"" if text.endswith(b"\n") else b"\n") + BAD_EVENT.encode() + b"\n")
        broken = songs[-1].with_name("TRBROKEN0000000.json")
        broken.write_text(BAD_SONG)
        late = logs[len(logs) // 2:] + songs[len(songs) // 2:] + [broken]
        return cls(root, [(p, stash / p.relative_to(data)) for p in late])

    @property
    def songs(self) -> Path:
        return self.root / "data" / "song_data"

    @property
    def logs(self) -> Path:
        return self.root / "data" / "log_data"

    def first_half(self) -> None:
        self._move((live, held) for live, held in self.held_back)

    def second_half(self) -> None:
        self._move((held, live) for live, held in self.held_back)

    @staticmethod
    def _move(pairs: Iterable[tuple[Path, Path]]) -> None:
        for src, dst in pairs:
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dst)

    def run_args(self, target: str) -> list[str]:
        return ["run", "--songs", str(self.songs), "--logs", str(self.logs), "--target", target, "--json"]


# -- what a target holds --------------------------------------------------------

LEDGER_SQL = 'SELECT path, kind, size, modified, records FROM "_sparkify_files" ORDER BY path'
REJECTS_SQL = ('SELECT kind, source_file, line, reason, raw FROM "rejects" '
               'ORDER BY kind, source_file, line, reason, raw')
RUNS_SQL = 'SELECT count(*) FROM "_sparkify_runs"'


@dataclass(frozen=True)
class State:
    star: dict[str, list[tuple]]
    ledger: list[tuple]
    rejects: list[tuple]
    runs: int

    def same_data(self, other: State) -> bool:
        """Same tables, ledger and rejects (how many runs it took may differ)."""
        return (self.star, self.ledger, self.rejects) == (other.star, other.ledger, other.rejects)

    def summary(self) -> str:
        sizes = ", ".join(f"{name} {len(rows)}" for name, rows in self.star.items())
        return f"{sizes}; {len(self.ledger)} files, {len(self.rejects)} rejects, {self.runs} runs"


def read_state(target: str) -> State:
    from sparkify.targets import open_target

    tgt = open_target(target)
    try:
        state = {}
        for name, sql in (("ledger", LEDGER_SQL), ("rejects", REJECTS_SQL), ("runs", RUNS_SQL)):
            _, rows = tgt.query(sql)
            state[name] = [tuple(r) for r in rows]
    finally:
        tgt.close()
    return State(star_rows(target), state["ledger"], state["rejects"], state["runs"][0][0])


def judge(state: State, before: State, after: State) -> str:
    if state == before:
        return "before"
    if state == after:
        return "after"
    return "mixed"


# -- trials ---------------------------------------------------------------------

@dataclass
class Reference:
    """The two states an undisturbed two-step load goes through, and how long each phase of its second run took."""

    before: State
    after: State
    windows: dict[str, float]
    template: str | None = None  # a copy of the target at `before`, when the kind of target can be copied


@dataclass
class Trial:
    kind: str
    number: int
    aimed: str
    at: float
    struck: bool  # the fault hit a running command (False: it had finished already)
    killed: bool
    hung: bool
    phase: str
    code: int | None
    clear_error: bool
    outcome: str
    check: bool
    converged: bool
    leftovers: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        ended_well = self.code == 0 or self.killed or self.clear_error
        clean = self.leftovers == 0
        return self.outcome in ("before", "after") and self.check and self.converged and ended_well and clean


Fault = Callable[[Child], None]
"""Strike a running command, now."""


def kill(child: Child) -> None:
    child.kill()


class Campaign:
    """Trials of one fault against one kind of target, each on a fresh target holding the first half (or, for a
    first load, only the empty tables of `sparkify schema`, the struck run then loading both halves).

    That state is built once, by real commands, for the reference run; when `new_target` can also `clone` a
    target (Targets can), each trial starts from a copy of it, taken before the reference run went on."""

    def __init__(self, kind: str, scenario: Scenario, new_target: Callable[[str], str] | Targets, workdir: Path,
                 env: dict[str, str] | None = None, first_load: bool = False):
        """`env`: extra environment of every command (an S3 endpoint behind a proxy, say)."""
        self.kind, self.scenario, self.new_target, self.workdir = kind, scenario, new_target, workdir
        self.extra_env = env or {}
        self.first_load = first_load

    def _env(self, tmp: Path) -> dict[str, str]:
        return child_env(tmp, **self.extra_env)

    def _run(self, target: str, where: Path) -> Result:
        result = sparkify(*self.scenario.run_args(target), workdir=where, env=self._env(where / "tmp"))
        assert result.code == 0, f"an undisturbed run failed on {target}:\n{result.stderr[-3000:]}"
        return result

    def _before(self, target: str, where: Path) -> None:
        """Bring a fresh target to the state the struck run starts from, and deliver what that run reads."""
        if self.first_load:
            result = sparkify("schema", "--target", target, workdir=where, env=self._env(where / "tmp"))
            assert result.code == 0, f"sparkify schema failed on {target}:\n{result.stderr[-3000:]}"
        else:
            self.scenario.first_half()
            self._run(target, where)
        self.scenario.second_half()

    def reference(self) -> Reference:
        target, where = self.new_target("reference"), self.workdir / "reference"
        self._before(target, where)
        before = read_state(target)
        clone = getattr(self.new_target, "clone", None)
        template = clone(target, "template") if clone else None
        child = Child(self.scenario.run_args(target), where, self._env(where / "tmp"))
        times = child.timeline()
        result = child.wait()
        assert result.code == 0 and set(STAGES) <= set(times), f"the reference run failed:\n{result.stderr[-3000:]}"
        marks = [0.0, *(times[s] for s in STAGES), times["end"]]
        windows = {name: max(end - start, 0.0) for name, start, end in zip(PHASES, marks, marks[1:])}
        return Reference(before, read_state(target), windows, template)

    def trial(self, number: int, aimed: str, fraction: float, fault: Fault, ref: Reference) -> Trial:
        """Strike the second run `fraction` of the way through phase `aimed` (as long as in the reference)."""
        where = self.workdir / f"trial{number}"
        if ref.template:  # the state `before` as the reference run found it: the same, and no run to wait for
            target = self.new_target.clone(ref.template, f"trial{number}")
            self.scenario.second_half()
        else:
            target = self.new_target(f"trial{number}")
            self._before(target, where)
        tmp = where / "struck-tmp"
        child = Child(self.scenario.run_args(target), where, self._env(tmp))
        child.reached(ANCHOR[aimed])
        at = child.elapsed() + fraction * ref.windows[aimed]
        struck = child.alive_at(at)
        hit = phase(child.stderr_so_far()) if struck else "(had finished)"
        if struck:
            fault(child)
        result = child.wait(STRUCK_TIMEOUT)
        detail = f"hung: killed after {STRUCK_TIMEOUT} s; " if result.timed_out else ""
        try:
            state = read_state(target)
            outcome = judge(state, ref.before, ref.after)
            if outcome == "mixed":
                detail = f"mixed state: {state.summary()}"
        except Exception as exc:  # an unreadable target is the worst outcome: record it, do not stop
            outcome, detail = "unreadable", f"{type(exc).__name__}: {exc}"
        check = sparkify("check", "--target", target, workdir=where, env=self._env(where / "tmp"))
        checked = check.code == 0 or (self.first_load and outcome == "before")  # an empty star fails "has rows"
        converge = sparkify(*self.scenario.run_args(target), workdir=where, env=self._env(tmp))
        converged = converge.code == 0 and read_state(target).same_data(ref.after)
        leftovers = len(list(tmp.iterdir()))  # the struck run's scratch, once the next run has started
        if not checked:
            detail += f" check failed: {check.output[-1500:]}"
        if not converged:
            detail += f" no convergence (exit {converge.code}): {converge.stderr[-1500:]}"
        if leftovers:
            detail += f" {leftovers} scratch entries left in TMPDIR after the next run"
        if result.code != 0 and not result.killed and not result.clear_error:
            detail += f" unclear failure: {result.stderr[-1500:]}"
        return Trial(self.kind, number, aimed, round(at, 3), struck, result.killed, result.timed_out, hit,
                     result.code,
                     result.clear_error, outcome, checked, converged, leftovers, detail.strip())

    def run(self, count: int, seed: int, fault: Fault = kill, ref: Reference | None = None,
            aims: Sequence[str] = STRIKE_ORDER) -> list[Trial]:
        """`count` trials, aimed at the phases `aims` in turn, at a random point (seeded) of the phase's length."""
        ref = ref or self.reference()
        rng = random.Random(seed)
        return [self.trial(i, aims[i % len(aims)], rng.random(), fault, ref) for i in range(count)]


def failures(trials: list[Trial]) -> str:
    return "\n".join(f"{t.kind} #{t.number} aimed at {t.aimed}, struck at {t.at}s ({t.phase}): {t.outcome}, "
                     f"check={t.check}, "
                     f"converged={t.converged}, exit={t.code}: {t.detail}" for t in trials if not t.ok)


# -- RELIABILITY.md -------------------------------------------------------------

def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def trials_row(name: str, trials: list[Trial]) -> list[object]:
    """One line of outcomes: trials, struck mid-run, before, after, mixed, clear failures, check, converged."""
    outcomes = Counter(t.outcome for t in trials)
    failed = [t for t in trials if t.code != 0 and not t.killed and not t.hung]
    return [name, len(trials), sum(t.struck for t in trials), outcomes["before"], outcomes["after"],
            outcomes["mixed"] + outcomes["unreadable"], sum(t.hung for t in trials),
            f"{sum(t.clear_error for t in failed)}/{len(failed)}",
            sum(t.check for t in trials), sum(t.converged for t in trials),
            sum(t.leftovers for t in trials)]


TRIALS_HEADER = ("target", "trials", "struck mid-run", "before-state", "after-state", "mixed", "hung",
                 "clear errors / failed runs", "check passed", "converged", "scratch dirs left after the next run")


def phases_row(name: str, trials: list[Trial]) -> list[object]:
    by_phase = Counter((t.phase, t.outcome) for t in trials if t.struck)
    cells = []
    for stage in PHASES:
        b, a = by_phase[(stage, "before")], by_phase[(stage, "after")]
        cells.append(f"{b}/{a}" if b or a else "-")
    return [name, *cells]


PHASES_HEADER = ("target", *PHASES)


def write_section(name: str, markdown: str, path: Path = RELIABILITY) -> None:
    """Replace the text between `<!-- name:begin -->` and `<!-- name:end -->` (appended if missing)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        fh.seek(0)
        fh.truncate()
        fh.write(text)


def write_rows(name: str, header: Sequence[str], rows: Iterable[Sequence[object]], path: Path = RELIABILITY) -> None:
    """Put `rows` into the table of section `name`, replacing rows with the same first cell, keeping others."""
    lines: dict[str, str] = {}
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin in text and end in text:
        for line in text.split(begin, 1)[1].split(end, 1)[0].splitlines():
            first = line.split("|")[1].strip() if line.startswith("| ") else None
            if first and first != header[0]:
                lines[first] = line
    for row in rows:
        lines[str(row[0])] = "| " + " | ".join(str(v) for v in row) + " |"
    head = table(header, [])
    write_section(name, head + "\n" + "\n".join(lines[k] for k in sorted(lines)), path)


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
