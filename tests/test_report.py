"""The HTML report: self-contained, rendered by a real headless Chromium, each chart on the page.

Chromium is Debian's `chromium` (scripts/install-chromium.sh, run by
scripts/test.sh). Each start gets a fresh profile, and every host name
resolves to nothing, so the page could not fetch anything even if it tried.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from sparkify.svgchart import bar_chart, hbar_chart, line_chart, nice_ticks
from tests.conftest import run_cli

WINDOW = (1280, 2700)
CHARTS = {
    "Plays by hour of day (UTC)", "Plays by day of the week (UTC)", "Daily plays", "Daily active users",
    "Free against paid plays", "Plays per session", "Plays by browser", "Plays by operating system",
    "Top songs (matched plays)", "Top artists (matched plays)", "Top locations",
}
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="session")
def chromium_bin() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail("chromium is not installed: run scripts/install-chromium.sh (scripts/test.sh does)")
    return path


def chromium(binary: str, profile: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run on a local page, with a fresh profile and no network."""
    profile.mkdir(parents=True)
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *args, page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def console_messages(stderr: str) -> list[str]:
    """What the page said on its console (Chromium logs every message as a CONSOLE line)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def png_pixels(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB(A) PNG (what Chromium writes) into a height x width x channels array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows = np.zeros((height + 1, stride), dtype=np.uint8)  # row 0: the zero row before the first
    for y in range(height):
        kind = raw[y * (stride + 1)]
        filtered = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1)
        if kind in (0, 2):  # None and Up need no left neighbour: vectorised
            rows[y + 1] = filtered + (rows[y] if kind == 2 else 0)
            continue
        line, prev = filtered.tolist(), rows[y].tolist()
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows[y + 1] = line
    return rows[1:].reshape(height, width, bpp)


class ChartCollector(HTMLParser):
    """Each <svg> of the DOM with its title and its marks (bars and points)."""

    def __init__(self):
        super().__init__()
        self.charts: list[dict] = []
        self._in_svg = 0
        self._title_next = False

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self._in_svg += 1
            self.charts.append({"title": None, "rect": 0, "circle": 0})
        elif self._in_svg and tag in ("rect", "circle"):
            self.charts[-1][tag] += 1
        elif self._in_svg and tag == "title" and self.charts[-1]["title"] is None:
            self._title_next = True

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg -= 1

    def handle_data(self, data):
        if self._title_next:
            self.charts[-1]["title"] = data
            self._title_next = False


@pytest.fixture(scope="session")
def report(duckdb_star: str, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "sub" / "report.html"
    code, _ = run_cli("report", "--target", duckdb_star, "--out", out)
    assert code == 0
    return out


def test_report_needs_nothing_from_the_network(report: Path):
    html = report.read_text(encoding="utf-8")
    for needle in ("<script", "<link", "<img", "<iframe", " src=", "url(", "@import", "https:"):
        assert needle not in html.lower(), needle
    assert set(re.findall(r"http://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}


def test_report_renders_without_console_errors(report: Path, chromium_bin: str, tmp_path: Path):
    shot = tmp_path / "report.png"
    result = chromium(chromium_bin, tmp_path / "profile", report,
                      f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}")
    assert console_messages(result.stderr) == []
    pixels = png_pixels(shot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    rgb = pixels[:, :, :3]
    blue = int(np.all(rgb == (0x2F, 0x6D, 0xB5), axis=2).sum())
    orange = int(np.all(rgb == (0xD9, 0x71, 0x1C), axis=2).sum())
    assert blue > 50_000, f"only {blue} pixels of the bar colour: the charts did not paint"
    assert orange > 1_000, f"only {orange} pixels of the free/active-users colour"


def test_console_check_catches_a_failing_page(chromium_bin: str, tmp_path: Path):
    """The console scan above would see an error: proven on a page that throws."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notDefined();</script></body></html>", encoding="utf-8")
    result = chromium(chromium_bin, tmp_path / "profile", page, f"--screenshot={tmp_path / 'broken.png'}")
    assert any("notDefined" in line for line in console_messages(result.stderr))


def test_page_shows_each_chart_with_every_row(report: Path, duckdb_results: dict, chromium_bin: str, tmp_path: Path):
    dom = chromium(chromium_bin, tmp_path / "profile", report, "--dump-dom").stdout
    collector = ChartCollector()
    collector.feed(dom)
    charts = {c["title"]: c for c in collector.charts}
    assert len(collector.charts) == len(CHARTS)
    assert set(charts) == CHARTS
    rows = {name: result[1] for name, result in duckdb_results.items()}
    agents = rows["user_agents"]
    expected_bars = {
        "Plays by hour of day (UTC)": 24,
        "Plays by day of the week (UTC)": 7,
        "Free against paid plays": len(rows["plays_by_level"]),
        "Plays per session": len(rows["sessions"]) - 1,  # the 'all' row is the caption
        "Plays by browser": sum(1 for r in agents if r[0] == "browser"),
        "Plays by operating system": sum(1 for r in agents if r[0] == "os"),
        "Top songs (matched plays)": len(rows["top_songs"]),
        "Top artists (matched plays)": len(rows["top_artists"]),
        "Top locations": 10,
    }
    for title, bars in expected_bars.items():
        assert charts[title]["rect"] == bars, title
    days = len(rows["daily_activity"])
    assert days == 30
    assert charts["Daily plays"]["circle"] == charts["Daily active users"]["circle"] == days
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "PLAYS 6,820" in text.upper()
    assert "Match rate: 0.01%" in text and "1 of 6,820 plays" in text


def test_report_prints_on_a_few_pages(report: Path, chromium_bin: str, tmp_path: Path):
    pdf = tmp_path / "report.pdf"
    chromium(chromium_bin, tmp_path / "profile", report, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert 1 <= pages <= 4, pages


def test_report_fails_clearly_without_a_target(tmp_path: Path):
    code, _ = run_cli("report", "--target", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path / "r.html"))
    assert code == 1
    assert not (tmp_path / "r.html").exists()


def test_nice_ticks_cover_the_maximum_with_round_steps():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(1) == [0, 1]
    assert nice_ticks(542) == [0, 200, 400, 600]
    assert nice_ticks(1364) == [0, 500, 1000, 1500]
    assert nice_ticks(34) == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("chart", [bar_chart, hbar_chart, line_chart])
def test_charts_are_valid_svg_with_escaped_labels(chart):
    label = "Tom & Jerry <live> \"quoted\" 'x'"
    root = ET.fromstring(chart("A & B", [label, "b"], [3, 0]))
    assert root.tag == f"{SVG_NS}svg"
    assert root.find(f"{SVG_NS}title").text == "A & B"
    texts = "".join(root.itertext())
    assert label in texts


@pytest.mark.parametrize("chart", [bar_chart, hbar_chart, line_chart])
def test_charts_without_data_say_so(chart):
    root = ET.fromstring(chart("Nothing", [], [], empty="no play matched"))
    assert "no play matched" in "".join(root.itertext())


def test_long_labels_are_cut_but_kept_whole_in_the_tooltip():
    label = "A very long song title that would squeeze the bars to nothing"
    root = ET.fromstring(hbar_chart("Songs", [label], [5], max_label=20))
    shown = [t.text for t in root.iter(f"{SVG_NS}text") if t.text and t.text.startswith("A very")]
    assert shown == [label[:19] + "…"]
    assert any(t.text == label for t in root.iter(f"{SVG_NS}title"))
