"""HTML → Markdown (CommonMark: ATX headings, fenced code, pipe tables) with markdownify.

markdownify (MIT, on BeautifulSoup) is kept up, typed, and lets each tag's conversion be
tuned; what is rendered and what is not was decided in the page (content.py), so this sees
only what a reader sees.
"""

from __future__ import annotations

import re

from bs4 import Tag
from markdownify import ATX, MarkdownConverter

_BLANK_RUNS = re.compile(r"\n{3,}")
_LANGUAGE = re.compile(r"(?:^|\s)(?:language|lang)-([\w+#.-]+)")


def _language(pre: Tag) -> str | None:
    """A code block's language from ``class="language-x"`` on the ``pre`` or its ``code``."""
    for el in (pre, pre.find("code")):
        if isinstance(el, Tag):
            found = _LANGUAGE.search(" ".join(el.get_attribute_list("class") or []))
            if found:
                return found.group(1)
    return None


_CONVERTER = MarkdownConverter(heading_style=ATX, bullets="-", code_language_callback=_language,
                               escape_underscores=False, escape_misc=False)


def to_markdown(html: str) -> str:
    markdown = _CONVERTER.convert(html)
    return _BLANK_RUNS.sub("\n\n", markdown).strip() + "\n"
