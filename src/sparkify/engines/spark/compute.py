"""The contract of SPEC.md as Spark DataFrames: raw files in, one batch of star rows out.

The same steps as engines/duckdb.py, each rule stated once for Spark:
songs are read whole (a file that is one JSON object, pretty-printed or
not, is one record) or line by line; events line by line; every record is
typed by records.py, text is cleaned by text.py, and the star is built
with DuckDB's tie-breaks. Rejected lines get their numbers and exact bytes
from rawlines, like DuckDB's.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkify import rawlines
from sparkify.engines.spark.records import is_object_text, non_ascii, read_fields, with_errors
from sparkify.engines.spark.session import in_one_jvm
from sparkify.engines.spark.sql import double, name, string
from sparkify.engines.spark.text import TextFix
from sparkify.progress import Progress
from sparkify.records import EVENT_FIELDS, EVENT_REQUIRED, ID_TAIL, NEXTSONG_REQUIRED, SONG_FIELDS, SONG_REQUIRED
from sparkify.schema import (
    PLAY_KEYS,
    SONG_RECORDS,
    SONGPLAYS,
    TIME,
    USER_LATEST,
    USERS,
    spark_conform,
    spark_schema,
)

log = logging.getLogger(__name__)

Source = list[str] | str
"""Files to read: explicit paths (a run's new files), or one folder or URL read recursively (*.json)."""

LINES = T.StructType([T.StructField("source_file", T.StringType()), T.StructField("line", T.LongType()),
                      T.StructField("raw", T.StringType())])
LINE_BREAKS = "\r\n|\r|\n"
"""Where song files that are not one JSON object are split into lines."""
BLANK_EVENT = " \t\r"
"""What makes a log line blank: DuckDB's exact reader drops lines of only these."""


@dataclass
class Computed:
    """One run's rows as DataFrames (named like DuckDB's b_* tables), rejects and accounting."""

    tables: dict[str, DataFrame]
    rejects: list[dict]
    songs: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)
    file_records: dict[str, int] = field(default_factory=dict)
    catalogue: DataFrame | None = None
    """Song records already loaded, the batch's in place of those they replace: what plays are matched against."""
    plays: DataFrame | None = None
    """The batch's distinct song plays (one per songplay_id)."""
    valid_songs: int = 0
    checkpoint: bool = False
    """Keep intermediate results as local checkpoints, not cached plans (see `_persist`)."""
    cached: list[DataFrame] = field(default_factory=list)

    def finish(self, songs_loaded: int, plays: int) -> None:
        """Complete the accounting with the row counts of the written b_songs and b_songplays.

        Counting where the rows were written costs nothing; counting here would be one more Spark job.
        """
        self.songs.update(loaded=songs_loaded, duplicate=self.valid_songs - songs_loaded)
        self.events["in_batch_duplicate"] = self.events["song_plays"] - plays

    def release(self) -> None:
        """Free the run's cached rows now, not when the driver's garbage collector finds them: a process
        that runs again (an API caller, the tests) would otherwise hold every earlier run's. A local
        checkpoint has no public unpersist: its rows are the RDD under the DataFrame's plan."""
        for df in self.cached:
            if self.checkpoint:
                df._jdf.queryExecution().logical().rdd().unpersist(False)
            else:
                df.unpersist()


def _file_path() -> str:
    """The file a row came from, as the caller named it: Spark reports URL-encoded `file:` URIs."""
    path = f"regexp_replace(_metadata.file_path, {string('^file:(//)?')}, '')"
    return f"coalesce(try_url_decode(replace({path}, '+', '%2B')), {path})"


EXPLICIT_PATHS = 500
"""Above this many files, list their common folder recursively: Spark resolves explicit paths one by one
(minutes for the 14,896 song files of the original catalogue), a recursive listing in seconds."""


def _common_root(paths: list[str]) -> str:
    scheme, sep, _ = paths[0].rpartition("://")
    bare = [p.split("://", 1)[1] if sep else p for p in paths]
    root = posixpath.commonpath(bare) if len(bare) > 1 else posixpath.dirname(bare[0])
    return f"{scheme}{sep}{root}"


