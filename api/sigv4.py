"""AWS Signature Version 4: the request signature of S3, DataSync and every AWS API, written
once for both sides: the S3 client signs its requests with it, and the DataSync endpoint checks
the signatures of the requests it gets."""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable, Mapping

ALGORITHM = "AWS4-HMAC-SHA256"
_SPACES = re.compile(r"\s+")


def quote(text: str, safe: str = "-_.~") -> str:
    """RFC 3986 percent-encoding, as canonical requests have it."""
    return urllib.parse.quote(text, safe=safe)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string in canonical form: each name and value encoded, sorted."""
    return "&".join(f"{quote(n)}={quote(v)}" for n, v in sorted(pairs))


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: Iterable[str],
    payload_sha256: str,
) -> str:
    """The canonical form of a request: `path` already encoded, `query` canonical, `headers`
    by lower-case name, `signed` the lower-case names signed, sorted."""
    names = list(signed)
    lines = "".join(f"{name}:{_SPACES.sub(' ', headers[name].strip())}\n" for name in names)
    return "\n".join([method, path, query, lines, ";".join(names), payload_sha256])


def scope(day: str, region: str, service: str) -> str:
    return f"{day}/{region}/{service}/aws4_request"


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(key: bytes, stamp: str, credential_scope: str, canonical: str) -> str:
    """The signature of a canonical request made at `stamp` (20261205T101500Z)."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    text = f"{ALGORITHM}\n{stamp}\n{credential_scope}\n{digest}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def authorization(access_key: str, credential_scope: str, signed: Iterable[str], sig: str) -> str:
    """The Authorization header that carries a signature."""
    return (
        f"{ALGORITHM} Credential={access_key}/{credential_scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
