"""axe-core, the accessibility checker, run in the browser tests' pages (the `axe` fixture of tests/conftest.py).

axe-core is pinned in tests/browser/package.json and installed by `make test` (npm ci). Its script goes in
through Playwright's evaluate (the DevTools protocol), which the pages' Content-Security-Policy does not
govern: `add_script_tag` is refused by script-src 'self', and the page keeps its real policy (no
bypass_csp), so axe sees the page as staff do.

A check records what it finds and goes on, so one run lists every page's violations; `assert_clean()` at
the end of a test fails with all of them: each rule's id, impact, help and the first few elements."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ipoa.config import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "tests" / "browser"
AXE_JS = PACKAGE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2, levels A and AA (2.2 added AA rules only: target size).
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
TARGETS_SHOWN = 3
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 320, "height": 640}

_RUN = r"""async (tags) => {
  const results = await window.axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map(n => n.target.map(String).join(" ")),
    summary: (v.nodes[0] && v.nodes[0].failureSummary || "").replace(/\s+/g, " ")}));
}"""
_OVERFLOW = """() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth})"""


def axe_source() -> str:
    """The pinned axe-core script. Missing (pytest run without `make test`): fails under CI, as a missing
    chromium does, and skips elsewhere."""
    if AXE_JS.exists():
        return AXE_JS.read_text(encoding="utf-8")
    message = f"axe-core is not installed at {AXE_JS}: `make test` installs it (npm ci in tests/browser)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Violation:
    id: str
    impact: str | None
    help: str
    help_url: str
    targets: list[str]
    summary: str = ""  # axe's "Fix any of the following" for the first element

    def describe(self) -> str:
        shown = ", ".join(self.targets[:TARGETS_SHOWN])
        more = f" (+{len(self.targets) - TARGETS_SHOWN} more)" if len(self.targets) > TARGETS_SHOWN else ""
        fix = f"\n      first: {self.summary}" if self.summary else ""
        return (f"{self.id} [{self.impact}] {self.help}: {len(self.targets)} element(s): {shown}{more} "
                f"({self.help_url}){fix}")


@dataclass
class Finding:
    label: str  # the page and its state, e.g. "handler: log a call, with errors"
    url: str
    viewport: str
    violations: list[Violation] = field(default_factory=list)
    overflow: tuple[int, int] | None = None  # (scrollWidth, innerWidth) when the page scrolls sideways

    def describe(self) -> str:
        lines = [f"{self.label} ({urlsplit(self.url).path} at {self.viewport}):"]
        lines += [f"  - {v.describe()}" for v in self.violations]
        if self.overflow:
            lines.append(f"  - horizontal scrolling: the page is {self.overflow[0]} px wide in a "
                         f"{self.overflow[1]} px window")
        return "\n".join(lines)


class Axe:
    """Checks the page as it is now: axe's WCAG 2.2 A/AA rules, and no horizontal scrolling."""

    def __init__(self, page, source: str):
        self.page = page
        self.source = source
        self.findings: list[Finding] = []
        self.checked: list[tuple[str, str, str]] = []  # (label, url, viewport) of every check

    def check(self, label: str, *, overflow: bool = True) -> Finding:
        page = self.page
        page.wait_for_load_state("load")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(self.source + "\n;void 0")
        size = page.viewport_size or {}
        viewport = f"{size.get('width')}x{size.get('height')}"
        found = [Violation(v["id"], v["impact"], v["help"], v["helpUrl"], v["targets"], v["summary"])
                 for v in page.evaluate(_RUN, list(TAGS))]
        finding = Finding(label, page.url, viewport, found)
        if overflow:
            widths = page.evaluate(_OVERFLOW)
            if widths["scrollWidth"] > widths["innerWidth"]:
                finding.overflow = (widths["scrollWidth"], widths["innerWidth"])
        self.checked.append((label, page.url, viewport))
        if finding.violations or finding.overflow:
            self.findings.append(finding)
        return finding

    def check_at(self, label: str, viewports: list[dict[str, int]]) -> None:
        """The same page at each width (a phone's, say), then back to the desktop's."""
        for size in viewports:
            self.page.set_viewport_size(size)
            self.check(label)
        self.page.set_viewport_size(DESKTOP)

    def report(self) -> str:
        return "\n".join(f.describe() for f in self.findings)

    def assert_clean(self) -> None:
        if self.findings:  # pytest.fail: the report alone, without the findings' repr
            pytest.fail(f"{len(self.findings)} of {len(self.checked)} page checks found problems "
                        f"(axe-core {self.version()}, WCAG 2.2 A/AA; horizontal scrolling):\n{self.report()}")

    def version(self) -> str:
        return str(self.page.evaluate("() => window.axe ? window.axe.version : '?'"))


def endpoint_of(app, url: str) -> str | None:
    """The Flask endpoint that answers a GET of this URL (None: no route, a 404)."""
    from werkzeug.exceptions import HTTPException

    parts = urlsplit(url)
    try:
        endpoint, _ = app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:
        return None
    return endpoint


def html_get_endpoints(app) -> set[str]:
    """Every endpoint a browser may GET as an HTML page: not static files, the API, webhooks, health
    probes, nor CSV, JSON or SVG exports."""
    out = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        name = rule.endpoint
        if name == "static" or name.split(".")[0] in ("api", "webhooks", "health"):
            continue
        if Path(rule.rule).suffix in (".csv", ".json", ".svg"):
            continue
        out.add(name)
    return out


__all__ = ["AXE_JS", "Axe", "DESKTOP", "PHONE", "SMALL_PHONE", "TAGS", "axe_source", "endpoint_of",
           "html_get_endpoints"]
