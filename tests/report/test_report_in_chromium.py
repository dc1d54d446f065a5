"""The reports of real runs opened in headless Chromium, offline, at a laptop's width and narrower.

Chromium runs with every network path closed (a proxy that refuses, a resolver that finds
nothing): the page must still render whole. Screenshots must show a page (not a blank one) in
the run's colours; the page must never need a horizontal scroll, whatever is expanded; the inline
script must run (it reveals the copy buttons and opens a check named in the URL).
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.report.conftest import Run
from tests.report.htmltree import parse

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium is not installed (Debian package 'chromium' at /usr/bin/chromium)",
)

OFFLINE = (
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    *OFFLINE,
)
LAPTOP = 1366
#: Measures the page with every check and every piece of evidence expanded.
MEASURE = """<script>
document.querySelectorAll("details").forEach(function (d) { d.open = true; });
document.body.setAttribute("data-layout",
  document.documentElement.scrollWidth + " " + window.innerWidth);
</script>
"""


def _chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(  # noqa: S603 - a fixed local binary with fixed flags
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB pixels of an 8-bit RGB(A), non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert (depth, interlace) == (8, 0)
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        filt, cur = line[0], bytearray(line[1:])
        for i in range(stride if filt else 0):
            a = cur[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if filt == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif filt == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif filt == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(
            bytes(cur if channels == 3 else bytes(v for j, v in enumerate(cur) if j % 4 != 3))
        )
        prev = cur
    return width, height, rows


def _share(rows: list[bytes], colour: str, step: int = 3) -> float:
    """Share of (sampled) pixels within a small distance of ``colour`` (``#rrggbb``)."""
    target = bytes.fromhex(colour.lstrip("#"))
    hits = total = 0
    for row in rows[::step]:
        for x in range(0, len(row), 3 * step):
            total += 1
            if all(abs(row[x + k] - target[k]) <= 24 for k in range(3)):
                hits += 1
    return hits / total


@pytest.mark.parametrize(
    ("name", "colour"),
    [("passing", "#1a7f37"), ("failing", "#cf222e"), ("killed", "#fff8c5")],
    ids=["passing-green", "failing-red", "killed-amber-banner"],
)
def test_screenshot_at_laptop_width_shows_the_page_offline(
    runs: dict[str, Run], tmp_path: Path, name: str, colour: str
) -> None:
    shot = tmp_path / f"{name}.png"
    proc = _chromium(
        tmp_path, runs[name].index.as_uri(), f"--window-size={LAPTOP},900", f"--screenshot={shot}"
    )
    assert shot.exists(), proc.stderr[-2000:]
    assert shot.stat().st_size > 20_000
    width, height, rows = _pixels(shot.read_bytes())
    assert (width, height) == (LAPTOP, 900)
    white = _share(rows, "#ffffff")
    assert white < 0.97, "the screenshot is (nearly) blank"
    assert _share(rows, colour) > 0.0002, f"no {colour} on the {name} report"


def test_charts_are_painted_in_the_failing_report(runs: dict[str, Run], tmp_path: Path) -> None:
    """Failed checks open with their evidence: chart lines are on the screen. The whole page is
    shot at half scale; orange (the palette's second colour, that of the index line) is used by
    nothing but drawings."""
    shot = tmp_path / "charts.png"
    proc = _chromium(
        tmp_path,
        runs["failing"].index.as_uri(),
        f"--window-size={LAPTOP},6000",
        "--force-device-scale-factor=0.5",
        f"--screenshot={shot}",
    )
    assert shot.exists(), proc.stderr[-2000:]
    width, _, rows = _pixels(shot.read_bytes())
    assert width == LAPTOP // 2
    assert _share(rows, "#E69F00", step=1) > 0.00003, "no chart line on the screen"


@pytest.mark.parametrize("width", [LAPTOP, 1024, 800, 500])  # 500: headless Chromium's least
def test_no_horizontal_page_scroll_with_everything_expanded(
    runs: dict[str, Run], tmp_path: Path, width: int
) -> None:
    for name in ("passing", "failing"):
        page = tmp_path / f"{name}-{width}.html"
        page.write_text(runs[name].html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        proc = _chromium(tmp_path, page.as_uri(), f"--window-size={width},900", "--dump-dom")
        match = re.search(r'data-layout="(\d+) (\d+)"', proc.stdout)
        assert match, proc.stderr[-2000:]
        scroll, viewport = int(match[1]), int(match[2])
        assert viewport == width
        assert scroll <= viewport, f"{name} at {width} px scrolls sideways: {scroll} px wide"


def test_the_inline_script_runs_offline(runs: dict[str, Run], tmp_path: Path) -> None:
    run = runs["passing"]
    check_id = run.results[0]["id"]
    proc = _chromium(
        tmp_path, f"{run.index.as_uri()}#check-{check_id}", "--window-size=1366,900", "--dump-dom"
    )
    dom = parse(proc.stdout)
    buttons = dom.find_all("button", cls="copy")
    assert buttons
    assert all("hidden" not in b.attrs for b in buttons)
    assert "open" in dom.by_id(f"check-{check_id}").attrs  # opened from the URL's #check-...
    assert len(dom.find_all("svg", cls="chart")) == len(run.tree.find_all("svg", cls="chart"))
