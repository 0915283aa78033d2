"""The data-quality checks behind `sparkify check`: portable SQL, one query per check.

Each check counts offending rows; a check passes when the count is zero.
The SQL runs unchanged on DuckDB, PostgreSQL, Redshift and the lake.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkify.schema import STAR


@dataclass(frozen=True)
class Check:
    name: str
    sql: str  # returns one integer: the number of offending rows


def _checks() -> list[Check]:
    checks = [Check(f"{t.name} is not empty", f'SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM "{t.name}"')
              for t in STAR if t.name != "songs" and t.name != "artists"]
    for table in STAR:
        key = ", ".join(f'"{c}"' for c in table.primary_key)
        checks.append(Check(
            f"{table.name}: {key} is unique",
            f'SELECT count(*) FROM (SELECT {key} FROM "{table.name}" GROUP BY {key} HAVING count(*) > 1) d',
        ))
        for column in table.columns:
            if not column.nullable:
                checks.append(Check(
                    f"{table.name}.{column.name} is never NULL",
                    f'SELECT count(*) FROM "{table.name}" WHERE "{column.name}" IS NULL',
                ))
        for fk in table.foreign_keys:
            (col,), (ref,) = fk.columns, fk.ref_columns
            checks.append(Check(
                f"{table.name}.{col} refers to {fk.table}",
                f'SELECT count(*) FROM "{table.name}" x LEFT JOIN "{fk.table}" r ON r."{ref}" = x."{col}" '
                f'WHERE x."{col}" IS NOT NULL AND r."{ref}" IS NULL',
            ))
    for table in STAR:
        for column in table.columns:
            if column.type == "text":
                checks.append(Check(
                    f"{table.name}.{column.name} has no empty or untrimmed text",
                    f'SELECT count(*) FROM "{table.name}" WHERE "{column.name}" = \'\' '
                    f'OR "{column.name}" <> trim("{column.name}")',
                ))
    checks += [
        Check("songplays.song_id and artist_id are both set or both NULL",
              'SELECT count(*) FROM songplays WHERE (song_id IS NULL) <> (artist_id IS NULL)'),
        Check("songplays: the matched song belongs to the matched artist",
              'SELECT count(*) FROM songplays p JOIN songs s ON s.song_id = p.song_id '
              'WHERE s.artist_id <> p.artist_id'),
        Check("time: fields in range",
              'SELECT count(*) FROM "time" WHERE hour NOT BETWEEN 0 AND 23 OR day NOT BETWEEN 1 AND 31 '
              'OR week NOT BETWEEN 1 AND 53 OR month NOT BETWEEN 1 AND 12 OR weekday NOT BETWEEN 1 AND 7'),
        Check("time covers every songplay",
              'SELECT count(*) FROM (SELECT DISTINCT start_time FROM songplays) p '
              'LEFT JOIN "time" t ON t.start_time = p.start_time WHERE t.start_time IS NULL'),
        Check("songs: year is NULL or a plausible year",
              'SELECT count(*) FROM songs WHERE year IS NOT NULL AND (year < 1000 OR year > 2100)'),
        Check("songs: duration is positive", 'SELECT count(*) FROM songs WHERE duration <= 0'),
        Check("users: level is free or paid",
              "SELECT count(*) FROM users WHERE level IS NOT NULL AND level NOT IN ('free', 'paid')"),
    ]
    return checks


CHECKS = _checks()


@dataclass(frozen=True)
class CheckResult:
    name: str
    failures: int

    @property
    def passed(self) -> bool:
        return self.failures == 0


def run_checks(target) -> list[CheckResult]:
    results = []
    for check in CHECKS:
        _, rows = target.query(check.sql)
        results.append(CheckResult(check.name, int(next(iter(rows))[0])))
    return results
