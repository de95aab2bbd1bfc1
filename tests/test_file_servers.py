"""NFS, SMB and the AWS file systems reached by them, against real servers on 127.0.0.1:
nfs-ganesha (NFSv4.1) and samba's smbd (SMB3, NT ACLs kept by acl_xattr)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import S3Server, Stack, run_cli
from helpers import digest, launch_failure, local, logged, run, task, write
from nfs_server import NfsServer, ganesha
from smb_server import RawClient, SmbServer, acl_sids, smb_server_running

from activities.storage.base import FILE, Entry, MetadataPolicy
from activities.storage.nfs import NfsStorage
from activities.storage.smb import SmbStorage
from activities.storage.smbcodec import ARCHIVE, CREATION_NS, FILE_ATTRIBUTES, HIDDEN, READONLY
from api import Ferry
from models.errors import InvalidRequestException

OLD = 1_500_000_000_123_456_789  # a file time with nanoseconds, 2017
SMB_OLD = OLD - OLD % 100  # SMB keeps times in units of 100 ns
USERS = "S-1-5-32-545"  # BUILTIN\\Users: a SID samba keeps only with acl_xattr


async def nfs(ferry: Ferry, server: NfsServer, inside: str = "", version: str = "") -> str:
    request = {
        "ServerHostname": "127.0.0.1",
        "ServerPort": server.port,
        "Subdirectory": server.pseudo_path + ("/" + inside if inside else ""),
        "MountOptions": {"Version": version or server.version},
    }
    return (await ferry.create_location_nfs(request))["LocationArn"]


async def smb(
    ferry: Ferry, server: SmbServer, share: str = "", inside: str = "", **more: Any
) -> str:
    request = {
        "ServerHostname": "127.0.0.1",
        "ServerPort": server.port,
        "Subdirectory": server.subdirectory(share, inside),
        "User": server.user,
        "Password": server.password,
        **more,
    }
    return (await ferry.create_location_smb(request))["LocationArn"]


def folder(root: str, name: str) -> Path:
    path = Path(root) / name
    path.mkdir(parents=True)
    return path


def posix_tree(root: Path) -> None:
    """Files with owners, modes and times to the nanosecond; a link and a hard link."""
    write(root / "top.txt", "top", 0o640)
    write(root / "sub" / "deeper" / "data.bin", os.urandom(3 << 20), 0o600)
    write(root / "sub" / "setuid", "x", 0o4755)
    os.chown(root / "top.txt", 1234, 5678)
    os.symlink("../top.txt", root / "sub" / "link")
    os.link(root / "top.txt", root / "sub" / "hard.txt")
    os.chmod(root / "sub", 0o750)
    for path in (root / "top.txt", root / "sub" / "deeper" / "data.bin", root / "sub" / "setuid"):
        os.utime(path, ns=(OLD, OLD))
    os.utime(root / "sub" / "deeper", ns=(OLD, OLD))


def posix_view(root: Path) -> dict[str, tuple[Any, ...]]:
    view = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        content = digest(path) if stat.S_ISREG(st.st_mode) else None
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
        mode = None if stat.S_ISLNK(st.st_mode) else stat.S_IMODE(st.st_mode)
        mtime = None if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns
        view[str(path.relative_to(root))] = (
            stat.S_IFMT(st.st_mode), mode, st.st_uid, st.st_gid, mtime, content, target,
        )  # fmt: skip
    return view


async def test_local_to_nfs_keeps_bytes_owners_modes_times_and_links(
    ferry: Ferry, nfs_server: NfsServer, workdir: Path
) -> None:
    source = workdir / "source"
    posix_tree(source)
    destination = folder(nfs_server.export_dir, "from-local")
    arn = await task(ferry, await local(ferry, source), await nfs(ferry, nfs_server, "from-local"))

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert posix_view(destination) == posix_view(source)
    assert os.stat(destination / "top.txt").st_ino == os.stat(destination / "sub/hard.txt").st_ino
    assert result["FilesTransferred"] == 8  # 4 files (one a hard link), a link, 3 folders
    again = await run(ferry, arn)
    assert again["Status"] == "SUCCESS"
    assert again["FilesTransferred"] == 0


async def test_a_folder_40_deep_reaches_nfs_by_nfs4_0_where_a_4_1_session_is_too_short(
    stack: Stack, ferry: Ferry, nfs_server: NfsServer, workdir: Path
) -> None:
    """nfs-ganesha's NFSv4.1 sessions take 16 operations a request, and nfs-rs looks a path up
    in one: a path 40 folders deep once failed the whole execution ("COMPOUND contains 42
    operations; channel maximum is 16"). AUTOMATIC reaches it by NFSv4.0. An explicit NFS4_1
    cannot reach it at all (nfs-rs takes no file handle but to list), and the location says
    so (Capabilities.max_path_components): PREPARING skips what lies too deep, a line each,
    and transfers the rest; the execution succeeds, and verification passes over them."""
    source = workdir / "source"
    levels = [f"level-{number:02d}" for number in range(40)]
    deep = "/".join(levels)
    write(source / deep / "deep.txt", "forty folders down")
    write(source / "shallow.txt", "at the top")
    destination = folder(nfs_server.export_dir, "deep")
    automatic = await nfs(ferry, nfs_server, "deep", "AUTOMATIC")

    result = await run(ferry, await task(ferry, await local(ferry, source), automatic))

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert (destination / deep / "deep.txt").read_text() == "forty folders down"
    assert posix_view(destination) == posix_view(source)

    only_41 = folder(nfs_server.export_dir, "deep-41")
    explicit = await nfs(ferry, nfs_server, "deep-41", "NFS4_1")  # /export/deep-41: 2 names
    arn = await task(ferry, await local(ferry, source), explicit, LogLevel="TRANSFER")
    skipping = await run(ferry, arn)

    assert skipping["Status"] == "SUCCESS", skipping["Result"].get("ErrorDetail")
    assert (only_41 / "shallow.txt").read_text() == "at the top"
    assert (only_41 / "/".join(levels[:10])).is_dir()  # 12 names from the server's root
    assert not (only_41 / "/".join(levels[:11])).exists()
    assert skipping["FilesSkipped"] == 31  # level-10 to level-39, and deep.txt
    skipped = [
        (line["Path"], line["Reason"])
        for line in logged(stack.directory / "staging", skipping["TaskExecutionArn"])
        if line["Event"] == "SKIPPED"
    ]
    assert len(skipped) == 31
    too_deep = "/" + "/".join(levels[:11])
    assert skipped[0] == (
        too_deep,
        "the destination (an NFS location) cannot reach a path of 11 names: one request "
        "reaches at most 10 below this location with NFSv4.1 (MountOptions Version "
        "AUTOMATIC reaches it by NFSv4.0)",
    )
    assert skipped[-1][0] == f"/{deep}/deep.txt"
    assert (
        skipped[-1][1]
        == f"it lies in {too_deep}, which the destination (an NFS location) cannot hold"
    )
    again = await run(ferry, arn)  # and nothing else to do the next time
    assert (again["Status"], again["FilesTransferred"], again["FilesSkipped"]) == (
        "SUCCESS",
        0,
        31,
    )


async def test_nfs_to_smb_keeps_bytes_and_times(
    ferry: Ferry, nfs_server: NfsServer, smb_server: SmbServer
) -> None:
    source = folder(nfs_server.export_dir, "to-smb")
    write(source / "a.txt", "over nfs", 0o600)
    write(source / "folder" / "b.bin", os.urandom(1 << 20))
    for path in (source / "a.txt", source / "folder" / "b.bin"):
        os.utime(path, ns=(OLD, OLD))
    destination = folder(smb_server.share_dir, "from-nfs")
    arn = await task(
        ferry,
        await nfs(ferry, nfs_server, "to-smb"),
        await smb(ferry, smb_server, inside="from-nfs"),
        Atime="BEST_EFFORT",
    )

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    for name in ("a.txt", "folder/b.bin"):
        assert digest(destination / name) == digest(source / name)
        assert os.stat(destination / name).st_mtime_ns == SMB_OLD
    again = await run(ferry, arn)
    assert (again["Status"], again["FilesTransferred"]) == ("SUCCESS", 0)


async def test_local_to_smb_keeps_times_and_hard_links_and_names_what_smb_cannot_hold(
    ferry: Ferry, smb_server: SmbServer, workdir: Path
) -> None:
    source = workdir / "source"
    posix_tree(source)  # owners and modes: SMB has none; a symbolic link: SMB cannot hold one
    destination = folder(smb_server.share_dir, "from-local")
    arn = await task(
        ferry, await local(ferry, source), await smb(ferry, smb_server, inside="from-local")
    )

    result = await run(ferry, arn)

    # The symbolic link is skipped by PREPARING, said so (test_capabilities.py), not failed.
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["FilesSkipped"] == 1
    assert not (destination / "sub" / "link").exists()
    for name in ("top.txt", "sub/deeper/data.bin", "sub/setuid", "sub/hard.txt"):
        assert digest(destination / name) == digest(source / name), name
    assert os.stat(destination / "sub/deeper/data.bin").st_mtime_ns == SMB_OLD
    top, hard = os.stat(destination / "top.txt"), os.stat(destination / "sub/hard.txt")
    assert (top.st_ino, top.st_nlink) == (hard.st_ino, 2)
    source_link = source / "sub" / "link"
    source_link.unlink()
    again = await run(ferry, arn)
    assert again["Status"] == "SUCCESS", again["Result"].get("ErrorDetail")
    assert again["FilesTransferred"] == 1  # the folder whose link went; nothing else differs


async def test_smb_to_local_gets_datasyncs_defaults_for_owner_and_mode(
    ferry: Ferry, smb_server: SmbServer, workdir: Path
) -> None:
    source = folder(smb_server.share_dir, "to-local")
    write(source / "report.txt", "from a filer", 0o600)
    write(source / "year" / "q1.csv", "1,2,3")
    os.utime(source / "report.txt", ns=(OLD, OLD))
    destination = workdir / "destination"
    destination.mkdir()
    arn = await task(
        ferry, await smb(ferry, smb_server, inside="to-local"), await local(ferry, destination)
    )

    result = await run(ferry, arn)

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    assert (destination / "report.txt").read_text() == "from a filer"
    assert (destination / "year" / "q1.csv").read_text() == "1,2,3"
    report = os.stat(destination / "report.txt")
    assert report.st_mtime_ns == SMB_OLD
    assert (report.st_uid, report.st_gid, stat.S_IMODE(report.st_mode)) == (65534, 65534, 0o644)
    year = os.stat(destination / "year")
    assert (year.st_uid, year.st_gid, stat.S_IMODE(year.st_mode)) == (65534, 65534, 0o755)


async def test_smb_to_smb_keeps_times_attributes_and_nt_acls_exactly(
    ferry: Ferry, smb_server: SmbServer
) -> None:
    source = SmbStorage(
        "127.0.0.1",
        smb_server.port,
        smb_server.subdirectory(inside="acl-source"),
        smb_server.user,
        smb_server.password,
    )
    folder(smb_server.share_dir, "acl-source")
    keep = MetadataPolicy(mtime=True, atime=True, uid=False, gid=False, mode=False, devices=False)
    attributes = {CREATION_NS: SMB_OLD - 10**12, FILE_ATTRIBUTES: READONLY | HIDDEN | ARCHIVE}
    source.make_dir("restricted")
    writer = source.create_file(
        "restricted/plan.txt",
        Entry("restricted/plan.txt", FILE, 4, SMB_OLD, SMB_OLD, attributes=attributes),
        keep,
    )
    writer.write(b"plan")
    assert writer.commit(exclusive=True)
    source.close()
    other_client = RawClient(smb_server)
    try:
        acls = {
            name: other_client.grant(f"acl-source/{name}", USERS)
            for name in ("restricted", "restricted/plan.txt")
        }
    finally:
        other_client.close()
    folder(smb_server.shares["other"], "acl-copy")
    arn = await task(
        ferry,
        await smb(ferry, smb_server, inside="acl-source"),
        await smb(ferry, smb_server, share="other", inside="acl-copy"),
    )

    result = await run(ferry, arn)  # SecurityDescriptorCopyFlags: OWNER_DACL, the default

    assert result["Status"] == "SUCCESS", result["Result"].get("ErrorDetail")
    copy_client = RawClient(smb_server, share="other")
    destination = SmbStorage(
        "127.0.0.1",
        smb_server.port,
        smb_server.subdirectory("other", "acl-copy"),
        smb_server.user,
        smb_server.password,
    )
    try:
        for name, acl in acls.items():
            copied = copy_client.get_sd(f"acl-copy/{name}")
            assert USERS in acl_sids(copied), name
            assert copied.get_dacl().pack() == acl.get_dacl().pack(), name
            assert str(copied.get_owner()) == str(acl.get_owner()), name
        plan = destination.stat("restricted/plan.txt")
        assert plan is not None and plan.mtime_ns == SMB_OLD
        assert plan.attributes == attributes
    finally:
        copy_client.close()
        destination.close()
    assert (Path(smb_server.shares["other"]) / "acl-copy/restricted/plan.txt").read_bytes() == (
        b"plan"
    )
    again = await run(ferry, arn)
    assert (again["Status"], again["FilesTransferred"]) == ("SUCCESS", 0)


async def test_a_file_locked_by_another_client_is_skipped_and_named(
    ferry: Ferry, smb_server: SmbServer, workdir: Path
) -> None:
    source = folder(smb_server.share_dir, "locked")
    write(source / "free.txt", "free")
    write(source / "busy.db", "held open")
    destination = workdir / "destination"
    destination.mkdir()
    arn = await task(
        ferry, await smb(ferry, smb_server, inside="locked"), await local(ferry, destination)
    )

    holder = lock(smb_server, "locked/busy.db")
    try:
        result = await run(ferry, arn)
    finally:
        holder.close()

    assert result["Status"] == "ERROR"
    assert "/busy.db" in result["Result"]["ErrorDetail"]
    assert "locked" in result["Result"]["ErrorDetail"]
    assert (destination / "free.txt").read_text() == "free"
    assert not (destination / "busy.db").exists()
    # Ferry holds nothing open once it is done: the file can be locked again at once.
    lock(smb_server, "locked/busy.db").close()


def lock(server: SmbServer, path: str) -> Any:
    """Another client's handle on `path` with no sharing: every other open fails."""
    import smbclient

    return smbclient.open_file(
        rf"\\127.0.0.1\{server.share}\{path}".replace("/", "\\"),
        mode="rb",
        share_access=None,
        port=server.port,
        username=server.user,
        password=server.password,
    )


async def test_smb_failures_end_in_launching_with_the_reason(ferry: Ferry, workdir: Path) -> None:
    with smb_server_running(("share", "doomed")) as server:
        folder(server.share_dir, "inside")
        wrong_password = await smb(ferry, server, inside="inside")
        unreachable = await smb(ferry, server, inside="inside")
        subprocess.run(
            ["smbpasswd", "-c", f"{server.directory}/smb.conf", "-s", "root"],
            input=b"Changed-1\nChanged-1\n",
            check=True,
            capture_output=True,
        )
        detail = (await launch_failure(ferry, wrong_password, workdir))["Result"]["ErrorDetail"]
        assert "logon failure" in detail.lower() and "Password" in detail
    stopped = await launch_failure(ferry, unreachable, workdir)
    assert f"127.0.0.1:{server.port}" in stopped["Result"]["ErrorDetail"]

    with smb_server_running(("share", "doomed")) as server:
        folder(server.share_dir, "inside")
        missing_share = await smb(ferry, server, share="doomed")
        missing_folder = await smb(ferry, server, inside="inside")
        os.rmdir(server.shares["doomed"])
        os.rmdir(Path(server.share_dir) / "inside")
        share = await launch_failure(ferry, missing_share, workdir)
        inside = await launch_failure(ferry, missing_folder, workdir)
    assert "doomed" in share["Result"]["ErrorDetail"]
    assert "inside" in inside["Result"]["ErrorDetail"]
    assert "Subdirectory" in inside["Result"]["ErrorDetail"]


async def test_nfs_failures_end_in_launching_with_the_reason(ferry: Ferry, workdir: Path) -> None:
    with ganesha() as server:
        folder(server.export_dir, "inside")
        missing = await nfs(ferry, server, "inside")
        unreachable = await nfs(ferry, server, "inside")
        # Removed by another NFS client (behind the server's back, ganesha answers ESTALE).
        other_client = NfsStorage("127.0.0.1", server.port, server.pseudo_path)
        other_client.remove("inside", "d")
        other_client.close()
        gone = await launch_failure(ferry, missing, workdir)
    assert "/export/inside" in gone["Result"]["ErrorDetail"]
    assert "Subdirectory" in gone["Result"]["ErrorDetail"]
    stopped = await launch_failure(ferry, unreachable, workdir)
    assert f"127.0.0.1:{server.port}" in stopped["Result"]["ErrorDetail"]


async def test_bad_file_server_locations_are_refused_and_nothing_is_created(
    ferry: Ferry, smb_server: SmbServer, nfs_server: NfsServer
) -> None:
    before = (await ferry.list_locations({}))["Locations"]
    refusals = {
        "wrong password": (
            ferry.create_location_smb,
            {
                "ServerHostname": "127.0.0.1",
                "ServerPort": smb_server.port,
                "Subdirectory": "/share",
                "User": smb_server.user,
                "Password": "not-it",
            },
            "Password",
        ),
        "no password": (
            ferry.create_location_smb,
            {"ServerHostname": "127.0.0.1", "Subdirectory": "/share", "User": "u"},
            "AuthenticationType NTLM requires User and Password: give Password.",
        ),
        "no share": (
            ferry.create_location_smb,
            {
                "ServerHostname": "127.0.0.1",
                "ServerPort": smb_server.port,
                "Subdirectory": "/nosuch",
                "User": smb_server.user,
                "Password": smb_server.password,
            },
            "nosuch",
        ),
        "no export": (
            ferry.create_location_nfs,
            {"ServerHostname": "127.0.0.1", "ServerPort": nfs_server.port, "Subdirectory": "/no"},
            "Subdirectory",
        ),
        "bad version": (
            ferry.create_location_nfs,
            {"ServerHostname": "h", "Subdirectory": "/x", "MountOptions": {"Version": "NFS5"}},
            "MountOptions.Version",
        ),
        "bad ARN": (
            ferry.create_location_efs,
            {"EfsFilesystemArn": "arn:aws:elasticfilesystem:us-east-1:1:file-system/x"},
            "EfsFilesystemArn",
        ),
        "TLS without a tunnel": (
            ferry.create_location_efs,
            {
                "EfsFilesystemArn": "arn:aws:elasticfilesystem:us-east-1:123456789012:"
                "file-system/fs-0123abcd",
                "InTransitEncryption": "TLS1_2",
            },
            "InTransitEncryption=TLS1_2 need EFS's TLS tunnel, which Ferry does not run",
        ),
        "out of the Lustre mount": (
            ferry.create_location_fsx_lustre,
            {
                "FsxFilesystemArn": "arn:aws:fsx:us-east-1:123456789012:file-system/fs-0abc",
                "Subdirectory": "/data/../../etc",
            },
            "Subdirectory: a path with '..' would leave the file system's mount",
        ),
        "not an address": (
            ferry.create_location_smb,
            {
                "ServerHostname": "h",
                "Subdirectory": "/s",
                "User": "u",
                "Password": "p",
                "DnsIpAddresses": ["dns.lan"],
            },
            "DnsIpAddresses[0]: 'dns.lan' is not an IPv4 or IPv6 address.",
        ),
        "not under /fsx": (
            ferry.create_location_fsx_open_zfs,
            {
                "FsxFilesystemArn": "arn:aws:fsx:us-east-1:123456789012:file-system/fs-0abc",
                "Protocol": {"NFS": {}},
                "Subdirectory": "/data",
            },
            "Subdirectory",
        ),
    }
    for case, (create, request, expected) in refusals.items():
        with pytest.raises(InvalidRequestException) as refused:
            await create(request)
        assert expected in refused.value.message, (case, refused.value.message)
    assert (await ferry.list_locations({}))["Locations"] == before


async def test_aws_file_systems_are_reached_by_their_protocol(
    ferry: Ferry, nfs_server: NfsServer, smb_server: SmbServer, workdir: Path
) -> None:
    """EFS and FSx for OpenZFS over NFS, FSx for Windows over SMB, FSx for Lustre beneath the
    agent's mount: each named by its ARN, each reached here on a server given by name."""
    source = workdir / "source"
    write(source / "a.txt", "to every file system")
    os.utime(source / "a.txt", ns=(OLD, OLD))
    source_arn = await local(ferry, source)
    lustre_mount = workdir / "lustre"
    folder(str(lustre_mount), "data")
    folder(nfs_server.export_dir, "efs")
    folder(smb_server.share_dir, "fsxw")
    fsx_arn = "arn:aws:fsx:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
    efs_arn = "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123abcd"
    nfs_at = {"ServerHostname": "127.0.0.1", "ServerPort": nfs_server.port}
    created = {
        "efs": await ferry.create_location_efs(
            {"EfsFilesystemArn": efs_arn, "Subdirectory": "/export/efs", **nfs_at}
        ),
        "fsxz": await ferry.create_location_fsx_open_zfs(
            {
                "FsxFilesystemArn": fsx_arn,
                "Protocol": {"NFS": {"MountOptions": {"Version": "NFS4_1"}}},
                "Subdirectory": "/fsx",
                **nfs_at,
            }
        ),
        "fsxw": await ferry.create_location_fsx_windows(
            {
                "FsxFilesystemArn": fsx_arn,
                "User": smb_server.user,
                "Password": smb_server.password,
                "Subdirectory": "/share/fsxw",
                "ServerHostname": "127.0.0.1",
                "ServerPort": smb_server.port,
            }
        ),
        "fsxl": await ferry.create_location_fsx_lustre(
            {"FsxFilesystemArn": fsx_arn, "Subdirectory": "/data", "MountPath": str(lustre_mount)}
        ),
    }
    arrived = {
        "efs": Path(nfs_server.export_dir) / "efs" / "a.txt",
        "fsxz": Path(nfs_server.fsx_dir) / "a.txt",
        "fsxw": Path(smb_server.share_dir) / "fsxw" / "a.txt",
        "fsxl": lustre_mount / "data" / "a.txt",
    }
    for kind, response in created.items():
        result = await run(ferry, await task(ferry, source_arn, response["LocationArn"]))
        assert result["Status"] == "SUCCESS", (kind, result["Result"].get("ErrorDetail"))
        assert arrived[kind].read_text() == "to every file system", kind

    described = await ferry.describe_location_efs({"LocationArn": created["efs"]["LocationArn"]})
    assert described["LocationUri"] == "efs://us-east-1.fs-0123abcd/export/efs/"
    assert described["InTransitEncryption"] == "NONE"
    windows = await ferry.describe_location_fsx_windows(
        {"LocationArn": created["fsxw"]["LocationArn"]}
    )
    assert windows["LocationUri"] == "fsxw://us-east-1.fs-0123456789abcdef0/share/fsxw/"
    assert "Password" not in windows


def test_file_server_locations_from_the_cli(
    stack: Stack, nfs_server: NfsServer, smb_server: SmbServer
) -> None:
    folder(nfs_server.export_dir, "cli")
    folder(smb_server.share_dir, "cli")

    def ok(*args: str) -> dict[str, Any]:
        result = run_cli(stack, *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    nfs_arn = ok(
        "create-location-nfs", "--server-hostname", "127.0.0.1",
        "--server-port", str(nfs_server.port), "--subdirectory", "/export/cli",
        "--mount-options", "Version=NFS4_1",
    )["LocationArn"]  # fmt: skip
    smb_arn = ok(
        "create-location-smb", "--server-hostname", "127.0.0.1",
        "--server-port", str(smb_server.port), "--subdirectory", "/share/cli",
        "--user", smb_server.user, "--password", smb_server.password,
        "--mount-options", "Version=SMB3",
    )["LocationArn"]  # fmt: skip

    nfs_described = ok("describe-location-nfs", "--location-arn", nfs_arn)
    assert nfs_described["LocationUri"] == "nfs://127.0.0.1/export/cli/"
    assert nfs_described["MountOptions"] == {"Version": "NFS4_1"}
    assert nfs_described["ServerPort"] == nfs_server.port
    smb_described = ok("describe-location-smb", "--location-arn", smb_arn)
    assert smb_described["LocationUri"] == "smb://127.0.0.1/share/cli/"
    assert smb_described["User"] == smb_server.user
    assert smb_described["AuthenticationType"] == "NTLM"
    assert "Password" not in smb_described
    assert smb_server.password not in json.dumps(smb_described)

    wrong = run_cli(stack, "update-location-smb", "--location-arn", smb_arn, "--password", "nope")
    assert wrong.returncode == 254
    assert "InvalidRequestException" in wrong.stderr and "logon failure" in wrong.stderr
    ok("update-location-smb", "--location-arn", smb_arn, "--mount-options", "Version=SMB2")
    assert ok("describe-location-smb", "--location-arn", smb_arn)["MountOptions"] == {
        "Version": "SMB2"
    }
    kerberos = run_cli(
        stack, "create-location-smb", "--server-hostname", "127.0.0.1",
        "--server-port", str(smb_server.port), "--subdirectory", "/share/cli",
        "--authentication-type", "KERBEROS", "--kerberos-principal", "ferry@EXAMPLE.COM",
    )  # fmt: skip
    assert kerberos.returncode == 254
    assert (
        "AuthenticationType KERBEROS requires KerberosPrincipal, KerberosKeytab and "
        "KerberosKrb5Conf: give KerberosKeytab, KerberosKrb5Conf." in kerberos.stderr
    )


async def test_smb_to_s3_and_back_to_smb_keeps_times_with_the_default_posix_metadata(
    ferry: Ferry, smb_server: SmbServer, moto_s3: S3Server
) -> None:
    source = folder(smb_server.share_dir, "to-s3")
    write(source / "docs" / "memo.txt", "for the archive")
    os.utime(source / "docs" / "memo.txt", ns=(OLD, OLD))
    bucket = moto_s3.bucket("from-smb")
    s3_arn = (
        await ferry.create_location_s3(
            {"S3BucketArn": f"arn:aws:s3:::{bucket}", "EndpointUrl": moto_s3.endpoint}
        )
    )["LocationArn"]

    up = await run(ferry, await task(ferry, await smb(ferry, smb_server, inside="to-s3"), s3_arn))

    assert up["Status"] == "SUCCESS", up["Result"].get("ErrorDetail")
    head = moto_s3.client().head_object(Bucket=bucket, Key="docs/memo.txt")
    assert head["Metadata"]["file-mtime"] == f"{SMB_OLD}ns"
    assert head["Metadata"]["file-owner"] == head["Metadata"]["file-group"] == "65534"
    assert head["Metadata"]["file-permissions"] == "0100644"

    back = folder(smb_server.shares["other"], "from-s3")
    down = await run(
        ferry, await task(ferry, s3_arn, await smb(ferry, smb_server, "other", "from-s3"))
    )

    assert down["Status"] == "SUCCESS", down["Result"].get("ErrorDetail")
    assert (back / "docs" / "memo.txt").read_text() == "for the archive"
    assert os.stat(back / "docs" / "memo.txt").st_mtime_ns == SMB_OLD
