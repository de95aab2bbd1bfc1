"""The programs the tests start that pip does not install: declared once, here.

`make test` runs this file first (`--install`): what is missing is installed with apt-get when
it can be (root, apt-get present), else it stops at once naming the packages and the command.
conftest.py checks the same list before the first test, so that a suite run with plain `pytest`
either runs whole or says what is missing before it starts; no test skips for a missing server.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

# What the tests run -> the Debian package that has it.
PROGRAMS = {
    "smbd": "samba",  # SMB locations against a real samba
    "smbpasswd": "samba-common-bin",  # its users
    "net": "samba-common-bin",  # its privileges (SeSecurityPrivilege, to copy SACLs)
    "ganesha.nfsd": "nfs-ganesha",  # NFSv4.0 and v4.1 locations against a real nfs-ganesha
    "setpriv": "util-linux",  # workers without root's file-permission override
    "ip": "iproute2",  # separate hosts: network namespaces on a bridge
    "rpcbind": "rpcbind",  # NFSv3's MOUNT, beside nfs-ganesha on a host of its own
}
# nfs-ganesha's VFS back end, a plugin library rather than a program.
GANESHA_VFS = ("libfsalvfs.so", "nfs-ganesha-vfs")
# Not in Debian: Terraform and its AWS provider, which the machine image carries, the provider
# in a local mirror (the tests of the DataSync endpoint drive it with `terraform apply`).
IMAGE = "the machine image"
TERRAFORM_MIRRORS = (
    "/opt/tf-plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "~/.terraform.d/plugins",
)


def ganesha_plugins() -> str | None:
    """The folder of nfs-ganesha's back ends, where its VFS one is (None: not installed)."""
    found = sorted(glob.glob(f"/usr/lib/*/ganesha/{GANESHA_VFS[0]}"))
    return os.path.dirname(found[0]) if found else None


def terraform_mirror() -> str | None:
    """The local provider mirror that holds hashicorp/aws (None: there is none)."""
    for folder in TERRAFORM_MIRRORS:
        path = os.path.expanduser(folder)
        if glob.glob(f"{path}/registry.terraform.io/hashicorp/aws/*"):
            return path
    return None


def missing() -> dict[str, str]:
    """What is missing here -> its Debian package (or IMAGE: what only the image has)."""
    absent = {
        program: package for program, package in PROGRAMS.items() if not shutil.which(program)
    }
    if ganesha_plugins() is None:
        absent[GANESHA_VFS[0]] = GANESHA_VFS[1]
    if not shutil.which("terraform"):
        absent["terraform"] = IMAGE
    if terraform_mirror() is None:
        absent["the hashicorp/aws provider mirror"] = IMAGE
    return absent


def install_command(packages: list[str]) -> str:
    return f"sudo apt-get install -y {' '.join(packages)}"


def report(absent: dict[str, str]) -> str:
    packages = sorted({package for package in absent.values() if package != IMAGE})
    lines = []
    if packages:
        debian = sorted(name for name, package in absent.items() if package != IMAGE)
        lines += [
            f"The tests start servers this machine does not have: {', '.join(debian)} "
            f"(Debian packages {', '.join(packages)}). Install them with:",
            f"    {install_command(packages)}",
            "then run the tests again (`make test` installs them itself when run as root).",
        ]
    if image := sorted(name for name, package in absent.items() if package == IMAGE):
        lines.append(
            f"Missing here and not in Debian: {', '.join(image)}, which the machine image carries "
            f"(a provider mirror in one of {', '.join(TERRAFORM_MIRRORS)}): the tests of the "
            "DataSync endpoint run Terraform against it."
        )
    return "\n".join(lines)


def install(absent: dict[str, str]) -> bool:
    """apt-get install what is missing, when this process may (root, apt-get present)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    packages = sorted({package for package in absent.values() if package != IMAGE})
    if not packages:
        return False
    print(f"Installing what the tests need: {' '.join(packages)}", file=sys.stderr)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *packages],
        check=True,
        env=environment,
    )
    return True


def main() -> int:
    absent = missing()
    if absent and "--install" in sys.argv[1:] and install(absent):
        absent = missing()
    if absent:
        print(report(absent), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
