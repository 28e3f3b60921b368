"""The SyncML DS endpoint: POST /syncml (RespURI adds ?sessionid=...). Thin: the engine
(`sync.services.engine`) does the work. SyncML errors ride inside HTTP 200; HTTP 4xx only
for what is not a SyncML message at all."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sync.services import engine

ACCEPTED_TYPES = ("application/vnd.syncml+xml", "application/vnd.syncml+wbxml")


@csrf_exempt
@require_POST
def syncml_endpoint(request: HttpRequest) -> HttpResponse:
    ctype = request.content_type.lower()
    if ctype not in ACCEPTED_TYPES:
        return HttpResponse(
            f"content type must be one of {', '.join(ACCEPTED_TYPES)}",
            status=415,
            content_type="text/plain",
        )
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > engine.MAX_REQUEST_BYTES:
        return HttpResponse("message too large", status=413, content_type="text/plain")
    try:
        body = request.body
    except RequestDataTooBig:
        return HttpResponse("message too large", status=413, content_type="text/plain")
    reply = engine.handle_request(
        body,
        token=request.GET.get("sessionid") or None,
        address=request.META.get("REMOTE_ADDR"),
        endpoint_url=request.build_absolute_uri(request.path),
    )
    return HttpResponse(reply.body, status=reply.status, content_type=reply.content_type)
