"""Write a self-contained HTML report (key figures and charts) from the query pack.

Every figure comes from the packaged queries run through `Target.query`, so
the report works on every target. The page needs no network to view: the
charts are inline SVG (sparkify.svgchart), the styles inline, no script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from html import escape
from pathlib import Path

from rich.console import Console

from sparkify import config
from sparkify.queries import load_queries
from sparkify.svgchart import BLUE, ORANGE, bar_chart, hbar_chart, line_chart, thousands
from sparkify.targets import open_target
from sparkify.targets.base import Target

log = logging.getLogger(__name__)

REPORT_QUERIES = (
    "overview", "plays_by_hour", "plays_by_weekday", "daily_activity", "plays_by_level", "top_songs",
    "top_artists", "user_agents", "top_locations", "top_users", "level_changes", "sessions",
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LEVEL_COLORS = {"free": ORANGE, "paid": BLUE}

Rows = list[dict]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="the target to report on (as for `sparkify query`)")
    parser.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")


def main(args: argparse.Namespace) -> int:
    settings = config.resolve({"target": args.target}, args.config)
    target = open_target(settings["target"], settings["target_options"])
    try:
        data = collect(target)
        html = render(data, target.describe(), dt.datetime.now(dt.timezone.utc))
    finally:
        target.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    Console(stderr=True).print(f"report on {target.describe()} written to {out}", highlight=False, markup=False)
    return 0


def collect(target: Target) -> dict[str, Rows]:
    """Run each query the report needs: name -> rows as dicts."""
    queries = load_queries()
    data = {}
    for name in REPORT_QUERIES:
        columns, rows = target.query(queries[name][1])
        data[name] = [dict(zip(columns, row)) for row in rows]
        log.debug("report query %s: %d rows", name, len(data[name]))
    return data


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Timestamps as UTC, whatever session time zone the target answered in."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def percent(part: float, whole: float) -> str:
    """A share with enough digits to tell a small one from zero (0.01%, 4.2%, 82%)."""
    if not whole:
        return "n/a"
    share = 100 * part / whole
    if share == 0 or share >= 10:
        return f"{share:.0f}%"
    return f"{share:.1f}%" if share >= 1 else f"{share:.2f}%"


def _figure(title: str, chart: str, caption: str = "", wide: bool = False) -> str:
    cls = "card wide" if wide else "card"
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="{cls}"><h2>{escape(title)}</h2>{chart}{cap}</figure>'


def _table(title: str, headers: list[str], rows: list[list[str]], caption: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    if rows:
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    else:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="card"><h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table>{cap}</figure>'


def _when(value: dt.datetime | None) -> str:
    value = _utc(value)
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _key_figures(o: dict) -> tuple[str, str]:
    """The figure cards and the match-rate statement."""
    first, last = _utc(o["first_play"]), _utc(o["last_play"])
    days = (last.date() - first.date()).days + 1 if first and last else 0
    period = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}" if first and last else "no plays"
    mean = o["plays"] / o["sessions"] if o["sessions"] else 0
    cards = [
        ("Plays", thousands(o["plays"]), f"in {thousands(o['sessions'])} sessions, {mean:.1f} per session"),
        ("Users", thousands(o["users"]), f"{thousands(o['listeners'])} of them played songs"),
        ("Songs", thousands(o["songs"]), f"by {thousands(o['artists'])} artists in the catalogue"),
        ("Period", f"{days} days", period + " (UTC)"),
        ("Match rate", percent(o["matched_plays"], o["plays"]),
         f"{thousands(o['matched_plays'])} of {thousands(o['plays'])} plays matched a song"),
    ]
    html = "".join(
        f'<div class="figure"><div class="label">{escape(label)}</div><div class="value">{escape(value)}</div>'
        f'<div class="sub">{escape(sub)}</div></div>'
        for label, value, sub in cards
    )
    note = (
        f"<strong>Match rate: {percent(o['matched_plays'], o['plays'])}.</strong> "
        f"Only {thousands(o['matched_plays'])} of {thousands(o['plays'])} plays have a <code>song_id</code>: "
        "a play is matched only when its title, artist and duration agree with a song of the catalogue, and the "
        "catalogue holds few of the songs users play. Top songs and top artists count matched plays only; "
        "every other chart counts all plays."
    )
    return html, note


def _time_charts(data: dict[str, Rows]) -> list[str]:
    by_hour = {r["hour"]: r["plays"] for r in data["plays_by_hour"]}
    by_day = {r["weekday"]: r["plays"] for r in data["plays_by_weekday"]}
    daily = data["daily_activity"]
    labels = [f"{r['day'].day} {r['day']:%b}" for r in daily]
    busiest = max(daily, key=lambda r: r["plays"], default=None)
    return [
        _figure("Plays by hour of day (UTC)", bar_chart(
            "Plays by hour of day (UTC)", [str(h) for h in range(24)], [by_hour.get(h, 0) for h in range(24)])),
        _figure("Plays by day of the week (UTC)", bar_chart(
            "Plays by day of the week (UTC)", list(WEEKDAYS), [by_day.get(d, 0) for d in range(1, 8)])),
        _figure("Daily plays", line_chart("Daily plays", labels, [r["plays"] for r in daily]),
                f"Busiest day: {busiest['day']:%Y-%m-%d} with {thousands(busiest['plays'])} plays." if busiest else ""),
        _figure("Daily active users", line_chart(
            "Daily active users", labels, [r["active_users"] for r in daily], color=ORANGE),
            "Users with at least one play that day."),
    ]


def _audience_charts(data: dict[str, Rows]) -> list[str]:
    levels = data["plays_by_level"]
    total = sum(r["plays"] for r in levels)
    level_labels = [f"{r['level']} ({percent(r['plays'], total)})" for r in levels]
    agents = data["user_agents"]
    browsers = [r for r in agents if r["dimension"] == "browser"]
    systems = [r for r in agents if r["dimension"] == "os"]
    sessions = [r for r in data["sessions"] if r["plays_per_session"] != "all"]
    overall = next((r for r in data["sessions"] if r["plays_per_session"] == "all"), None)
    listeners = ", ".join(f"{r['level']}: {thousands(r['listeners'])}" for r in levels)
    return [
        _figure("Free against paid plays", hbar_chart(
            "Free against paid plays", level_labels, [r["plays"] for r in levels],
            colors=[LEVEL_COLORS.get(r["level"], BLUE) for r in levels]),
            f"By the level at the time of the play. Listeners at each level: {listeners}." if levels else ""),
        _figure("Plays per session", bar_chart(
            "Plays per session", [r["plays_per_session"] for r in sessions], [r["sessions"] for r in sessions]),
            f"Sessions by number of plays; mean {overall['mean_plays']:.1f} plays over "
            f"{thousands(overall['sessions'])} sessions, longest {thousands(overall['max_plays'])}."
            if overall else ""),
        _figure("Browsers", hbar_chart("Plays by browser", [r["name"] for r in browsers],
                                       [r["plays"] for r in browsers])),
        _figure("Operating systems", hbar_chart("Plays by operating system", [r["name"] for r in systems],
                                                [r["plays"] for r in systems])),
    ]


def _catalogue_charts(data: dict[str, Rows]) -> list[str]:
    songs, artists = data["top_songs"], data["top_artists"]
    none = "no play matched a song of the catalogue"
    return [
        _figure("Top songs (matched plays)", hbar_chart(
            "Top songs (matched plays)", [f"{r['title']} - {r['artist']}" for r in songs],
            [r["plays"] for r in songs], empty=none), "See the match rate above."),
        _figure("Top artists (matched plays)", hbar_chart(
            "Top artists (matched plays)", [r["artist"] for r in artists], [r["plays"] for r in artists],
            empty=none), "See the match rate above."),
        _figure("Top locations", hbar_chart(
            "Top locations", [r["location"] for r in data["top_locations"]],
            [r["plays"] for r in data["top_locations"]], max_label=44, width=620), wide=True),
    ]


def _tables(data: dict[str, Rows]) -> list[str]:
    users = [[str(r["user_id"]), f"{r['first_name'] or ''} {r['last_name'] or ''}".strip(), r["current_level"] or "",
              thousands(r["plays"]), thousands(r["sessions"])] for r in data["top_users"]]
    changes = [[str(r["user_id"]), f"{r['first_name'] or ''} {r['last_name'] or ''}".strip(),
                f"{r['from_level']} → {r['to_level']}", _when(r["first_play_after"])] for r in data["level_changes"]]
    return [
        _table("Top users", ["user", "name", "level now", "plays", "sessions"], users),
        _table("Level changes", ["user", "name", "change", "first play after (UTC)"], changes,
               "Users whose level differs between two consecutive plays."),
    ]


def render(data: dict[str, Rows], source: str, generated: dt.datetime) -> str:
    """The whole page, from the rows of REPORT_QUERIES."""
    figures, note = _key_figures(data["overview"][0])
    cards = _time_charts(data) + _audience_charts(data) + _catalogue_charts(data) + _tables(data)
    return PAGE.format(
        source=escape(source), generated=f"{generated:%Y-%m-%d %H:%M} UTC", figures=figures, note=note,
        cards="\n".join(cards),
    )


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sparkify listening report</title>
<style>
:root {{ --ink: #1f2933; --muted: #616e7c; --line: #d9dee4; --accent: #2f6db5; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0 auto; max-width: 1200px; padding: 24px 28px 40px; color: var(--ink); background: #f5f7fa;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }}
h1 {{ font-size: 24px; margin: 0 0 4px; }}
h2 {{ font-size: 15px; margin: 0 0 8px; }}
header p {{ margin: 0; color: var(--muted); }}
.figures {{ display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 18px 0 12px; }}
.figure {{ background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }}
.figure .label {{ color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }}
.figure .value {{ font-size: 24px; font-weight: 600; }}
.figure .sub {{ color: var(--muted); font-size: 12px; }}
.note {{ background: #fff7e6; border: 1px solid #f0d29a; border-radius: 6px; padding: 10px 12px; margin: 0 0 16px; }}
.grid {{ display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }}
.card {{ background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 0;
        break-inside: avoid; page-break-inside: avoid; }}
.card.wide {{ grid-column: 1 / -1; }}
.card svg {{ display: block; width: 100%; height: auto; }}
.card.wide svg {{ max-width: 760px; }}
figcaption {{ color: var(--muted); font-size: 12px; margin-top: 6px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
th, td {{ text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); }}
th {{ color: var(--muted); font-weight: 600; }}
code {{ font-size: 12px; }}
footer {{ margin-top: 20px; color: var(--muted); font-size: 12px; }}
@media (max-width: 900px) {{
  .figures {{ grid-template-columns: repeat(2, 1fr); }}
  .grid {{ grid-template-columns: 1fr; }}
}}
@media print {{
  @page {{ size: A4; margin: 12mm; }}
  body {{ background: #fff; padding: 0; max-width: none; font-size: 10pt; }}
  .figures {{ grid-template-columns: repeat(5, 1fr); gap: 6px; }}
  .figure, .card, .note {{ border-color: #bbb; }}
  .grid {{ grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; }}
  * {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
}}
</style>
</head>
<body>
<header>
<h1>Sparkify listening report</h1>
<p>Source: {source}. Generated {generated}. All times are UTC.</p>
</header>
<section class="figures">{figures}</section>
<p class="note">{note}</p>
<section class="grid">
{cards}
</section>
<footer>Made by <code>sparkify report</code> from the packaged queries (<code>sparkify query --list</code>).</footer>
</body>
</html>
"""
