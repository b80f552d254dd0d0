"""What the built site offers a reader: offline pages, downloads and launch buttons."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from twolayer.companion.book import (
    LAUNCH_SERVICES,
    BookError,
    css_external_urls,
    download_note,
    external_resources,
    launch_config,
    source_notebook,
    stage,
    with_download_note,
)
from twolayer.companion.paths import repo_root

CONFIG = yaml.safe_load((repo_root() / "book" / "_config.yml").read_text())


def with_repository(url: str) -> dict:
    return {**CONFIG, "repository": {**CONFIG["repository"], "url": url}}


def test_no_launch_buttons_without_a_repository_url():
    assert CONFIG["repository"]["url"] == ""
    config = launch_config(CONFIG)
    assert all(config["launch_buttons"][service] == "" for service in LAUNCH_SERVICES)
    assert config["repository"]["url"] == ""
    assert config["html"]["use_repository_button"] is False


def test_a_github_url_turns_on_binder_and_colab():
    config = launch_config(with_repository("https://github.com/someone/twolayer/"))
    launch = config["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["jupyterhub_url"] == ""  # no hub named in book/_config.yml
    assert config["repository"] == {
        "url": "https://github.com/someone/twolayer",
        "branch": "main",
        "path_to_book": "",
    }
    assert config["html"]["use_repository_button"] is True
    assert CONFIG["launch_buttons"]["binderhub_url"]  # the input is left alone


def test_a_named_hub_gets_its_button_and_gitlab_gets_no_colab():
    hub = with_repository("https://gitlab.com/someone/twolayer")
    hub["launch_buttons"] = {**CONFIG["launch_buttons"], "jupyterhub_url": "https://hub.example"}
    launch = launch_config(hub)["launch_buttons"]
    assert launch["jupyterhub_url"] == "https://hub.example"
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == ""


@pytest.mark.parametrize(
    "url",
    ["https://example.org/someone/twolayer", "https://github.com/someone", "git@github.com:a/b"],
)
def test_a_repository_url_the_buttons_cannot_use_is_refused(url):
    with pytest.raises(BookError, match="not a GitHub or GitLab repository"):
        launch_config(with_repository(url))


def executed_notebook() -> nbformat.NotebookNode:
    parameters = nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell(
        "seed = 3", metadata={"tags": ["injected-parameters"], "papermill": {"duration": 0.1}}
    )
    work = nbformat.v4.new_code_cell("print(seed)", execution_count=3)
    work.outputs = [nbformat.v4.new_output("stream", name="stdout", text="3\n")]
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# A title\n\nThe claim."),
            parameters,
            injected,
            work,
        ],
        metadata={
            "papermill": {"parameters": {"seed": 3}},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
        },
    )


def test_the_source_copy_has_no_outputs_and_no_injected_parameters():
    executed = executed_notebook()
    source = source_notebook(executed)
    assert [cell.source for cell in source.cells] == [
        "# A title\n\nThe claim.",
        "seed = 0",
        "print(seed)",
    ]
    assert source.cells[2].outputs == [] and source.cells[2].execution_count is None
    assert "papermill" not in source.metadata and "kernelspec" in source.metadata
    assert executed.cells[3].outputs  # the executed notebook is left alone
    nbformat.validate(source)


def test_the_download_note_follows_the_title():
    noted = with_download_note(executed_notebook(), "du2019-figure1", "smoke")
    assert noted.cells[1].cell_type == "markdown"
    assert noted.cells[1].source == download_note("du2019-figure1", "smoke")
    assert "[as run here](path:du2019-figure1.ipynb)" in noted.cells[1].source
    assert "(path:source/du2019-figure1.ipynb)" in noted.cells[1].source
    assert "smoke profile" in noted.cells[1].source
    nbformat.validate(noted)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_external_resources_of_a_site(tmp_path):
    write(
        tmp_path / "index.html",
        """<html><head>
        <script src="_static/local.js"></script>
        <script defer src="https://cdn.example/mathjax.js"></script>
        <link rel="stylesheet" href="//fonts.example/css">
        <link rel="canonical" href="https://book.example/index.html">
        <style>@import "https://fonts.example/inline.css";</style>
        </head><body>
        <a href="https://arxiv.org/abs/1810.02054">a paper</a>
        <img src="_images/figure.png"><img src="http://images.example/x.png">
        <div style="background: url('https://images.example/bg.png')"></div>
        </body></html>""",
    )
    write(
        tmp_path / "_static" / "theme.css",
        """@font-face { src: url(../fonts/a.woff2) format("woff2"); }
        .icon { background: url("data:image/svg+xml,%3csvg xmlns='http://www.w3.org/2000/svg'"); }
        @import url(https://fonts.example/remote.css);""",
    )
    write(tmp_path / "_static" / "script.js", 'const url = "https://not-scanned.example";')
    assert external_resources(tmp_path) == [
        "_static/theme.css: https://fonts.example/remote.css",
        "index.html: https://cdn.example/mathjax.js",
        "index.html: //fonts.example/css",
        "index.html: https://fonts.example/inline.css",
        "index.html: http://images.example/x.png",
        "index.html: https://images.example/bg.png",
    ]


def test_a_site_with_only_local_resources_is_clean(tmp_path):
    write(tmp_path / "page.html", '<script src="_static/mathjax/tex-chtml.js"></script>')
    write(tmp_path / "_static" / "a.css", "body { background: url(img/a.png); }")
    assert external_resources(tmp_path) == []
    assert css_external_urls("@import 'local.css'; a { b: url( 'https://x.example/y' ) }") == [
        "https://x.example/y"
    ]


def test_the_staged_configuration_carries_the_launch_buttons(tmp_path):
    """Stage a book without chapters; jupyter-book's Sphinx configuration gets the buttons."""
    book = tmp_path / "book"
    shutil.copytree(repo_root() / "book", book)
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    built = {}
    for url in ("", "https://github.com/someone/twolayer"):
        config = yaml.safe_load((book / "_config.yml").read_text())
        config["repository"]["url"] = url
        (book / "_config.yml").write_text(yaml.safe_dump(config))
        source = stage(book, tmp_path / "results", tmp_path / "_build", "smoke")
        configure = [str(Path(sys.executable).parent / "jupyter-book"), "config", "sphinx"]
        subprocess.run([*configure, str(source)], check=True, capture_output=True)
        built[url] = (source / "conf.py").read_text()
    assert "'binderhub_url': ''" in built[""] and "'colab_url': ''" in built[""]
    github = built["https://github.com/someone/twolayer"]
    assert "'binderhub_url': 'https://mybinder.org'" in github
    assert "'colab_url': 'https://colab.research.google.com'" in github
    assert "'repository_url': 'https://github.com/someone/twolayer'" in github
