"""Domain errors. Services raise these; the API maps them to one JSON shape
(``core.api.exception_handler``) and web views show their message to people.

Every error carries a stable ``code`` that clients may branch on; messages are
for humans and may change.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "application_error"
    status_code = 400
    default_message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)


class ValidationError(ApplicationError):
    code = "validation_error"
    status_code = 400
    default_message = "Some fields are not valid."


class NotFound(ApplicationError):
    code = "not_found"
    status_code = 404
    default_message = "Not found."


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status_code = 403
    default_message = "You do not have permission to do this."


class Conflict(ApplicationError):
    code = "conflict"
    status_code = 409
    default_message = "The request conflicts with the current state."
