"""Settings: the command line wins over SPARKIFY_* environment variables, which win over sparkify.toml.

sparkify.toml replaces the original projects' dl.cfg and dwh.cfg. Top-level
keys are the run options (songs, logs, target, engine, max_rejects,
memory_limit). The target is either a string or a [target] table with `url`
and the target's options (a schema name, an IAM role, ...); [spark] holds
the Spark engine's options. Secrets belong in the environment or the AWS
chain, never in a committed file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULTS = {
    "target": "sparkify.duckdb",
    "memory_limit": "600MB",
}
"""No default engine: the target declares its own (Capabilities.engines)."""

ENV_PREFIX = "SPARKIFY_"


class ConfigError(ValueError):
    pass


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


def load_file(path: str | None) -> dict:
    """The config file named by --config or SPARKIFY_CONFIG, else ./sparkify.toml if present."""
    path = path or _given or os.environ.get(ENV_PREFIX + "CONFIG")
    if path is None:
        if not Path("sparkify.toml").exists():
            return {}
        path = "sparkify.toml"
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def resolve(cli: dict, config_path: str | None = None, env: dict | None = None) -> dict:
    """Merge the three sources; `cli` values of None mean 'not given'."""
    env = os.environ if env is None else env
    file_settings = load_file(config_path)
    settings = {**DEFAULTS}
    settings.update({k: v for k, v in file_settings.items() if not isinstance(v, dict)})
    target_table = file_settings.get("target")
    if isinstance(target_table, dict) and "url" in target_table:
        settings["target"] = target_table["url"]
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            settings[key[len(ENV_PREFIX):].lower()] = value
    settings.update({k: v for k, v in cli.items() if v is not None})
    target_options = {k: v for k, v in (target_table if isinstance(target_table, dict) else {}).items()
                      if k != "url"}
    target_options.setdefault("memory_limit", settings["memory_limit"])
    settings["target_options"] = target_options
    settings["engine_options"] = dict(file_settings.get("spark", {}))
    return settings
