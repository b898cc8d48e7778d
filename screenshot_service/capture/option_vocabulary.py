"""The words the option table (option_table.py) is written in: formats and other choices, the
places an option is taken, the groups in the API Tester's order, and the messages and conflicts
several options share."""

from __future__ import annotations

from .content_options import CONTENT_FORMATS
from .declaration import BODY, JOB, QUERY, Conflict
from .pdf_parsers import MAX_PAPER_INCHES, MIN_PAPER_INCHES, css_length

IMAGE_FORMATS = ("png", "jpeg", "webp")
FORMATS = (*IMAGE_FORMATS, "pdf", *CONTENT_FORMATS)
# ready: network quiet, fonts loaded, images decoded and layout still (capture/ready.py)
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle0", "networkidle2", "ready")
RESPONSE_TYPES = ("json", "base64", "image")
# Where caller headers go: the target's origin only, or every origin the page loads (third parties see them).
HEADER_SCOPES = ("origin", "all")
MEDIA_TYPES = ("screen", "print")
THUMB_FITS = ("contain", "cover")
HTML_MAX_BYTES = 2 * 1024 * 1024
# A 2 MB document or credentials have no place in a URL; headers and cookies on a public
# link would be sent to the target by anyone holding it.
POST_ONLY = frozenset({BODY, JOB})
NOT_IN_LINKS = frozenset({QUERY, BODY, JOB})

# The groups, in the order the API Tester shows them.
PAGE, VIEWPORT, AREA, OUTPUT = "Page", "Viewport and device", "Capture area", "Output"
THUMBNAIL = "Thumbnail"
WAITING, CONTENT, BLOCKING, EMULATION, CACHE = "Waiting", "Content changes", "Blocking", "Emulation", "Cache"
PDF = "PDF"
ACTIONS = "Actions"
EXTRACT = "Page content"
UPSTREAM = "Upstream proxy"
VISUAL_CHANGE = "Visual change"
GROUPS = (PAGE, VIEWPORT, AREA, OUTPUT, THUMBNAIL, PDF, EXTRACT, WAITING, ACTIONS, CONTENT, BLOCKING, EMULATION,
          CACHE, VISUAL_CHANGE, UPSTREAM)

NOT_FOR_THUMBNAILS = "thumbnails are images: {name} cannot be combined with format={value}"
NOT_IMAGE = ("pdf", *CONTENT_FORMATS)  # formats that are no image: no area, no thumbnail
AREA_OF_IMAGE = "{name} chooses an area of an image: it cannot be combined with format={value}"
PAPER = css_length(MIN_PAPER_INCHES, MAX_PAPER_INCHES)
MARGIN = css_length(0, MAX_PAPER_INCHES / 2)
SINGLE_HEIGHT = "pdf_height and pdf_single_page cannot be combined: a single page is as tall as its content"
SINGLE_RANGES = "pdf_page_ranges and pdf_single_page cannot be combined: a single page has no other pages"


# A pdf_* option named beside another format: refused whatever its value.
PDF_ONLY = (Conflict("format", "{name} only applies to format=pdf, not {value}",
                     values=(*IMAGE_FORMATS, *CONTENT_FORMATS), named=True),)
