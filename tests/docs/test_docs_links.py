"""Every relative link and `#anchor` of README.md, CONTRIBUTING.md and docs/*.md leads somewhere, by GitHub's anchor
rules; the pages cite no document the repository does not hold."""

import pathlib
import urllib.parse

import pytest
from markdown_blocks import ROOT, anchors, github_slug, heading_text, links, pages, split_page

# Background notes kept outside the repository, which no page or code may cite (spelt in two parts so that this
# file does not cite them either).
GHOST_DOCUMENTS = ("HACNN" + ".md", "TF-ECOSYSTEM" + ".md")


@pytest.mark.parametrize(
    ("markdown", "anchor"),
    [
        # Anchors GitHub gives these headings (checked on rendered github.com pages).
        ("What survives a crash, what is refused", "what-survives-a-crash-what-is-refused"),
        ("Performance (`make bench`)", "performance-make-bench"),
        ("ONNX, OpenVINO and mixed precision", "onnx-openvino-and-mixed-precision"),
        (
            "Figures (`hacnn_tf.visualization`, `hacnn-tf visualize`)",
            "figures-hacnn_tfvisualization-hacnn-tf-visualize",
        ),
        (
            "`align_corners`: which torchreid checkpoints need what",
            "align_corners-which-torchreid-checkpoints-need-what",
        ),
        ("**Bold** and [a link](x.md) in `__init__`", "bold-and-a-link-in-__init__"),
        ("TF Serving — files and flags", "tf-serving--files-and-flags"),
    ],
)
def test_github_slug(markdown, anchor):
    assert github_slug(heading_text(markdown)) == anchor


def test_repeated_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Usage\n\n```bash\n# not a heading\n```\n\n## Usage\n\n### Usage\n")
    assert anchors(page) == {"usage", "usage-1", "usage-2"}


def test_links_skip_code_and_follow_wrapped_text(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "See [the\ntraining page](docs/training.md#resume) and `[not](a-link.md)`.\n\n"
        "```bash\necho [no](link.md)\n```\n![figure](docs/figures/cmc.png)\n"
    )
    assert links(page) == [(1, "docs/training.md#resume"), (7, "docs/figures/cmc.png")]


def broken_links(page: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    """`"line: target (why)"` for each relative link of `page` whose file is missing or outside `root`, or whose
    `#anchor` names no heading of its page."""
    broken = []
    for line, target in links(page):
        if urllib.parse.urlparse(target).scheme in ("http", "https", "mailto"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / urllib.parse.unquote(path)).resolve() if path else page.resolve()
        if not resolved.exists():
            broken.append(f"{line}: {target} (no such file)")
        elif not resolved.is_relative_to(root.resolve()):
            broken.append(f"{line}: {target} (outside the repository)")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            broken.append(f"{line}: {target} (no heading with this anchor)")
    return broken


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "other.md").write_text("## Other `page`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[a](#title) [b](#nothing) [c](no-such-file.md) [d](other.md#other-page)\n"
        "[e](other.md#title) [f](../outside.md) [g](https://example.com/#x)\n"
    )
    (tmp_path.parent / "outside.md").write_text("# Outside\n")
    assert broken_links(page, tmp_path) == [
        "3: #nothing (no heading with this anchor)",
        "3: no-such-file.md (no such file)",
        "4: other.md#title (no heading with this anchor)",
        "4: ../outside.md (outside the repository)",
    ]


def test_no_page_cites_a_document_the_repository_does_not_hold():
    """The two background notes outside the repository (`GHOST_DOCUMENTS`); what the pages need from them is
    in docs/architecture.md and docs/parity.md."""
    cited = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in pages()
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if any(ghost in line for ghost in GHOST_DOCUMENTS)
    ]
    assert cited == []


def code_files() -> list[pathlib.Path]:
    """The repository's Python sources, the Makefile and the Dockerfile (this test file names the ghosts itself)."""
    files = [
        f
        for folder in ("hacnn_tf", "benchmarks", "training", "export", "tests")
        for f in sorted((ROOT / folder).rglob("*.py"))
    ]
    return [f for f in files + [ROOT / "Makefile", ROOT / "Dockerfile"] if f != pathlib.Path(__file__).resolve()]


def test_no_code_cites_a_document_the_repository_does_not_hold():
    cited = [
        f"{f.relative_to(ROOT)}:{number}"
        for f in code_files()
        for number, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if any(ghost in line for ghost in GHOST_DOCUMENTS)
    ]
    assert cited == []


def test_docs_anchors_cited_in_code_exist():
    """`docs/PAGE.md#anchor` in a docstring or comment names a heading of that page."""
    import re

    cited = {
        (m.group(1), m.group(2), f"{f.relative_to(ROOT)}:{n}")
        for f in code_files()
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        for m in re.finditer(r"(docs/[\w-]+\.md)#([\w-]+)", line)
    }
    assert len(cited) >= 5
    missing = [
        where + ": " + page + "#" + anchor
        for page, anchor, where in sorted(cited)
        if not (ROOT / page).exists() or anchor not in anchors(ROOT / page)
    ]
    assert missing == []


def test_every_page_is_reachable_from_the_readme():
    """Each docs page is one click from README.md."""
    readme = {
        (ROOT / target.partition("#")[0]).resolve()
        for _, target in links(ROOT / "README.md")
        if target.partition("#")[0]
    }
    assert [page.name for page in pages()[2:] if page.resolve() not in readme] == []


def test_blocks_are_closed():
    """An unclosed fence swallows the rest of a page (and its links) into one code block."""
    for page in pages():
        text = page.read_text(encoding="utf-8")
        fences = sum(1 for line in text.splitlines() if line.lstrip().startswith(("```", "~~~")))
        assert fences % 2 == 0, page
        assert split_page(text)[1] or page.name != "README.md"
