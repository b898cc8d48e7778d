"""The sheet a PDF is printed on, from the pdf_* options: paper size and margins in inches.

The options are parsed one by one (pdf_parsers.py); what only holds between them (custom
width and height both or neither, margins that leave room to print) is judged here, once,
and reported against the fields concerned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .pdf_parsers import PAPER_FORMATS, PX_PER_INCH, inches

if TYPE_CHECKING:
    from .options import CaptureOptions

SIDES = ("top", "right", "bottom", "left")


@dataclass(frozen=True)
class Sheet:
    width: float  # inches, landscape applied
    height: float
    margins: dict[str, float]  # inches, by side

    def margin_px(self, side: str) -> float:
        return self.margins[side] * PX_PER_INCH

    def print_params(self) -> dict[str, float]:
        """``Page.printToPDF``'s paper and margin parameters."""
        params = {"paperWidth": self.width, "paperHeight": self.height}
        params.update({f"margin{side.title()}": self.margins[side] for side in SIDES})
        return params


def sheet(opts: CaptureOptions) -> Sheet:
    if opts.pdf_width and opts.pdf_height:
        width, height = inches(opts.pdf_width), inches(opts.pdf_height)
    else:
        width, height = PAPER_FORMATS[opts.pdf_paper_format]
    if opts.pdf_landscape:
        width, height = height, width
    margins = {side: inches(getattr(opts, f"pdf_margin_{side}") or opts.pdf_margin) for side in SIDES}
    return Sheet(width, height, margins)


def paper_problems(opts: CaptureOptions) -> dict[str, str]:
    """What the pdf_* options cannot mean together, by field."""
    if opts.format != "pdf":
        return {}
    if bool(opts.pdf_width) != bool(opts.pdf_height):
        why = "pdf_width and pdf_height go together: give both or neither"
        return {"pdf_width": why, "pdf_height": why}
    paper = sheet(opts)
    problems: dict[str, str] = {}
    for across, (first, second), length in (("height", ("top", "bottom"), paper.height),
                                            ("width", ("left", "right"), paper.width)):
        if paper.margins[first] + paper.margins[second] >= length:
            why = (f"the {first} and {second} margins ({_inches(paper.margins[first])} + "
                   f"{_inches(paper.margins[second])}) leave no room on a paper {_inches(length)} in {across}")
            named = [f"pdf_margin_{side}" for side in (first, second) if getattr(opts, f"pdf_margin_{side}")]
            for name in named or ["pdf_margin"]:
                problems[name] = why
    return problems


def _inches(size: float) -> str:
    return f"{size:.3g}in"
