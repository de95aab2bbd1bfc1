"""Kerberos for the protocols that authenticate through GSSAPI (SMB, WebHDFS's SPNEGO).

GSSAPI reads its configuration and a client keytab from files named by KRB5_CONFIG and
KRB5_CLIENT_KTNAME, for the whole process: a worker serves the Kerberos locations of one keytab
and krb5.conf, written once and removed when the worker exits.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass

from activities.storage.base import StorageError, unsealed
from models.errors import ErrorCode
from models.locations import HdfsLocation, SmbLocation


@dataclass(frozen=True)
class Kerberos:
    """AuthenticationType KERBEROS: the principal, its keytab and the realm's krb5.conf.

    Kerberos through GSSAPI reads its configuration and a client keytab from files named by
    KRB5_CONFIG and KRB5_CLIENT_KTNAME, for the whole process: a worker serves the Kerberos
    locations of one keytab and krb5.conf, written once and removed when the worker exits.
    """

    principal: str
    keytab: bytes
    krb5_conf: bytes

    def digest(self) -> str:
        """What tells one keytab and krb5.conf from another (the lengths keep the two apart)."""
        hashed = hashlib.sha256()
        for data in (self.keytab, self.krb5_conf):
            hashed.update(len(data).to_bytes(8, "little"))
            hashed.update(data)
        return hashed.hexdigest()

    def install(self) -> None:
        try:
            import gssapi  # noqa: F401 - pyspnego's Kerberos needs it
        except ImportError:
            raise StorageError(
                "AuthenticationType KERBEROS needs the gssapi package and the MIT Kerberos "
                "libraries on the agent (apt install libkrb5-dev; pip install gssapi)",
                code=ErrorCode.LOCATION_UNAVAILABLE,
            ) from None
        digest = self.digest()
        # Storages connect from many threads; the environment is written once, under the lock.
        with _KERBEROS_LOCK:
            if _KERBEROS_INSTALLED.get("digest") == digest:
                return
            if _KERBEROS_INSTALLED:
                raise StorageError(
                    "this worker already uses another KerberosKeytab or KerberosKrb5Conf: one "
                    "worker serves one Kerberos configuration (GSSAPI reads it for the whole "
                    "process); run another worker for this location",
                    code=ErrorCode.LOCATION_UNAVAILABLE,
                )
            folder = tempfile.mkdtemp(prefix="ferry-krb5-")  # 0700: the keytab is a secret
            atexit.register(_remove_kerberos_files)
            _KERBEROS_INSTALLED.update(digest=digest, folder=folder)
            for name, data, variable in (
                ("krb5.conf", self.krb5_conf, "KRB5_CONFIG"),
                ("client.keytab", self.keytab, "KRB5_CLIENT_KTNAME"),
            ):
                path = os.path.join(folder, name)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
                with open(os.open(path, flags, 0o600), "wb") as file:
                    file.write(data)
                os.environ[variable] = path


# The Kerberos configuration this process installed: its digest and folder.
_KERBEROS_INSTALLED: dict[str, str] = {}
_KERBEROS_LOCK = threading.Lock()


def _remove_kerberos_files() -> None:
    """At exit: the keytab does not outlive the worker."""
    with _KERBEROS_LOCK:
        folder = _KERBEROS_INSTALLED.pop("folder", None)
        _KERBEROS_INSTALLED.clear()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def kerberos(location: SmbLocation | HdfsLocation) -> Kerberos | None:
    """AuthenticationType KERBEROS's principal, keytab and krb5.conf (None for the others)."""
    if location.AuthenticationType != "KERBEROS":
        return None
    return Kerberos(
        location.KerberosPrincipal or "",
        base64.b64decode(unsealed(location.KerberosKeytab, location.LocationArn)),
        base64.b64decode(location.KerberosKrb5Conf or ""),
    )
