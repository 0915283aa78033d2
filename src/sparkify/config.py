"""Settings: the command line wins over SPARKIFY_* environment variables, which win over sparkify.toml.

sparkify.toml replaces the original projects' dl.cfg and dwh.cfg. Top-level
keys are the run options (`RUN_OPTIONS`: songs, logs, target, engine,
full_refresh, max_rejects, memory_limit, fail_on_empty). The target is
either a string or a [target] table with `url` and the target's options (a
schema name, an IAM role, ...); [spark] holds the Spark engine's options and
[s3] the S3 client's (`S3_SETTINGS`). A key or a SPARKIFY_* variable that
is none of these is refused with the nearest known name: a typo must not
switch a setting off. Values are checked here, before any work. Secrets
belong in the environment or the AWS chain, never in a committed file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sparkify.errors import ConfigError

DEFAULTS = {
    "target": "sparkify.duckdb",
    "memory_limit": "600MB",
}
"""No default engine: the target declares its own (Capabilities.engines)."""

ENV_PREFIX = "SPARKIFY_"

RUN_OPTIONS = ("songs", "logs", "target", "engine", "full_refresh", "max_rejects", "memory_limit", "fail_on_empty")
"""The settings a file's top level or a SPARKIFY_<NAME> variable may hold."""
TABLES = ("target", "spark", "s3")
"""The tables of sparkify.toml: [target] (url and the target's options), [spark], [s3]."""
S3_SETTINGS = ("endpoint_url", "anon", "profile", "region", "connect_timeout", "read_timeout", "max_attempts")
"""The keys of [s3] and the SPARKIFY_S3_<NAME> variables (objectstore.SETTINGS; a test keeps them equal)."""

OTHER_ENV = ("CONFIG", "SPARK_MASTER", "SAMPLE", "REQUIRE_SERVICES", "PGDIR", "PGPORT", "S3PORT", "EMR_RELEASE",
             "KILL_SEED", "BENCH_TMP", "PEERS_VENV")
"""SPARKIFY_* names read elsewhere: the config file, the Spark master, and the tests', scripts' and bench's own."""
OTHER_ENV_PREFIXES = ("REDSHIFT_", "TEST_")
"""SPARKIFY_REDSHIFT_<OPTION> (the Redshift target checks its options itself), SPARKIFY_TEST_* (the tests)."""

TRUE = ("1", "true", "yes", "on")

_given: str | None = None


@contextmanager
def given(path: str | None) -> Iterator[None]:
    """Within: --config's file is the one every reader loads (the [s3] section included)."""
    global _given
    before, _given = _given, path or _given
    try:
        yield
    finally:
        _given = before


def _unknown(kind: str, name: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
    return ConfigError(f"{where}: unknown {kind} {name!r}; {hint}")


def check_file(settings: Mapping, path: str) -> None:
    """Refuse a key of the file that no reader knows (a misspelled one would be silently ignored)."""
    for key, value in settings.items():
        if isinstance(value, dict) and key in TABLES:
            if key == "s3":
                for sub in value:
                    if sub not in S3_SETTINGS:
                        raise _unknown("key", f"s3.{sub}", [f"s3.{k}" for k in S3_SETTINGS], path)
        elif key not in RUN_OPTIONS:
            raise _unknown("key" if not isinstance(value, dict) else "table", key,
                           list(RUN_OPTIONS) + [f"[{t}]" for t in TABLES] if not isinstance(value, dict)
                           else list(TABLES), path)


def known_env() -> list[str]:
    return [ENV_PREFIX + n.upper() for n in RUN_OPTIONS] + [ENV_PREFIX + "S3_" + n.upper() for n in S3_SETTINGS] \
        + [ENV_PREFIX + n for n in OTHER_ENV]


def check_env(env: Mapping[str, str]) -> None:
    """Refuse a SPARKIFY_* variable nothing reads (a misspelled one would be silently ignored)."""
    known = known_env()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        if name[len(ENV_PREFIX):].startswith(OTHER_ENV_PREFIXES):
            continue
        raise _unknown("environment variable", name, known, "environment")


def load_file(path: str | None) -> dict:
    """The config file named by --config or SPARKIFY_CONFIG, else ./sparkify.toml if present."""
    path = path or _given or os.environ.get(ENV_PREFIX + "CONFIG")
    if path is None:
        if not Path("sparkify.toml").exists():
            return {}
        path = "sparkify.toml"
    try:
        with open(path, "rb") as fh:
            settings = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    check_file(settings, str(path))
    return settings


# -- values, checked before any work --------------------------------------------------------

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_SIZE = re.compile(rf"^\s*(?:{_NUMBER})\s*(?:[KMGT]i?B|B)\s*$", re.IGNORECASE)
_PERCENT = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")


def max_rejects(value: object) -> str | None:
    """`--max-rejects`: a whole number of records, 0 or more, or a percentage from 0% to 100%."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    percent = _PERCENT.match(text)
    if percent:
        if float(percent.group(1)) > 100:
            raise ConfigError(f"--max-rejects takes a percentage from 0% to 100%, not {text!r}")
        return text
    if re.fullmatch(r"-?\d+", text):
        if int(text) < 0:
            raise ConfigError(f"--max-rejects takes a number of records, 0 or more, not {text!r}")
        return text
    raise ConfigError(f"--max-rejects takes a number or a percentage (for example 100 or 1%), not {text!r}")


def memory_limit(value: object) -> str:
    """`--memory-limit`: a size (600MB, 1.5GiB: KB, MB, GB, TB or KiB, MiB, GiB, TiB) or a share of RAM (80%)."""
    text = str(value).strip()
    percent = _PERCENT.match(text)
    if _SIZE.match(text) or (percent and 0 < float(percent.group(1)) <= 100):
        return text
    raise ConfigError(f"--memory-limit takes a size such as 600MB or 1.5GiB (KB, MB, GB, TB or KiB, MiB, GiB, TiB), "
                      f"or a percentage of memory such as 80%, not {text!r}")


def flag(value: object) -> bool:
    """A yes/no setting from the command line (bool), a file (bool) or the environment (text)."""
    return value is True or str(value).strip().lower() in TRUE


def resolve(cli: dict, config_path: str | None = None, env: Mapping[str, str] | None = None) -> dict:
    """Merge the three sources; `cli` values of None mean 'not given'. Unknown names and bad values are refused."""
    env = os.environ if env is None else env
    check_env(env)
    file_settings = load_file(config_path)
    settings = {**DEFAULTS}
    settings.update({k: v for k, v in file_settings.items() if not isinstance(v, dict)})
    target_table = file_settings.get("target")
    if isinstance(target_table, dict) and "url" in target_table:
        settings["target"] = target_table["url"]
    for key in RUN_OPTIONS:
        if env.get(ENV_PREFIX + key.upper()) not in (None, ""):
            settings[key] = env[ENV_PREFIX + key.upper()]
    settings.update({k: v for k, v in cli.items() if v is not None})
    settings["max_rejects"] = max_rejects(settings.get("max_rejects"))
    settings["memory_limit"] = memory_limit(settings["memory_limit"])
    for key in ("full_refresh", "fail_on_empty"):
        settings[key] = flag(settings.get(key, False))
    target_options = {k: v for k, v in (target_table if isinstance(target_table, dict) else {}).items()
                      if k != "url"}
    target_options.setdefault("memory_limit", settings["memory_limit"])
    settings["target_options"] = target_options
    settings["engine_options"] = dict(file_settings.get("spark", {}))
    return settings
