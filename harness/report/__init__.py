"""Reports of a run folder: one self-contained ``index.html`` that opens offline.

Example::

    from harness.report import render_run

    page = render_run(Path("reports/20250101-120000-sim"))  # -> .../index.html
"""

from __future__ import annotations

from harness.report.html import render_html, render_run

__all__ = ["render_html", "render_run"]
