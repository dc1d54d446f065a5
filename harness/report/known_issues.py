"""Documented deviations for Allure: ``known-issues.json`` and a category in ``categories.json``.

A check the venue's documented rule explains (status ``deviation``, see :mod:`harness.deviations`)
is, in Allure's terms, a known issue: failing against the reference, explained by a documented
source. :func:`write_allure_known_issues` exports a run's deviations into its ``allure-results/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.results import CheckResult, Status, load_results

__all__ = [
    "ALLURE_CATEGORIES_FILE",
    "ALLURE_KNOWN_ISSUES_FILE",
    "DEVIATION_CATEGORY",
    "write_allure_known_issues",
]

_ID = re.compile(r"^[A-Z]{3,5}-\d{3}$")
_URL = re.compile(r"https?://[^\s;,]+")

ALLURE_DIR = "allure-results"
ALLURE_CATEGORIES_FILE = "categories.json"
ALLURE_KNOWN_ISSUES_FILE = "known-issues.json"

DEVIATION_CATEGORY: dict[str, Any] = {
    "name": "Documented deviations (judged by the venue's own rule)",
    "messageRegex": r"(?s).*documented deviation.*",
    "matchedStatuses": ["passed", "failed", "broken"],
}


def write_allure_known_issues(run_dir: Path) -> list[Path]:
    """Export the run's documented deviations for Allure, into ``run_dir/allure-results/``.

    Writes ``known-issues.json`` (Allure 3's known-issues file: ``historyId``, the rule's
    source as an ``issue`` link, the rule as comment, the deviation as error message; point
    ``knownIssuesPath`` in ``allurerc`` at it) and merges a "Documented deviations" category into
    ``categories.json`` (Allure 2). ``historyId`` is read from the allure-pytest result of the
    same check. Does nothing (returns ``[]``) when the run has no ``allure-results`` folder.
    """
    target = run_dir / ALLURE_DIR
    if not target.is_dir():
        return []
    history = _allure_history_ids(target)
    issues = []
    for result in load_results(run_dir):
        if result.status is not Status.DEVIATION:
            continue
        history_id = history.get(result.id) or history.get(_function(result.nodeid))
        if history_id is None:
            continue
        issues.append(_known_issue(result, history_id))
    known = target / ALLURE_KNOWN_ISSUES_FILE
    known.write_text(json.dumps(issues, indent=2) + "\n", encoding="utf-8")
    categories_path = target / ALLURE_CATEGORIES_FILE
    categories = _read_json_list(categories_path)
    if not any(c.get("name") == DEVIATION_CATEGORY["name"] for c in categories):
        categories.insert(0, DEVIATION_CATEGORY)
    categories_path.write_text(json.dumps(categories, indent=2) + "\n", encoding="utf-8")
    return [known, categories_path]


def _known_issue(result: CheckResult, history_id: str) -> dict[str, Any]:
    links = []
    for record in result.known_deviations:
        source = record.get("source", "")
        link: dict[str, str] = {"type": "issue", "name": f"{result.id}: documented rule"}
        url = _URL.search(source)
        if url is not None:
            link["url"] = url.group(0)
        else:
            link["name"] = f"{result.id}: {source}"
        links.append(link)
    return {
        "historyId": history_id,
        "issues": links,
        "comment": result.deviation_note,
        "error": {"message": result.message},
    }


def _allure_history_ids(folder: Path) -> dict[str, str]:
    """check ID (or test function name) -> historyId, from allure-pytest's result files."""
    out: dict[str, str] = {}
    for path in sorted(folder.glob("*-result.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        history_id = data.get("historyId")
        if not isinstance(history_id, str):
            continue
        for label in data.get("labels", []):
            value = label.get("value") if isinstance(label, Mapping) else None
            if isinstance(value, str) and _ID.match(value):
                out.setdefault(value, history_id)
        full_name = data.get("fullName")
        if isinstance(full_name, str):
            out.setdefault(full_name.rsplit("#", 1)[-1].rsplit(".", 1)[-1], history_id)
    return out


def _function(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