def _read_text(spark: SparkSession, source: Source, wholetext: bool = False,
               line_sep: str | None = None) -> DataFrame | None:
    """(source_file, value): each file's lines, or each file whole."""
    if not source:
        return None
    reader = spark.read
    wanted = None
    if isinstance(source, list) and len(source) > EXPLICIT_PATHS:
        wanted = F.broadcast(spark.createDataFrame([(p,) for p in source], "source_file string"))
        source = _common_root(source)
    if isinstance(source, str):
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.json")
    if wholetext:  # the binary reader reads a file in one call, a few times faster than the whole-text one
        df = reader.format("binaryFile").load(source).selectExpr(f"{_file_path()} AS source_file",
                                                                  "CAST(content AS STRING) AS value")
    else:
        df = reader.text(source, lineSep=line_sep).selectExpr(f"{_file_path()} AS source_file", "value")
    return df.join(wanted, "source_file", "left_semi") if wanted is not None else df


def _persist(batch: Computed, df: DataFrame) -> DataFrame:
    """Rows read more than once, computed once.

    In one JVM (session.in_one_jvm) they are kept as a local checkpoint: the
    DataFrame that follows starts from the stored rows, not from the plan
    that made them, and the plans of the typing and cleaning are large,
    so every later action (the star's, each batch table's write) is planned
    from a few nodes instead of hundreds. A local checkpoint cannot be
    recomputed if an executor is lost; in one JVM that loss ends the run
    anyway, but on a cluster it must not, so there the rows are cached with
    their plan (persist), which Spark recomputes from the input.
    """
    if batch.checkpoint:
        df = df.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)
    else:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
    batch.cached.append(df)
    return df


def compute(spark: SparkSession, songs: Source, logs: Source, catalogue: DataFrame | None,
            progress: Progress | None = None) -> Computed:
    """The batch for these song and log files; `catalogue` holds the song records already loaded."""
    stage = (progress or Progress(quiet=True)).stage
    batch = Computed(tables={}, rejects=[], checkpoint=in_one_jvm(spark))
    if catalogue is None:
        catalogue = spark.createDataFrame([], spark_schema(SONG_RECORDS))
    with stage("read"):
        song_rows = _read_songs(spark, batch, songs)
        ev0 = _read_events(spark, batch, logs)
        fix = TextFix(spark, _text_values(song_rows, SONG_FIELDS).unionByName(_text_values(ev0, EVENT_FIELDS)))
    with stage("songs", len(songs) if isinstance(songs, list) else None):
        _songs(batch, fix, song_rows, catalogue)
    with stage("events", len(logs) if isinstance(logs, list) else None):
        ev = _events(batch, fix, ev0)
    with stage("star"):
        _star(batch, fix, ev)
    return batch


def _text_values(df: DataFrame, fields) -> DataFrame:
    cols = [name(f"a_{f.name}") for f in fields if f.type == "text"]
    return (df.where(f"greatest({', '.join(non_ascii(c) for c in cols)})")
              .selectExpr(f"explode(array({', '.join(cols)})) AS v"))


# -- songs -------------------------------------------------------------------

def _read_songs(spark: SparkSession, batch: Computed, source: Source) -> DataFrame:
    """Song records typed as read: one per file that is one JSON object, else one per non-blank line."""
    texts = _read_text(spark, source, wholetext=True)
    if texts is None:
        lines = spark.createDataFrame([], LINES)
    else:
        utf8 = "is_valid_utf8(value)"
        texts = _persist(batch, texts.selectExpr("source_file", "value AS text", f"{utf8} AS utf8",
                                                 f"{utf8} AND {is_object_text('value')} AS whole"))
        whole = texts.where("whole").selectExpr("source_file", "CAST(1 AS BIGINT) AS line", "text AS raw")
        split = (texts.where("utf8 AND NOT whole")
                 .selectExpr("source_file", f"posexplode(split(text, {string(LINE_BREAKS)}, -1))")
                 .selectExpr("source_file", "CAST(pos + 1 AS BIGINT) AS line", "col AS raw")
                 .where("btrim(raw, ' ') != ''"))  # as DuckDB drops blank song lines
        lines = whole.unionByName(split)
        undecodable = [r.source_file for r in texts.where("NOT utf8").select("source_file").collect()]
        if undecodable:
            lines = lines.unionByName(spark.createDataFrame(_undecodable_songs(batch, undecodable), LINES))
    rows = read_fields(lines, SONG_FIELDS)
    return _persist(batch, rows)


def _undecodable_songs(batch: Computed, paths: list[str]) -> list[tuple]:
    """Song files that are not UTF-8 as a whole: their good lines are read, the others rejected."""
    rows = []
    for path in sorted(paths):
        for line in rawlines.iter_lines(path):
            text = rawlines.decode_line(line.data)
            if text is None:
                batch.rejects.append(_reject("song", path, line.number, rawlines.UNDECODABLE,
                                             rawlines.raw_text(line.data)))
            elif text.strip():
                rows.append((path, line.number, text))
    return rows


