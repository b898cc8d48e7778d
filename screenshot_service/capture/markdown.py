"""HTML → Markdown (CommonMark: ATX headings, fenced code, pipe tables) with html-to-markdown.

html-to-markdown (MIT, a Rust core with typed Python bindings, actively released) converts
a long document in milliseconds where markdownify (on BeautifulSoup) took a fifth of a
second: the content must not double a capture's time (README, Performance).  What is
rendered was decided in the page (content.py), so its clean-up presets (which drop
navigation and forms a reader sees) are off.
"""

from __future__ import annotations

import re

from html_to_markdown import ConversionOptions, PreprocessingOptions, convert

_BLANK_RUNS = re.compile(r"\n{3,}")
_OPTIONS = ConversionOptions(heading_style="atx", bullets="-", code_block_style="backticks", compact_tables=True,
                             preprocessing=PreprocessingOptions(enabled=False))


def to_markdown(html: str) -> str:
    markdown = convert(html, _OPTIONS).content or ""
    return _BLANK_RUNS.sub("\n\n", markdown).strip() + "\n"
