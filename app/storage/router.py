"""`GET /v1/media/{key}`: serves local-disk objects behind the URLs `LocalDiskStorage.signed_url` hands out.

S3 deployments never route here (their presigned URLs point at S3), so with any other backend it is a 404.
The content type comes from the object's own header line (see `app.storage.local`).
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from app.storage.base import ObjectNotFound
from app.storage.local import LocalDiskStorage
from app.storage.signing import InvalidSignature

router = APIRouter(tags=["media"])


def _error_doc(description: str, *codes: str) -> dict[str, Any]:
    examples = {code: {"value": {"error": {"code": code, "message": "…"}}} for code in codes}
    return {"description": description, "content": {"application/json": {"examples": examples}}}


@router.get(
    "/v1/media/{key:path}",
    operation_id="get_media",
    summary="Download a photo through a signed URL",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The object bytes, with their stored content type.", "content": {"image/*": {}}},
        403: _error_doc("Invalid signature, or the URL has expired.", "invalid_signature", "url_expired"),
        404: _error_doc("No such object, or media is not served by this app.", "object_not_found"),
    },
)
async def get_media(
    key: str,
    request: Request,
    expires: Annotated[str | None, Query(description="Unix time after which the URL is refused")] = None,
    signature: Annotated[str | None, Query(description="Hex HMAC-SHA256 issued with the URL")] = None,
) -> StreamingResponse:
    storage = getattr(request.app.state, "storage", None)
    if not isinstance(storage, LocalDiskStorage):
        raise ObjectNotFound()
    # Missing or malformed parameters are a bad signature, not a 422: the URL was not one we issued.
    if expires is None or signature is None or not (expires.isascii() and expires.isdigit()):
        raise InvalidSignature()
    expires_at = int(expires)
    storage.url_signer.verify(key, expires_at, signature)
    opened = await storage.open(key)
    max_age = max(0, math.floor(expires_at - time.time()))
    headers = {
        "Content-Length": str(opened.size),
        # Private: the photo is evidence and the URL is personal; never cache past the URL's own expiry.
        "Cache-Control": f"private, max-age={max_age}",
        # The type was supplied at upload; never let a browser sniff or run it as a page on our origin.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    # The background close covers a response that fails before its body is iterated.
    return StreamingResponse(
        opened.chunks(),
        media_type=opened.content_type,
        headers=headers,
        background=BackgroundTask(opened.close),
    )
