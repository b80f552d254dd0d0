"""Open every page of a built book in headless Chromium, as a reader without internet would.

Usage::

    python -m twolayer.companion.browser [HTML_DIR] [--screenshots DIR]
    python -m twolayer.companion.browser --from-references [--screenshots DIR]

The site is served from a local HTTP server; the browser may fetch from that server only
(every other request is aborted and reported). Each page must load without a script error
or a missing file; its formulas must be typeset by MathJax (no raw ``\\(``, ``\\[`` or
``$$`` left in the text, no MathJax error); no cell output may show a traceback or an
error; every image must load; and every link to the site itself must reach an existing
file and, for ``page.html#anchor``, an element with that id. ``--from-references`` first
builds the book from the nbval references (:mod:`twolayer.companion.reference_runs`),
without running a notebook. Screenshots of the scorecard and of the first notebook page
are saved (by default in ``_build/screenshots/``).

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``make browser-deps``),
driven by Playwright's Python package with that executable: Playwright never downloads a
browser here. ``TWOLAYER_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response, Route

CHROMIUM_VARIABLE = "TWOLAYER_CHROMIUM"
"""Environment variable naming the Chromium executable to use instead of Debian's."""
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
"""Where Debian's Chromium is looked for: the binary itself, then launchers on the PATH."""
TYPESET_TIMEOUT_MS = 20_000
"""How long MathJax may take to typeset one page."""
VIEWPORT = {"width": 1280, "height": 1000}

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$\\[A-Za-z]")
"""TeX that MathJax should have replaced: delimiters, environments, ``$\\command``."""
OUTPUT_ERROR = re.compile(r"\bTraceback\b|\b\w*(?:Error|Exception):")
"""An error in a cell's output: a traceback, or an exception's name and its message.

A quantity called error ("Error <= clipped l1", "standard error") is not one.
"""
KNOWN_SCRIPT_ERRORS = {
    "Identifier 'THEBE_JS_URL' has already been declared": (
        "sphinx-thebe 0.3.1 adds its inline configuration script twice under Sphinx 7; "
        "the second copy fails to parse and changes nothing"
    ),
}
"""Script errors of the book's toolchain that a reader cannot notice, and why."""

PAGE_STATE = """
async (timeout) => {
  const typeset = (async () => {
    const mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; return true; }
    return false;
  })();
  const late = new Promise((done) => setTimeout(() => done("late"), timeout));
  const mathjax = await Promise.race([typeset, late]);
  await Promise.all([...document.images].map((img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done);
    img.addEventListener("error", done);
  })));
  const skip = "script, style, template, pre, code, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const text = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest(skip)) { text.push(node.data); }
  }
  return {
    mathjax: mathjax,
    math: document.querySelectorAll(".math").length,
    untypeset: [...document.querySelectorAll(".math")]
      .filter((el) => !el.querySelector("mjx-container")).map((el) => el.textContent.trim()),
    typeset: document.querySelectorAll("mjx-container").length,
    texErrors: [...document.querySelectorAll("mjx-merror")].map((el) => el.textContent),
    text: text.join(" "),
    outputs: [...document.querySelectorAll(".cell_output")].map((el) => el.textContent),
    tracebacks: document.querySelectorAll(".output.traceback, .output.error").length,
    images: [...document.images].map((img) => ({
      src: img.getAttribute("src") || "", loaded: img.complete && img.naturalWidth > 0,
    })),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    wideTables: [...document.querySelectorAll("article table")]
      .filter((table) => table.scrollWidth > table.parentElement.clientWidth + 2)
      .map((table) => ({
        width: table.scrollWidth, room: table.parentElement.clientWidth,
        header: (table.querySelector("tr") || table).textContent.trim().replace(/\\s+/g, " "),
      })),
  };
}
"""
"""Waits for MathJax and the images, then reads what the checks need from the page."""


class BrowserUnavailable(Exception):
    """No Chromium executable or no Playwright package: the site cannot be opened."""


def find_chromium() -> str | None:
    """The Chromium executable to drive: ``$TWOLAYER_CHROMIUM``, else Debian's, else None."""
    named = os.environ.get(CHROMIUM_VARIABLE)
    if named:
        return named if shutil.which(named) else None
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        """Keep the request log off the test output."""


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free local port in a thread; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def site_pages(html_dir: Path) -> list[str]:
    """Every page of a built site, relative to it; Sphinx's ``_static``/``_sources`` excluded."""
    return sorted(
        path.relative_to(html_dir).as_posix()
        for path in html_dir.rglob("*.html")
        if not any(part.startswith("_") for part in path.relative_to(html_dir).parts[:-1])
    )


