"""Read DeviceModel/Device YAML files (multi-document) into documents for `devicetwin.catalog`."""

from __future__ import annotations

from pathlib import Path

import yaml

from devicetwin.spec import Document, ManifestError


def read_documents(path: Path) -> list[Document]:
    """Parse one file; YAML errors become ManifestError with the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), "file", f"cannot be read: {exc}") from exc
    try:
        bodies = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        raise ManifestError(str(path), where, f"invalid YAML: {exc}") from exc
    documents = []
    for index, body in enumerate(bodies, start=1):
        if body is None:
            continue
        doc = Document(str(path), index, body if isinstance(body, dict) else {})
        if not isinstance(body, dict):
            raise doc.fail("document", "must be a mapping with apiVersion, kind and metadata")
        documents.append(doc)
    return documents
