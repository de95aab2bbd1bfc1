"""Access keys: who may call Ferry's DataSync endpoint. Each is an access key id and a secret
access key, as IAM gives them, with which a client signs its requests (SigV4); the registry keeps
them, the secret sealed (api.secrets), and the endpoint opens it to check a signature."""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

# IAM's form: 20 upper-case letters and digits; Ferry's begin with FKIA (IAM's with AKIA).
ACCESS_KEY_ID = re.compile(r"^FKIA[A-Z2-7]{16}$")
MAX_ACCESS_KEYS = 100
AccessKeyStatus = Literal["Active", "Inactive"]


def new_access_key() -> tuple[str, str]:
    """A fresh (access key id, secret access key): 80 random bits name it, 240 are its secret."""
    key_id = "FKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    alphabet = string.ascii_letters + string.digits + "+/"
    return key_id, "".join(secrets.choice(alphabet) for _ in range(40))


def sealed_as(key_id: str) -> str:
    """What a key's secret is sealed bound to (api.secrets), so that it opens for no other."""
    return f"access key {key_id}"


class AccessKey(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    AccessKeyId: str
    SecretAccessKey: str  # sealed: never in plain text, never shown after CreateAccessKey
    UserName: str
    Status: AccessKeyStatus = "Active"
    CreateDate: datetime

    def shown(self) -> dict[str, Any]:
        """IAM's AccessKeyMetadata: everything but the secret."""
        return {
            "UserName": self.UserName,
            "AccessKeyId": self.AccessKeyId,
            "Status": self.Status,
            "CreateDate": self.CreateDate,
        }
