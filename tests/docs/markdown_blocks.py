"""Reading the project's Markdown pages: fenced code blocks with their info words, headings as GitHub anchors, and
the relative links of the prose.

A fence's info string is a language and words (```` ```bash example slow ````). GitHub highlights by the first word
and ignores the others; the docs tests read them: `example` runs the block, `slow` puts it in the slow tier, `fresh`
runs it in an empty folder instead of one holding the prepared `demo/` work folder, `checkout` in the repository's
root (for blocks that only read the checkout's files, such as `export/tf_serving/`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); a target may carry a "title" after a space.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
# A code span, which may wrap over lines but not over a blank line (a new paragraph).
INLINE_CODE = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.S)


def pages() -> list[pathlib.Path]:
    """The user-facing pages: README.md, CONTRIBUTING.md and docs/*.md."""
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced code block: its page, the line of its opening fence (1-based), language, info words and code."""

    page: pathlib.Path
    line: int
    language: str
    words: tuple[str, ...]
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def split_page(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, tuple[str, ...], str]]]:
    """`(prose lines, blocks)`: the `(line number, text)` of every line outside code fences, and the
    `(line number, language, words, code)` of every fenced block."""
    prose, blocks = [], []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            prose.append((index + 1, lines[index]))
            index += 1
            continue
        fence, info = match.group(1), match.group(2).split()
        start, body = index, []
        index += 1
        while index < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[index]):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence (or the end of the page: CommonMark closes an open block there)
        language = info[0] if info else ""
        blocks.append((start + 1, language, tuple(info[1:]), "\n".join(body) + "\n"))
    return prose, blocks


def blocks(page: pathlib.Path) -> list[Block]:
    return [
        Block(page, line, language, words, code)
        for line, language, words, code in split_page(page.read_text(encoding="utf-8"))[1]
    ]


def example_blocks(language: str) -> list[Block]:
    """Every block of `pages()` in `language` whose info words include `example`."""
    return [
        block for page in pages() for block in blocks(page) if block.language == language and "example" in block.words
    ]


def heading_text(markdown: str) -> str:
    """The text GitHub renders for a heading's Markdown: code spans keep their content, links and images their
    text, emphasis markers and HTML tags go."""
    parts = []
    for index, piece in enumerate(re.split(r"(`+.+?`+)", markdown)):
        if index % 2:
            parts.append(piece.strip("`").strip())
        else:
            piece = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", piece)
            piece = re.sub(r"<[^>]+>", "", piece)
            parts.append(re.sub(r"\*+|(?<!\w)_+|_+(?!\w)", "", piece))
    return "".join(parts)


def github_slug(text: str) -> str:
    """GitHub's anchor of a heading's rendered text (github-slugger): lower case, every character that is not a
    letter, digit, underscore, hyphen or space dropped, spaces made hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: pathlib.Path) -> set[str]:
    """The `#anchors` of a page's headings; a repeated heading gets `-1`, `-2`... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in split_page(page.read_text(encoding="utf-8"))[0]:
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(heading_text(match.group(2)))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: pathlib.Path) -> list[tuple[int, str]]:
    """`(line, target)` of every link and image in the prose of `page`, also where its text wraps over lines (code
    blocks and code spans excluded)."""
    text = page.read_text(encoding="utf-8")
    numbered = dict(split_page(text)[0])
    prose = "\n".join(numbered.get(number, "") for number in range(1, len(text.splitlines()) + 1))
    prose = INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)
    return [(prose.count("\n", 0, match.start()) + 1, match.group(1)) for match in LINK.finditer(prose)]