def _songs(batch: Computed, fix: TextFix, rows: DataFrame, catalogue: DataFrame) -> None:
    text = {f.name: f"a_{f.name}" for f in SONG_FIELDS if f.type == "text"}
    songs = with_errors(fix.apply(rows, text), SONG_FIELDS, SONG_REQUIRED)
    songs = _persist(batch, songs.select("source_file", "line", "raw", "error",
                                         *(f.name for f in SONG_FIELDS), *text.values()))
    _account_songs(batch, songs)
    record = [name(f.name) if f.name != "year" else "nullif(year, 0) AS year"
              for f in SONG_FIELDS if f.name != "song_id"]
    stored = spark_conform(catalogue, SONG_RECORDS)
    held = stored.selectExpr("song_id", "source_file AS s_file", "line AS s_line")
    wins = "s_file IS NULL OR source_file < s_file OR (source_file = s_file AND line <= s_line)"
    chosen = (songs.where("error IS NULL")
              .groupBy("song_id")
              .agg(F.expr(f"min_by(struct({', '.join(record)}, source_file, line, a_title, a_artist_name), "
                          "struct(source_file, line)) AS r"))
              .select("song_id", "r.*")
              .join(held, "song_id", "left").where(wins))
    chosen = fix.apply(chosen, {}, {"title_key": "a_title", "artist_key": "a_artist_name"})
    records = _persist(batch, spark_conform(chosen.withColumn("year", F.expr("try_cast(year AS INT)")), SONG_RECORDS))
    batch.tables["b_song_records"] = records
    batch.tables["b_songs"] = records.select("song_id", "title", "artist_id", "year", "duration")
    replaced = stored.join(records.select("song_id"), "song_id", "left_semi").select("artist_id")
    batch.catalogue = stored.join(records.select("song_id"), "song_id", "left_anti").unionByName(records)
    batch.tables["b_artists"] = _artists(batch.catalogue, records.select("artist_id").union(replaced))


def _account_songs(batch: Computed, songs: DataFrame) -> None:
    """Song records read, valid and rejected, per file, and the rejects: one job."""
    read = valid = 0
    for r in songs.groupBy("source_file").agg(
            F.expr("count(*) AS n"), F.expr("count_if(error IS NULL) AS valid"),
            F.expr("collect_list(CASE WHEN error IS NOT NULL THEN struct(line, raw, error) END) AS rejects")).collect():
        batch.file_records[r.source_file] = r.n
        read, valid = read + r.n, valid + r.valid
        batch.rejects.extend(_reject("song", r.source_file, x.line, x.error, x.raw) for x in r.rejects)
    undecodable = sum(1 for r in batch.rejects if r["kind"] == "song" and r["reason"] == rawlines.UNDECODABLE)
    batch.songs = {"read": read + undecodable, "rejected": read - valid + undecodable}
    batch.valid_songs = valid


def _artists(catalogue: DataFrame, touched: DataFrame) -> DataFrame:
    """Each artist's most frequent non-NULL value per field (ties: the smallest), over all its songs, for the
    `touched` artist_ids: a run's records, and those whose record one of them replaced."""
    songs = catalogue.join(touched.distinct(), "artist_id", "left_semi")
    fields = {"name": "artist_name", "location": "artist_location",
              "latitude": "artist_latitude", "longitude": "artist_longitude"}
    return songs.groupBy("artist_id").agg(*(F.mode(src, deterministic=True).alias(out)
                                             for out, src in fields.items()))


# -- events ------------------------------------------------------------------

def _read_events(spark: SparkSession, batch: Computed, source: Source) -> DataFrame:
    """Every non-blank log line typed as read; lines that are not UTF-8 are only flagged."""
    lines = _read_text(spark, source, line_sep="\n")
    if lines is None:
        lines = spark.createDataFrame([], "source_file string, value string")
    utf8 = "is_valid_utf8(value)"
    control = string("\x01")  # read as DuckDB's line reader reads it: never valid JSON
    raw = (f"CASE WHEN {utf8} THEN CASE WHEN contains(value, {control}) "
           f"THEN concat(substring_index(value, {control}, 1), {control}) ELSE value END END")
    lines = (lines.selectExpr("source_file", "CAST(NULL AS BIGINT) AS line", f"{raw} AS raw", f"{utf8} AS utf8")
             .where(f"NOT utf8 OR btrim(raw, {string(BLANK_EVENT)}) != ''"))
    rows = read_fields(lines, EVENT_FIELDS)
    may_fail = [f"{name(c)} IS NULL" for c in (*EVENT_REQUIRED, *NEXTSONG_REQUIRED)]
    keep_raw = f"problem IS NOT NULL OR greatest({', '.join(may_fail)})"  # the text of every possible reject
    keep = ["source_file", "utf8", "problem",
            *(name(f.name if f.type != "text" else f"a_{f.name}") for f in EVENT_FIELDS)]
    return _persist(batch, rows.selectExpr(*keep, f"CASE WHEN {keep_raw} THEN raw END AS raw"))


