from __future__ import annotations

from portico.errors import NotFound, PorticoError


class DocumentNotFound(NotFound):
    code = "document_not_found"
    message = "This assistant has no such document."


class DocumentTooLarge(PorticoError):
    status = 413
    code = "document_too_large"


class TooManyDocuments(PorticoError):
    status = 422
    code = "too_many_documents"


class DocumentFailed(PorticoError):
    """A file that cannot be read; `code` is set per failure (`document_encrypted`...)."""

    status = 422

    def __init__(self, code: str, message: str, *, details: object = None) -> None:
        super().__init__(message, details=details)
        self.code = code
