"""The Python client of screenshot_service (its README, "Python client"; SPEC §3).

Its own distribution, ``screenshot-service-client``, depending on aiohttp alone, so an
application that talks to the service never inherits the server's dependency pins.
The server imports its signed-link canonicalisation from :mod:`screenshot_client.signing`.
"""

from .blocking import BlockingScreenshotClient
from .client import ScreenshotClient
from .errors import ScreenshotError
from .signing import canonical_query, sign, signed_url

__version__ = "0.1.0"

__all__ = [
    "BlockingScreenshotClient",
    "ScreenshotClient",
    "ScreenshotError",
    "__version__",
    "canonical_query",
    "sign",
    "signed_url",
]