def _events(batch: Computed, fix: TextFix, ev0: DataFrame) -> DataFrame:
    """Valid events with is_play and err (records' NextSong rule), the accounting and the rejects."""
    ev = fix.apply(ev0, {"page": "a_page"})
    ev = with_errors(ev.selectExpr("*", *(f"{name('a_' + f.name)} AS {name(f.name)}" for f in EVENT_FIELDS
                                          if f.type == "text" and f.name != "page")), EVENT_FIELDS, EVENT_REQUIRED)
    keys = {f.name: f.key for f in EVENT_FIELDS}
    nextsong = ", ".join(f"CASE WHEN {name(c)} IS NULL THEN {string(f'NextSong without {keys[c]}')} END"
                         for c in NEXTSONG_REQUIRED)
    ev = ev.selectExpr("*", "page = 'NextSong' AS is_play",
                       f"coalesce(error, CASE WHEN page = 'NextSong' THEN coalesce({nextsong}) END) AS err")

    # one job: the counts, and each distinct rejected line (the others have no `reason`)
    counts = (ev.groupBy("source_file", "utf8", F.expr("err IS NULL AS ok"),
                         F.expr("coalesce(is_play, false) AS play"), "page",
                         F.expr("CASE WHEN utf8 THEN err END AS reason"),
                         F.expr("CASE WHEN utf8 AND err IS NOT NULL THEN raw END AS rejected"))
              .count().collect())
    filtered: Counter = Counter()
    per_file: Counter = Counter()
    valid = plays = 0
    for r in counts:
        if not (r.utf8 and r.ok):
            continue
        per_file[r.source_file] += r["count"]
        valid += r["count"]
        if r.play:
            plays += r["count"]
        else:
            filtered[r.page if r.page is not None else "(no page)"] += r["count"]
    _locate_event_rejects(batch, [r for r in counts if r.reason is not None],
                          {r.source_file for r in counts if not r.utf8})
    rejected = [r for r in batch.rejects if r["kind"] == "event"]
    per_file.update(r["source_file"] for r in rejected)
    batch.events = {"read": valid + len(rejected), "rejected": len(rejected),
                    "filtered": dict(sorted(filtered.items())), "song_plays": plays}
    batch.file_records.update(per_file)
    return ev.where("utf8 AND err IS NULL")


def _locate_event_rejects(batch: Computed, rejected: list, undecodable: set[str]) -> None:
    """Line numbers and exact bytes of rejected log lines, by rawlines (as DuckDB's engine does).

    `rejected`: (source_file, rejected line, reason, count) of each distinct readable line rejected.
    """
    by_file: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[tuple[str, str], str] = {}
    for r in rejected:
        by_file[r.source_file][r.rejected] += r["count"]
        reasons[(r.source_file, r.rejected)] = r.reason
    unreadable: dict[str, dict[int, str]] = {path: {} for path in undecodable}  # rawlines finds the lines
    for reject in rawlines.locate(by_file, reasons, unreadable):
        batch.rejects.append(_reject("event", *reject))


# -- the star ----------------------------------------------------------------

