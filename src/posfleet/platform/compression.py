"""Compressed answers (docs/adr/0032): brotli when the client accepts it, gzip otherwise, for pages,
JSON and CSV, whole or streamed; ``Vary: Accept-Encoding`` on every answer that could have been
compressed. Static files never get here: WhiteNoise answers them first, from the brotli and gzip copies
collectstatic wrote.

An answer that shows a secret once (a new API token, a TOTP secret, backup codes) is sent as it is:
``keep_uncompressed(response)``. Compression leaks a secret's length-under-guessing (BREACH) only when
the same secret comes back in many answers beside text the attacker chose; one-time secrets differ
each time, but they are a few hundred bytes and we do not need to argue about it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import brotli
from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import patch_vary_headers

# Brotli at quality 5: smaller than gzip's level 6 and no slower (quality 11, what collectstatic uses
# for static files, took 60 times as long on 80 KB of CSS: docs/adr/0032).
BROTLI_QUALITY = 5
MIN_LENGTH = 200  # shorter answers grow or gain nothing
_COMPRESSIBLE_PREFIXES = ("text/",)
_COMPRESSIBLE_TYPES = {"application/json", "application/javascript", "application/xml", "image/svg+xml"}
_MARK = "_posfleet_keep_uncompressed"


def keep_uncompressed(response: HttpResponseBase) -> HttpResponseBase:
    """Send ``response`` uncompressed (it shows a secret once); returns it."""
    setattr(response, _MARK, True)
    return response


def compressible(response: HttpResponseBase) -> bool:
    """Text, JSON, XML or SVG, not already encoded, not marked to keep uncompressed. Archives, PDFs,
    spreadsheets (zip inside) and images are compressed already."""
    if getattr(response, _MARK, False) or response.has_header("Content-Encoding"):
        return False
    media_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return (
        media_type.startswith(_COMPRESSIBLE_PREFIXES)
        or media_type in _COMPRESSIBLE_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


def accepted(header: str) -> set[str]:
    """The codings an ``Accept-Encoding`` header accepts (``q=0`` refuses one)."""
    codings: set[str] = set()
    for item in header.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name and quality > 0:
            codings.add(name.lower())
    return codings


def _brotli_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # Each piece is flushed as it comes, so a long export starts downloading at once.
    compressor = brotli.Compressor(quality=BROTLI_QUALITY)
    for chunk in chunks:
        out = compressor.process(chunk) + compressor.flush()
        if out:
            yield out
    yield compressor.finish()


async def _abrotli_chunks(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    compressor = brotli.Compressor(quality=BROTLI_QUALITY)
    async for chunk in chunks:
        out = compressor.process(chunk) + compressor.flush()
        if out:
            yield out
    yield compressor.finish()


class CompressionMiddleware(GZipMiddleware):
    """Django's GZipMiddleware (with its random padding against BREACH) plus brotli."""

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        if not compressible(response):
            return response
        if not response.streaming and len(response.content) < MIN_LENGTH:
            return response
        codings = accepted(request.META.get("HTTP_ACCEPT_ENCODING", ""))
        if "br" not in codings:
            if "gzip" in codings:
                return super().process_response(request, response)
            patch_vary_headers(response, ("Accept-Encoding",))
            return response
        patch_vary_headers(response, ("Accept-Encoding",))
        if response.streaming:
            if response.is_async:
                response.streaming_content = _abrotli_chunks(response.streaming_content)
            else:
                response.streaming_content = _brotli_chunks(response.streaming_content)
            del response.headers["Content-Length"]
        else:
            compressed = brotli.compress(response.content, quality=BROTLI_QUALITY)
            if len(compressed) >= len(response.content):
                return response
            response.content = compressed
            response.headers["Content-Length"] = str(len(compressed))
        etag = response.get("ETag")
        if etag and etag.startswith('"'):
            response.headers["ETag"] = "W/" + etag  # RFC 9110 8.8.1, as GZipMiddleware does
        response.headers["Content-Encoding"] = "br"
        return response
