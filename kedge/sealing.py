"""Secrets sealed at rest: AES-256-GCM with a key kept in the state dir, as Kubernetes'
EncryptionConfiguration (the `aesgcm` provider) seals Secrets in etcd.

A sealed value is text: `k8s:enc:aesgcm:v1:key1:` then base64 of a 12-byte nonce and the
ciphertext. The row's own key (resource, namespace, name) is authenticated with it, so a sealed
value copied to another row does not open. Values stored before sealing (plain JSON) still
read, and are sealed on their next write. The key file is 0600; what this protects against is
a database file (or its WAL, or a backup of it) read without the state dir's key.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kedge.errors import PermanentError
from kedge.process import write_private

PREFIX = "k8s:enc:aesgcm:v1:key1:"
KEY_FILE = "encryption.key"


class SealError(PermanentError):
    """A sealed value that does not open (another key, or altered)."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def in_dir(cls, directory: Path) -> Sealer:
        """The state dir's key, made (0600) on first use."""
        path = directory / KEY_FILE
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            write_private(path, base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
        return cls(base64.b64decode(path.read_text().strip()))

    def seal(self, text: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, text.encode(), context.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str, context: str) -> str:
        """The plain text of a sealed value; a value stored before sealing as it is."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            raw = base64.b64decode(stored[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise SealError(f"a sealed value for {context} does not open: {exc!r}") from exc