def _star(batch: Computed, fix: TextFix, ev: DataFrame) -> None:
    """Song plays, their match keys, time and users, with DuckDB's tie-breaks (targets/sqlmerge.py's rules).

    As in the DuckDB engine, a play's level, location and user agent are cleaned once per distinct value,
    and plays match the catalogue through their distinct (song, artist, length): both are joined back.
    """
    play = ["level", "location", "user_agent", "song", "artist", "length"]
    identity = ["session_id", "item_in_session", "user_id", "ts"]
    songplay_id = ("CAST(conv(substr(md5(concat_ws('|', "
                   + ", ".join(f"CAST({c} AS STRING)" for c in identity) + ")), 1, 15), 16, 10) AS BIGINT)")
    plays = _persist(batch, _plays(batch, fix, ev.where("is_play"), play, identity).selectExpr(
        "*", f"{songplay_id} AS songplay_id", "timestamp_millis(ts) AS start_time"))
    cleaned = ["level", "location", "user_agent"]
    songplays = plays
    for c in cleaned:  # once per distinct value (a few hundred), joined back: far cheaper than per play
        values = fix.apply(plays.select(F.col(c).alias(f"v_{c}")).distinct(), {f"clean_{c}": f"v_{c}"})
        songplays = songplays.join(F.broadcast(values), songplays[c] == values[f"v_{c}"], "left")
    catalogue = batch.catalogue
    heard = ["song", "artist", "length"]
    keyed = fix.apply(plays.where("length IS NOT NULL").select(*heard).distinct(), {},
                      {"title_key": "song", "artist_key": "artist"})
    # at most a row per distinct (song, artist, length) that matched a catalogue song: broadcast
    match = (keyed.join(catalogue.select("song_id", "title_key", "artist_key", "duration"), ["title_key", "artist_key"])
             .where(f"abs(duration - length) < {double(0.001)}")
             .groupBy(*heard).agg(F.expr("min(song_id) AS song_id")))
    songplays = (songplays.drop(*cleaned).withColumnsRenamed({f"clean_{c}": c for c in cleaned})
                 .join(F.broadcast(match), heard, "left")
                 .join(catalogue.select("song_id", "artist_id"), "song_id", "left"))
    batch.tables["b_songplays"] = spark_conform(songplays, SONGPLAYS)
    play_keys = fix.apply(plays, {}, {"title_key": "song", "artist_key": "artist"})
    batch.tables["b_play_keys"] = spark_conform(play_keys, PLAY_KEYS)
    batch.tables["b_time"] = spark_conform(
        plays.select("start_time").distinct().selectExpr(
            "start_time", "hour(start_time) AS hour", "dayofmonth(start_time) AS day",
            "weekofyear(start_time) AS week", "month(start_time) AS month", "year(start_time) AS year",
            "extract(DAYOFWEEK_ISO FROM start_time) AS weekday"), TIME)
    who = ["first_name", "last_name", "gender", "level"]
    tail = f"CAST({string(ID_TAIL)} AS BIGINT)"
    order = ", ".join(["ts", f"coalesce(session_id, {tail})", f"coalesce(item_in_session, {tail})",
                       *(f"coalesce({c}, '')" for c in who)])
    last = ", ".join([*(f"{c} AS a_{c}" for c in who), "ts", "session_id", "item_in_session"])
    users = (ev.where("user_id IS NOT NULL").groupBy("user_id")
             .agg(F.expr(f"max_by(struct({last}), struct({order})) AS r"))
             .select("user_id", "r.*"))
    users = fix.apply(users, {c: f"a_{c}" for c in who}).selectExpr(
        "*", *(f"coalesce(a_{c}, '') AS tie_{c}" for c in who))
    latest = tuple(c.name for c in USER_LATEST.columns if c.name != "user_id")
    batch.tables["b_users"] = spark_conform(users, USERS, latest)
    batch.plays = plays


BROADCAST_DUPLICATES = 1_000_000
"""Most identities of duplicated plays sent whole to every task (32 bytes each); more are joined by shuffle."""


def _plays(batch: Computed, fix: TextFix, events: DataFrame, play: list[str], identity: list[str]) -> DataFrame:
    """One row per event: a copy's values (`play`), of several copies the one that comes first by
    sqlmerge.PLAY_TIE. Duplicates are rare, so only the identities are counted (the plays themselves are
    not shuffled), and only the duplicates' copies are cleaned and keyed for the tie."""
    duplicated = _persist(batch, events.groupBy(*identity).count().where("count > 1").select(*identity))
    if duplicated.count() <= BROADCAST_DUPLICATES:
        duplicated = F.broadcast(duplicated)
    copies = events.join(duplicated, identity, "left_semi")
    tie = {"t_level": "level", "t_location": "location", "t_user_agent": "user_agent"}
    copies = fix.apply(copies, tie, {"t_title_key": "song", "t_artist_key": "artist"})
    order = ", ".join([*(f"coalesce({c}, '')" for c in (*tie, "t_title_key", "t_artist_key")),
                       f"coalesce(length, {double(-1.0)})"])
    chosen = (copies.groupBy(*identity).agg(F.expr(f"min_by(struct({', '.join(play)}), struct({order})) AS r"))
              .select(*identity, "r.*"))
    return events.join(duplicated, identity, "left_anti").select(*identity, *play).unionByName(chosen)


def _reject(kind: str, source_file: str, line: int | None, reason: str, raw: str | None) -> dict:
    return {"kind": kind, "source_file": source_file, "line": line, "reason": rawlines.storable(reason),
            "raw": rawlines.storable(raw)}