class _Anchors(HTMLParser):
    """The ``id`` and ``name`` attributes of an HTML page: the targets of ``#anchor`` links."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


_REFRESH = re.compile(
    r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']\d+;\s*url=([^"']+)["']""",
    re.IGNORECASE,
)


def redirect_target(path: Path) -> str | None:
    """Where a page that only redirects (``<meta http-equiv="refresh">``) sends the reader."""
    found = _REFRESH.search(path.read_text(errors="replace"))
    return found.group(1).strip() if found else None


def page_anchors(path: Path) -> frozenset[str]:
    """The anchors a link ``page.html#anchor`` may name on the page at ``path``."""
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def link_problem(
    url: str, base: str, html_dir: Path, anchors: dict[Path, frozenset[str]]
) -> str | None:
    """What is wrong with a link, or None: links off the site are not followed.

    A link into the site must name a file that exists; ``page.html#anchor`` also needs an
    element with that id on the page (an empty fragment is the top of the page).
    ``anchors`` caches :func:`page_anchors` for the pages of one check.
    """
    if not url.startswith(base):
        return None
    parts = urlsplit(url)
    relative = unquote(parts.path)[len(urlsplit(base).path) :]
    if relative == "" or relative.endswith("/"):
        relative += "index.html"
    target = html_dir / relative
    if not target.is_file():
        return f"broken link to {relative}"
    anchor = unquote(parts.fragment)
    if anchor and target.suffix == ".html":
        if target not in anchors:
            anchors[target] = page_anchors(target)
        if anchor not in anchors[target]:
            return f"link to {relative}#{anchor}: no such anchor on that page"
    return None


def state_problems(state: Mapping[str, Any]) -> list[str]:
    """What a reader would see broken, from :data:`PAGE_STATE`'s reading of a page."""
    problems = []
    if state["mathjax"] == "late":
        problems.append(f"MathJax did not finish typesetting in {TYPESET_TIMEOUT_MS / 1000:.0f} s")
    elif state["math"] and not state["mathjax"]:
        problems.append(f"{state['math']} formulas but MathJax did not load")
    problems += [f"formula not typeset: {tex[:80]}" for tex in state["untypeset"]]
    problems += [f"MathJax error: {message[:80]}" for message in state["texErrors"]]
    for match in sorted({match.group(0) for match in RAW_TEX.finditer(state["text"])}):
        at = state["text"].find(match)
        problems.append(f"raw TeX {match!r} in the text: ...{state['text'][at - 40 : at + 40]}...")
    if state["tracebacks"]:
        problems.append(f"{state['tracebacks']} cell outputs show an error")
    for output in state["outputs"]:
        found = OUTPUT_ERROR.search(output)
        if found:
            at = found.start()
            problems.append(f"a cell output shows {found.group(0)!r}: {output[at : at + 80]!r}")
    problems += [
        f"image not loaded: {image['src']}" for image in state["images"] if not image["loaded"]
    ]
    problems += [
        f"table wider than the text ({table['width']} px in {table['room']} px, at "
        f"{VIEWPORT['width']} px): {table['header'][:60]}"
        for table in state.get("wideTables", [])
    ]
    return problems


@dataclass
class PageReport:
    """One page as the browser saw it."""

    page: str
    problems: list[str] = field(default_factory=list)
    formulas: int = 0
    images: int = 0
    links: int = 0


@dataclass
class SiteReport:
    """Every page of a site as the browser saw it, and the screenshots taken."""

    pages: list[PageReport]
    screenshots: list[Path]

    @property
    def problems(self) -> list[str]:
        """``'<page>: <problem>'`` for every problem of every page."""
        return [f"{page.page}: {problem}" for page in self.pages for problem in page.problems]

    def summary(self) -> str:
        """One line: pages, formulas, images and links checked, and problems found."""
        count = {
            name: sum(getattr(page, name) for page in self.pages)
            for name in ("formulas", "images", "links")
        }
        return (
            f"{len(self.pages)} pages opened in Chromium: {count['formulas']} formulas typeset, "
            f"{count['images']} images, {count['links']} links to the site checked, "
            f"{len(self.problems)} problems"
        )


