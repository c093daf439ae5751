"""Who may write: one shared token, sent as a Bearer token or as the password of HTTP Basic.

Decisions:

- No `write_token` configured: every write is refused with 403 "Writes are disabled", whatever
  the request carries; the public service is read-only by default.
- A token configured but no usable credential in the request: 401 with
  `WWW-Authenticate: Bearer realm="kg", Basic realm="kg"` (rendered by server/problems.py).
- A credential that does not match: also 401 (RFC 6750 `invalid_token`, RFC 7617 for Basic),
  so clients such as SPARQLWrapper and rdflib see one "unauthorised" signal for missing and
  wrong credentials alike.
- Bearer (`Authorization: Bearer <token>`) and Basic with any user name and the token as the
  password are accepted: rdflib's SPARQLUpdateStore can only send Basic (`auth=(user, pw)`).
- Credentials in the query string (`?token=`, `?access_token=`) are never read: URLs end up in
  logs, proxies and browser history.
- Comparison is constant-time (`hmac.compare_digest`) and the credential is never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request

from kg.config import Settings
from kg.errors import Unauthorized, WritesDisabled


def _presented_secret(header: str) -> str | None:
    """The secret carried by an Authorization header value, or None if it carries none."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep else None
    return None


def check_write_access(request: Request, settings: Settings) -> None:
    """Raise unless the request may write; returns quietly when it may."""
    token = settings.write_token
    if not token:
        raise WritesDisabled("This service is read-only: writes are disabled.")
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized(
            "Writes need a credential: `Authorization: Bearer <token>` or HTTP Basic with the "
            "token as password."
        )
    secret = _presented_secret(header)
    if secret is None or not hmac.compare_digest(secret.encode(), token.encode()):
        raise Unauthorized("The credential was not accepted.")
