"""The error tree. Each error knows its HTTP status; server/problems.py renders them."""

from __future__ import annotations


class KgError(Exception):
    """Base of every error the project raises on purpose."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BuildError(KgError):
    """The build cannot go on; the message names the file and entry."""

    title = "Build failed"


class ClientError(KgError):
    status = 400
    title = "Bad request"


class QuerySyntaxError(ClientError):
    title = "SPARQL syntax error"


class UpdateSyntaxError(ClientError):
    title = "SPARQL Update syntax error"


class RdfSyntaxError(ClientError):
    title = "RDF syntax error"


class BadParameter(ClientError):
    title = "Invalid request parameter"


class ForbiddenOperation(ClientError):
    """SERVICE or LOAD to a target that is not allow-listed, or an update sent as a query."""

    status = 403
    title = "Operation not allowed"


class Unauthorized(ClientError):
    status = 401
    title = "Credential required"


class WritesDisabled(ClientError):
    status = 403
    title = "Writes are disabled"


class NotFound(ClientError):
    status = 404
    title = "Not found"


class NotAcceptable(ClientError):
    status = 406
    title = "Not acceptable"


class PayloadTooLarge(ClientError):
    status = 413
    title = "Request too large"


class UnsupportedMediaType(ClientError):
    status = 415
    title = "Unsupported media type"


class ShapeViolation(ClientError):
    """A write would leave data violating the SHACL shapes; nothing was changed."""

    status = 422
    title = "SHACL validation failed"


class QueryTimeout(KgError):
    status = 503
    title = "Query timed out"


class TooManyRows(ClientError):
    status = 422
    title = "Result exceeds the row cap"


class WritesBusy(KgError):
    """Too many writes queued, or one waited too long for the writer: retry (Retry-After)."""

    status = 503
    title = "Writes busy"


class UpdateTimeout(KgError):
    """A write's rehearsal overran its time limit and was stopped; nothing changed."""

    status = 503
    title = "Update timed out"


class BackendUnavailable(KgError):
    status = 503
    title = "Store unavailable"


class BackendUnanswered(BackendUnavailable):
    """The request reached the backend, or may have, and no answer came (a timeout, a broken
    connection): for a write, whether the backend applied it is unknown."""


class BackendError(KgError):
    """The remote SPARQL server answered with an error the service cannot attribute to the
    client (5xx, refused credentials, an unexpected body)."""

    status = 502
    title = "Bad gateway"