def _visit(
    browser: Browser,
    base: str,
    html_dir: Path,
    page_path: str,
    screenshot: Path | None,
    anchors: dict[Path, frozenset[str]],
) -> PageReport:
    """Open one page with requests off the site aborted; check it; screenshot it if asked."""
    report = PageReport(page_path)
    page: Page = browser.new_page(viewport=VIEWPORT)

    def only_local(route: Route, request: Request) -> None:
        if request.url.startswith(base) or request.url.startswith("data:"):
            route.continue_()
        else:
            report.problems.append(f"request off the site blocked: {request.url}")
            route.abort()

    def failed(response: Response) -> None:
        if response.status >= 400:
            report.problems.append(f"HTTP {response.status} for {response.url[len(base) :]}")

    redirect = redirect_target(html_dir / page_path)
    if redirect is not None:  # index.html: the browser would leave before it can be read
        problem = link_problem(urljoin(base + page_path, redirect), base, html_dir, anchors)
        report.problems += [problem] if problem else []
        report.links = 1
        page.close()
        return report

    def script_error(error: Exception) -> None:
        if str(error) not in KNOWN_SCRIPT_ERRORS:
            report.problems.append(f"script error: {error}")

    page.route("**/*", only_local)
    page.on("response", failed)
    page.on("pageerror", script_error)
    try:
        response = page.goto(base + page_path, wait_until="load")
        if response is None or not response.ok:
            report.problems.append("the page did not load")
            return report
        state = page.evaluate(PAGE_STATE, TYPESET_TIMEOUT_MS)
        report.problems += state_problems(state)
        links = set(state["links"])
        report.problems += sorted(
            {problem for url in links if (problem := link_problem(url, base, html_dir, anchors))}
        )
        report.formulas, report.images = state["typeset"], len(state["images"])
        report.links = sum(url.startswith(base) for url in links)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
    finally:
        page.close()
    return report


def check_site(
    html_dir: Path, screenshots: Mapping[str, Path] | None = None, chromium: str | None = None
) -> SiteReport:
    """Open every page of the site in ``html_dir`` in headless Chromium and check it.

    ``screenshots`` maps a page (``scorecard.html``) to the PNG file to save it as.
    Raises :class:`BrowserUnavailable` when Chromium or Playwright is missing.
    """
    executable = chromium or find_chromium()
    if executable is None:
        raise BrowserUnavailable(
            "no Chromium found (looked for $TWOLAYER_CHROMIUM, "
            f"{', '.join(CHROMIUM_CANDIDATES)}); install it with: make browser-deps"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise BrowserUnavailable(
            "the playwright package is missing; install the test extra: "
            'pip install -c constraints.txt -e ".[test]"'
        ) from error
    html_dir = html_dir.resolve()
    shots = dict(screenshots or {})
    with serve(html_dir) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            # Belt and braces with the request filter: no name resolves but the server's.
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
        )
        anchors: dict[Path, frozenset[str]] = {}
        try:
            pages = [
                _visit(browser, base, html_dir, page, shots.get(page), anchors)
                for page in site_pages(html_dir)
            ]
        finally:
            browser.close()
    taken = [path for path in shots.values() if path.is_file()]
    return SiteReport(pages, taken)


def default_screenshots(html_dir: Path, directory: Path) -> dict[str, Path]:
    """The scorecard and the first notebook page of the table of contents, as PNG files."""
    from twolayer.companion.book import toc_notebooks

    shots = {"scorecard.html": directory / "scorecard.png"}
    toc = html_dir.parent / "book-src" / "_toc.yml"
    names = toc_notebooks(toc) if toc.is_file() else []
    if names:
        shots[f"notebooks/{names[0]}.html"] = directory / f"{names[0]}.png"
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twolayer.companion.browser``; returns the exit status."""
    from twolayer.companion.paths import repo_root

    root = repo_root()
    parser = argparse.ArgumentParser(
        prog="python -m twolayer.companion.browser", description=__doc__.split("\n")[0]
    )
    parser.add_argument("html", type=Path, nargs="?", default=root / "_build" / "html")
    parser.add_argument(
        "--from-references",
        action="store_true",
        help="build the book from tests/references into _build/browser first",
    )
    parser.add_argument("--screenshots", type=Path, default=root / "_build" / "screenshots")
    args = parser.parse_args(argv)
    html = args.html
    if args.from_references:
        from twolayer.companion.reference_runs import build_reference_book

        html = build_reference_book(root / "_build" / "browser").parent
    try:
        report = check_site(html, default_screenshots(html, args.screenshots))
    except BrowserUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(problem)
    print(report.summary())
    for path in report.screenshots:
        print(f"screenshot: {path}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
