"""API errors as Kubernetes `Status` objects, with the reasons and codes clients branch on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types name themselves in errors; they need errors for their hooks
    from cloudcore.apiserver.resources import ResourceType


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": kind.group, "kind": kind.plural}


def _what(kind: ResourceType) -> str:
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


def not_found(kind: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_what(kind)} "{name}" not found', _details(kind, name))


def already_exists(kind: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{_what(kind)} "{name}" already exists', _details(kind, name)
    )


def conflict(kind: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_what(kind)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(kind, name),
    )


def invalid(kind: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    text = "; ".join(f"{path}: {message}" for path, message in causes)
    details = {
        "name": name,
        "group": kind.group,
        "kind": kind.kind,
        "causes": [
            {"reason": "FieldValueInvalid", "message": message, "field": path}
            for path, message in causes
        ],
    }
    return ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
