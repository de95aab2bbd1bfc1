"""Who sent a request: its SigV4 signature checked against Ferry's access keys, with the
refusals AWS gives, in AWS's words, so that a client shows what it would show against AWS."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from api import sigv4
from api.secrets import SecretError, unseal
from models.access_keys import AccessKey, sealed_as

log = logging.getLogger("ferry.endpoint")
SERVICE = "datasync"
CLOCK_SKEW_SECONDS = 15 * 60  # AWS's: a signature is good 15 minutes either side of now
KEYS_FRESH_SECONDS = 5.0  # a key deleted or made Inactive is refused within this
_CORAL = "com.amazon.coral.service#"
_AUTHORIZATION = re.compile(r"^(\S+)\s+(.*)$", re.DOTALL)
_STAMP = "%Y%m%dT%H%M%SZ"


class Refused(Exception):
    """A request refused before its operation runs, in AWS's JSON error shape."""

    def __init__(self, code: str, message: str, status: int = 400, prefix: str = _CORAL) -> None:
        super().__init__(message)
        self.type = prefix + code
        self.message = message
        self.status = status


def _incomplete(message: str) -> Refused:
    return Refused("IncompleteSignatureException", message)


def _invalid(message: str) -> Refused:
    return Refused("InvalidSignatureException", message)


@dataclass(frozen=True)
class Authorization:
    access_key: str
    day: str
    region: str
    service: str
    terminator: str
    signed: tuple[str, ...]
    signature: str

    @classmethod
    def parse(cls, header: str | None) -> Authorization:
        if not header:
            raise Refused(
                "MissingAuthenticationTokenException", "Request is missing Authentication Token"
            )
        match = _AUTHORIZATION.match(header.strip())
        if match is None or match.group(1) != sigv4.ALGORITHM:
            raise _incomplete(
                f"Unsupported authorization: only {sigv4.ALGORITHM} (Signature Version 4) is "
                "accepted."
            )
        parts = {}
        for item in match.group(2).split(","):
            name, _, value = item.strip().partition("=")
            parts[name] = value
        missing = [
            name for name in ("Credential", "SignedHeaders", "Signature") if not parts.get(name)
        ]
        if missing:
            raise _incomplete(
                " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
                + f" Authorization={header}"
            )
        credential = parts["Credential"].split("/")
        if len(credential) != 5:
            raise _incomplete(
                f"Credential must have exactly 5 slash-delimited elements, e.g. "
                f"keyid/date/region/service/term, got '{parts['Credential']}'"
            )
        return cls(*credential, tuple(parts["SignedHeaders"].split(";")), parts["Signature"])


class SignatureCheck:
    """Checks requests against the access keys `keys` gives (sealed, as the registry keeps
    them), read again when its copy is older than KEYS_FRESH_SECONDS or a request names a key
    it does not know: one read at a time, shared by the requests that wait for it."""

    def __init__(
        self,
        keys: Callable[[], Awaitable[list[AccessKey]]],
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self.region = region
        self._clock = clock
        self._secrets: dict[str, str] = {}  # active keys: id -> secret
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._unopened: set[str] = set()

    async def _secret(self, key_id: str) -> str | None:
        asked = time.monotonic()
        if asked - self._read_at > KEYS_FRESH_SECONDS or key_id not in self._secrets:
            async with self._lock:
                # One read of the keys at a time; requests that came while it ran share it.
                if self._read_at < asked:
                    started = time.monotonic()
                    self._secrets = self._opened(await self._keys())
                    self._read_at = started
        return self._secrets.get(key_id)

    def _opened(self, keys: list[AccessKey]) -> dict[str, str]:
        """The active keys' secrets, opened; a key this process cannot open is left out, said
        once in the log, and its requests refused as from an unknown key."""
        opened = {}
        for key in keys:
            if key.Status != "Active":
                continue
            try:
                opened[key.AccessKeyId] = unseal(key.SecretAccessKey, sealed_as(key.AccessKeyId))
            except SecretError as error:
                if key.AccessKeyId not in self._unopened:
                    self._unopened.add(key.AccessKeyId)
                    log.warning("%s Its requests are refused.", error)
        return opened

    async def check(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        """The access key id that signed the request; Refused if none did."""
        auth = Authorization.parse(headers.get("authorization"))
        secret = await self._secret(auth.access_key)
        if secret is None:
            raise Refused(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        stamp = headers.get("x-amz-date") or ""
        now = self._clock()
        when = _when(stamp, headers.get("date"))
        if when is None:
            raise _incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            )
        shown_now = time.strftime(_STAMP, time.gmtime(now))
        if when < now - CLOCK_SKEW_SECONDS:
            raise _invalid(
                f"Signature expired: {_shown(when)} is now earlier than "
                f"{time.strftime(_STAMP, time.gmtime(now - CLOCK_SKEW_SECONDS))} "
                f"({shown_now} - 15 min.)"
            )
        if when > now + CLOCK_SKEW_SECONDS:
            raise _invalid(
                f"Signature not yet current: {_shown(when)} is still later than "
                f"{time.strftime(_STAMP, time.gmtime(now + CLOCK_SKEW_SECONDS))} "
                f"({shown_now} + 15 min.)"
            )
        if auth.day != _shown(when)[:8]:
            raise _invalid(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{auth.day}' != '{_shown(when)[:8]}', from '{_shown(when)}'."
            )
        if auth.region != self.region:
            raise _invalid(
                f"Credential should be scoped to a valid region, not '{auth.region}'. This "
                f"endpoint's region is '{self.region}' (FERRY_REGION)."
            )
        if auth.service != SERVICE:
            raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'. ")
        if auth.terminator != "aws4_request":
            raise _invalid(
                "Credential should be scoped with a valid terminator: 'aws4_request', not "
                f"'{auth.terminator}'. "
            )
        if "host" not in auth.signed:
            raise _invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.")
        absent = [name for name in auth.signed if name not in headers]
        if absent:
            raise _invalid(f"The request does not have the signed header {absent[0]!r}.")
        path, _, query = raw_path.partition("?")
        canonical = sigv4.canonical_request(
            method,
            _canonical_path(path),
            sigv4.canonical_query(urllib.parse.parse_qsl(query, keep_blank_values=True)),
            headers,
            auth.signed,
            hashlib.sha256(body).hexdigest(),
        )
        scope = sigv4.scope(auth.day, auth.region, auth.service)
        key = sigv4.signing_key(secret, auth.day, auth.region, auth.service)
        expected = sigv4.signature(key, stamp or _shown(when), scope, canonical)
        if not hmac.compare_digest(expected, auth.signature):
            raise _invalid(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details."
            )
        return auth.access_key


def _when(stamp: str, date: str | None) -> float | None:
    try:
        if stamp:
            return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC).timestamp()
        if date:
            from email.utils import parsedate_to_datetime

            return parsedate_to_datetime(date).timestamp()
    except (ValueError, TypeError):
        return None
    return None


def _shown(when: float) -> str:
    return time.strftime(_STAMP, time.gmtime(when))


def _canonical_path(path: str) -> str:
    """The path as SigV4 signs it for services other than S3: each segment encoded again."""
    segments = [urllib.parse.quote(s, safe="-_.~") for s in (path or "/").split("/")]
    return "/".join(segments) or "/"
