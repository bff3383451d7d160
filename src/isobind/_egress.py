"""The optional egress gateway: `fetch` in the sandbox, performed by the host.

Without an ``isobind.egress`` section, `fetch` fails with `NetworkAccessError`.
With one, each `fetch` crosses to the host as data. The host checks the request's
origin and method against the allow list and adds the credential headers
configured for that origin. It then makes the request with httpx2 under the time
and size limits, scrubs the response of secrets and returns status, headers and text.

Redirects are not followed, because the target of a redirect may be an origin
that is not allowed. The code receives the 3xx response and may fetch its
``Location`` itself, which is checked like any request.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import httpx2

from ._redact import Scrubber
from ._sandbox import CallReply

__all__ = ["EGRESS_KEY", "EgressGateway", "EgressOrigin", "EgressPolicy", "normalize_origin"]

EGRESS_KEY = "(fetch)"
"""The server identifier under which the prelude sends `fetch` requests."""

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Headers that the host sets or that would let the code change how the request is
# routed or framed.
_REMOVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "proxy-authorization"}
)


def normalize_origin(url: str) -> str | None:
    """Return ``scheme://host[:port]`` of `url` (lowercase, default port left out), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class EgressOrigin:
    """One allowed origin: its methods and the headers the host adds (may be secret)."""

    origin: str
    methods: frozenset[str]
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The ``isobind.egress`` section: allowed origins and limits per request."""

    origins: Mapping[str, EgressOrigin]
    max_response_bytes: int = 1024 * 1024
    timeout: float = 10.0


class EgressGateway:
    """Performs the sandbox's `fetch` requests that the policy allows."""

    def __init__(self, policy: EgressPolicy, redactor: Scrubber) -> None:
        self.policy = policy
        self._redactor = redactor
        self._client = httpx2.AsyncClient(follow_redirects=False, trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    def check(self, request: Mapping[str, Any]) -> tuple[EgressOrigin | None, str]:
        """Return the allowed origin of `request`, or None and why it is rejected."""
        url = request.get("url")
        method = request.get("method")
        if not isinstance(url, str) or not isinstance(method, str):
            return None, "fetch: the request has no URL or method"
        origin = normalize_origin(url)
        shown = self._redactor.scrub_text(url)[:200]
        if origin is None:
            return None, f"fetch({shown}) is not available: only http and https URLs can be fetched"
        rule = self.policy.origins.get(origin)
        if rule is None:
            return None, (
                f"fetch({shown}) is not available: the origin {origin} is not in "
                "isobind.egress.allow"
            )
        if method.upper() not in rule.methods:
            allowed = ", ".join(sorted(rule.methods))
            return None, (
                f"fetch({shown}) is not available: method {method.upper()} is not allowed "
                f"for {origin} (allowed: {allowed})"
            )
        return rule, ""

    async def fetch(self, request: Mapping[str, Any]) -> CallReply:
        """Check and perform one request; the reply's value is status, headers and text."""
        rule, reason = self.check(request)
        if rule is None:
            return CallReply.failure("NetworkAccessError", reason)

        given = request.get("headers")
        # Headers the host adds replace any of the same name that the code set.
        replaced = _REMOVED_HEADERS | {name.lower() for name in rule.headers}
        headers = {
            str(name): str(value)
            for name, value in (given.items() if isinstance(given, dict) else ())
            if str(name).lower() not in replaced
        }
        invalid = next(
            (name for name, value in headers.items() if not _valid_header(name, value)), None
        )
        if invalid is not None:
            return CallReply.failure(
                "ToolInputError",
                f"fetch: header {self._redactor.scrub_text(invalid)[:100]!r} is invalid: a name "
                "must be an HTTP token and a value Latin-1 text without line breaks or NUL",
            )
        headers.update(rule.headers)
        try:
            body = _request_body(request)
        except ValueError as error:
            return CallReply.failure("ToolInputError", str(error))
        url = str(request["url"])
        method = str(request["method"]).upper()
        try:
            with anyio.fail_after(self.policy.timeout):
                return await self._send(rule.origin, url, method, headers, body)
        except TimeoutError:
            return CallReply.failure(
                "NetworkAccessError",
                f"fetch to {rule.origin} timed out after {self.policy.timeout:g} s",
            )
        except httpx2.HTTPError as error:
            logger.info("egress request to %s failed: %s", rule.origin, type(error).__name__)
            return CallReply.failure(
                "NetworkAccessError", f"fetch to {rule.origin} failed: {type(error).__name__}"
            )

    async def _send(
        self, origin: str, url: str, method: str, headers: dict[str, str], body: str | bytes | None
    ) -> CallReply:
        limit = self.policy.max_response_bytes
        content = body.encode("utf-8") if isinstance(body, str) else body
        request = self._client.build_request(method, url, headers=headers, content=content)
        # The origin was checked with urllib's parser; the request goes where httpx2's
        # parser says, so both must agree, or a crafted URL could reach another host.
        # NOTE: no URL tried so far (userinfo, backslash, percent-encoding tricks)
        # makes the two disagree, so this branch has not run.
        sent_to = normalize_origin(str(request.url))
        if sent_to != origin:
            return CallReply.failure(
                "NetworkAccessError",
                f"fetch({self._redactor.scrub_text(url)[:200]}) is not available: the URL "
                "is ambiguous, so its origin cannot be checked",
            )
        response = await self._client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    return CallReply.failure(
                        "LimitExceededError",
                        f"fetch({self._redactor.scrub_text(url)[:200]}): the response is "
                        f"larger than {limit} bytes",
                    )
                chunks.append(chunk)
        finally:
            await response.aclose()

        raw = b"".join(chunks)
        text = raw.decode(response.encoding or "utf-8", errors="replace")
        value: dict[str, Any] = {
            "status": response.status_code,
            "statusText": response.reason_phrase,
            "url": url,
            "headers": dict(response.headers.items()),
            "body": text,
        }
        value = cast(dict[str, Any], self._redactor.scrub(value))
        if text.encode("utf-8") != raw:
            # `arrayBuffer()` must return the bytes as sent, which the text does not keep.
            # Viewed as Latin-1, each byte is one character, so the redactor finds an ASCII
            # secret in binary data and replaces it with ASCII.
            # NOTE: a secret with non-ASCII characters is not found in binary data.
            scrubbed = self._redactor.scrub_text(raw.decode("latin-1")).encode("latin-1")
            value["bodyBase64"] = base64.b64encode(scrubbed).decode("ascii")
        return CallReply.success(json.dumps(value))


def _request_body(request: Mapping[str, Any]) -> str | bytes | None:
    """Return the body the code gave: text, the bytes of a buffer, or None.

    Raises ValueError when the bytes of a buffer arrive as invalid base64.
    """
    encoded = request.get("bodyBase64")
    if encoded is not None:
        try:
            return base64.b64decode(str(encoded), validate=True)
        except binascii.Error as error:
            raise ValueError("fetch: the request body is not valid base64") from error
    body = request.get("body")
    return body if isinstance(body, str) else None


# RFC 9110: a field name is a token; a field value has no CR, LF or NUL, and HTTP/1.1
# sends it as Latin-1 bytes.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[^\r\n\x00\u0100-\U0010ffff]*")


def _valid_header(name: str, value: str) -> bool:
    return _HEADER_NAME.fullmatch(name) is not None and _HEADER_VALUE.fullmatch(value) is not None
