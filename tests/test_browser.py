"""The built book opened in headless Chromium, with no network but the local server.

The tests marked ``browser`` need Debian's Chromium (``make browser-deps``). Without it
they are skipped, unless ``TWOLAYER_REQUIRE_BROWSER=1`` (CI sets it), which makes a
missing browser a failure. Deselect them with ``pytest -m "not browser"``.
"""

import base64
import os
import time
from pathlib import Path

import pytest

from twolayer.companion.book import toc_notebooks
from twolayer.companion.browser import (
    BrowserUnavailable,
    check_site,
    default_screenshots,
    find_chromium,
    link_problem,
    redirect_target,
    site_pages,
    state_problems,
)
from twolayer.companion.paths import repo_root

SCREENSHOTS = repo_root() / "_build" / "screenshots"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium; skip (or fail, where TWOLAYER_REQUIRE_BROWSER=1) without it."""
    found = find_chromium()
    if found is None:
        message = "no Chromium to open the book in: run `make browser-deps` (apt-get)"
        if os.environ.get("TWOLAYER_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_site(root: Path) -> Path:
    """A page with every fault the check looks for, and a clean page beside it."""
    (root / "_images").mkdir(parents=True)
    (root / "_images" / "dot.png").write_bytes(PNG)
    write(
        root / "clean.html",
        """<html><body><h1 id="here">Clean</h1><p>No formula, no fault.</p>
        <img src="_images/dot.png"><a href="#here">top</a><a href="broken.html#faults">next</a>
        <a href="https://arxiv.org/abs/1810.02054">a paper, not followed</a>
        <div class="cell_output"><pre>standard error 0.01; Error &lt;= l1 holds</pre></div>
        </body></html>""",
    )
    write(
        root / "broken.html",
        r"""<html><body><h1 id="faults">Faults</h1>
        <p>The rate \(\rho &lt; 1\) was never typeset, nor $$\lambda_0$$.</p>
        <img src="_images/missing.png"><img src="https://images.example/figure.png">
        <a href="nowhere.html">gone</a><a href="clean.html#not-there">no anchor</a>
        <a href="clean.html#here">fine</a>
        <div class="cell_output"><pre>Traceback (most recent call last):
        ValueError: width must be positive</pre></div>
        <article><table style="width: 3000px"><tr><th>a very wide table</th></tr></table></article>
        <script>notDefinedAnywhere();</script>
        </body></html>""",
    )
    write(root / "index.html", '<meta http-equiv="Refresh" content="0; url=gone.html" />')
    write(root / "_static" / "template.html", "<p>not a page</p>")
    return root


def test_the_pages_of_a_site_and_its_redirect(tmp_path):
    site = fake_site(tmp_path)
    assert site_pages(site) == ["broken.html", "clean.html", "index.html"]
    assert redirect_target(site / "index.html") == "gone.html"
    assert redirect_target(site / "clean.html") is None


def test_links_into_the_site_must_reach_a_file_and_an_anchor(tmp_path):
    site, base, anchors = fake_site(tmp_path), "http://127.0.0.1:8000/", {}
    assert link_problem(base + "clean.html#here", base, site, anchors) is None
    assert link_problem(base + "clean.html#", base, site, anchors) is None
    assert link_problem(base + "_images/dot.png", base, site, anchors) is None
    assert link_problem("https://arxiv.org/abs/1810.02054", base, site, anchors) is None
    assert link_problem(base + "nowhere.html", base, site, anchors) == (
        "broken link to nowhere.html"
    )
    assert "no such anchor" in link_problem(base + "clean.html#gone", base, site, anchors)
    assert link_problem(base, base, site, anchors) is None  # index.html


def test_what_a_page_state_reports():
    clean = {
        "mathjax": True,
        "math": 2,
        "untypeset": [],
        "typeset": 2,
        "texErrors": [],
        "text": "A rate below one, in $ per year",
        "outputs": ["standard error 0.01", "Error <= l1"],
        "tracebacks": 0,
        "images": [{"src": "a.png", "loaded": True}],
        "links": [],
    }
    assert state_problems(clean) == []
    broken = {
        **clean,
        "mathjax": False,
        "untypeset": [r"\(x\)"],
        "texErrors": ["Undefined control sequence \\rhoo"],
        "text": r"the rate \(\rho\) and $$x$$ and $\lambda$",
        "outputs": ["ValueError: no"],
        "tracebacks": 1,
        "images": [{"src": "b.png", "loaded": False}],
        "wideTables": [{"width": 900, "room": 700, "header": "paper result status"}],
    }
    problems = "\n".join(state_problems(broken))
    for expected in (
        "2 formulas but MathJax did not load",
        "formula not typeset",
        "MathJax error",
        r"raw TeX '\\('",
        "raw TeX '$$'",
        r"raw TeX '$\\l'",
        "1 cell outputs show an error",
        "'ValueError:'",
        "image not loaded: b.png",
        "table wider than the text (900 px in 700 px, at 1280 px): paper result status",
    ):
        assert expected in problems, expected
    assert "MathJax did not finish" in state_problems({**clean, "mathjax": "late"})[0]


@pytest.mark.browser
def test_the_browser_finds_every_fault_of_a_broken_page(tmp_path, chromium):
    site = fake_site(tmp_path / "site")
    shot = tmp_path / "shots" / "broken.png"
    report = check_site(site, {"broken.html": shot}, chromium=chromium)
    pages = {page.page: page for page in report.pages}
    assert pages["clean.html"].problems == []
    assert pages["clean.html"].images == 1 and pages["clean.html"].links == 2
    assert pages["index.html"].problems == ["broken link to gone.html"]
    broken = "\n".join(pages["broken.html"].problems)
    for expected in (
        r"raw TeX '\\('",
        "raw TeX '$$'",
        "image not loaded: _images/missing.png",
        "image not loaded: https://images.example/figure.png",
        "request off the site blocked: https://images.example/figure.png",
        "HTTP 404 for _images/missing.png",
        "broken link to nowhere.html",
        "link to clean.html#not-there: no such anchor",
        "a cell output shows 'Traceback'",
        "script error: notDefinedAnywhere is not defined",
        "table wider than the text (3000 px in ",
    ):
        assert expected in broken, f"{expected!r} not in:\n{broken}"
    assert "clean.html#here" not in broken
    assert report.screenshots == [shot] and shot.stat().st_size > 1000


def test_a_missing_browser_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert find_chromium() is None
    with pytest.raises(BrowserUnavailable, match="make browser-deps"):
        check_site(fake_site(tmp_path))


@pytest.mark.browser
def test_every_page_of_the_smoke_book_reads_in_chromium(smoke_book, chromium, capsys):
    """The real book at the smoke profile (figures included), opened page by page."""
    start = time.perf_counter()
    html = smoke_book
    report = check_site(html, default_screenshots(html, SCREENSHOTS), chromium=chromium)
    with capsys.disabled():
        print(
            f"\nbrowser test: {report.summary()} in {time.perf_counter() - start:.0f} s; "
            "screenshots: " + ", ".join(str(path) for path in report.screenshots)
        )
    assert report.problems == []
    names = toc_notebooks(repo_root() / "book" / "_toc.yml")
    opened = {page.page for page in report.pages}
    assert {"scorecard.html", "intro.html"} | {f"notebooks/{name}.html" for name in names} <= (
        opened
    )
    pages = {page.page: page for page in report.pages}
    assert all(pages[f"notebooks/{name}.html"].formulas > 0 for name in names)
    assert all(pages[f"notebooks/{name}.html"].images > 0 for name in names)  # the figures
    assert pages["scorecard.html"].links > len(names)  # a link to every notebook, at least
    assert [path.name for path in report.screenshots] == ["scorecard.png", f"{names[0]}.png"]


def test_ci_installs_the_browser_and_requires_it():
    ci = (repo_root() / ".ci" / "run").read_text()
    assert ci.index("make browser-deps") < ci.index("TWOLAYER_REQUIRE_BROWSER=1 make test")
