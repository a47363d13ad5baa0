"""Seals the database connection string before it becomes a DBOS workflow input.

DBOS pickles workflow inputs into its system database in plain text, so the workflow receives
a Fernet token (AES-128-CBC with an HMAC) instead of the connection string, and only the steps
that need the string open it. The key comes from CATALOG_SECRET_KEY; without it, a key file
(CATALOG_SECRET_KEY_FILE, created with mode 0600 on first use) keeps embedded deployments
working across restarts, which recovery needs: a workflow sealed by one process is opened by
the next.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet, InvalidToken

from services.common.logging import log_fields
from services.orchestrator.errors import SealingError

_log = logging.getLogger(__name__)


class Sealer:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise SealingError(
                "CATALOG_SECRET_KEY must be a Fernet key (32 url-safe base64 bytes); make one "
                'with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from exc
        # A key of its own for digests, derived from the sealing key: replicas agree on it.
        self._digest_key = hashlib.sha256(
            b"catalog-agents request digest\0" + key.encode()
        ).digest()

    def digest(self, payload: bytes) -> str:
        """A keyed hash of `payload` (HMAC-SHA256): comparable, and of no use to guess a
        secret in it without the key."""
        return hmac.new(self._digest_key, payload, hashlib.sha256).hexdigest()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SealingError(
                "the connection string was sealed with another key: give every orchestrator "
                "replica the same CATALOG_SECRET_KEY"
            ) from exc


def load_sealer(key: str, key_file: Path) -> Sealer:
    """The sealer for `key`, else for the key in `key_file`, made on first use."""
    if key:
        return Sealer(key)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(Fernet.generate_key().decode())
        log_fields(
            _log,
            logging.WARNING,
            "made a sealing key file; set CATALOG_SECRET_KEY for replicas that share work",
            path=str(key_file),
        )
    return Sealer(key_file.read_text().strip())


def secret_values(conn_string: str) -> tuple[str, ...]:
    """The parts of a connection string that must never be shown: itself and its password."""
    values = [conn_string]
    password = urlsplit(conn_string).password
    if password:
        values += [password, unquote(password)]
    return tuple(dict.fromkeys(v for v in values if v))
