"""The UI's sessions: a key asked for once, then a signed cookie; a CSRF token per session.

The cookie holds a random session id, the tenant and key id the key proved, and an expiry,
signed with HMAC-SHA256 under a secret made at start-up (a restart signs everyone out, which
is the safe direction). It is HttpOnly, SameSite=Strict, and Secure when the page came over
TLS. Every visitor gets one (without a tenant until a key is given when keys are configured),
so even the login form's POST carries a CSRF token: HMAC of the session id under the secret,
compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "catalog_ui"
LIFETIME_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    sid: str
    tenant: str = ""  # "" until a key was given (when keys are configured)
    key_id: str = ""
    expires: float = 0.0


class Sessions:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE, "")
        body, _, signature = raw.rpartition(".")
        if not body or not hmac.compare_digest(self._sign(body.encode()), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["s"]), str(data["t"]), str(data["k"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def new(self, tenant: str = "", key_id: str = "") -> Session:
        return Session(secrets.token_urlsafe(18), tenant, key_id, time.time() + LIFETIME_S)

    def write(self, response: Response, request: Request, session: Session) -> None:
        data = {"s": session.sid, "t": session.tenant, "k": session.key_id, "e": session.expires}
        body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        response.set_cookie(
            COOKIE,
            f"{body}.{self._sign(body.encode())}",
            max_age=int(session.expires - time.time()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    def csrf(self, session: Session) -> str:
        return self._sign(f"csrf:{session.sid}".encode())

    def csrf_ok(self, session: Session | None, token: str) -> bool:
        return session is not None and hmac.compare_digest(self.csrf(session), token)
