"""SyncEvolution (the Debian 2.0.0 client) against the live server, one HOME per handset.

The 2.0.0 client crashes in every HTTP sync without `curlfix.c` (see docs/sync.md); the
session fixture compiles it with gcc. Tests skip, saying why, when the client or gcc is
missing (`scripts/install-apt-packages apt-packages.txt` installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SYNCEVOLUTION = shutil.which("syncevolution")


@pytest.fixture(scope="session")
def curlfix(tmp_path_factory) -> Path:
    if SYNCEVOLUTION is None:
        pytest.skip("syncevolution is not installed (apt-packages.txt lists it)")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: needed to build the curl fix for SyncEvolution")
    out = tmp_path_factory.mktemp("curlfix") / "curlfix.so"
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-o", str(out), str(HERE / "curlfix.c"), "-ldl"],
        check=True,
        capture_output=True,
    )
    return out


@dataclass
class Handset:
    """One simulated handset: its own HOME, configuration and vCard folder."""

    home: Path
    curlfix: Path
    url: str
    username: str
    password: str
    device_id: str
    version: str = "1.2"
    wbxml: bool = False
    auth: str = "basic"
    vcard: str = "3.0"
    max_msg_size: int = 0

    @property
    def folder(self) -> Path:
        return self.home / "db"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_"))}
        env.update(HOME=str(self.home), LD_PRELOAD=str(self.curlfix), LANG="C.UTF-8")
        env.pop("DISPLAY", None)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [SYNCEVOLUTION, "--daemon=no", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"syncevolution {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc

    def configure(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fmt = "text/vcard" if self.vcard == "3.0" else "text/x-vcard"
        props = [
            f"syncURL={self.url}",
            f"username={self.username}",
            f"password={self.password}",
            "keyring=no",
            f"deviceId={self.device_id}",
            f"SyncMLVersion={self.version}",
            f"enableWBXML={1 if self.wbxml else 0}",
            f"clientAuthType={'md5' if self.auth == 'md5' else 'basic'}",
            "preventSlowSync=0",
            "retryDuration=20",
            "retryInterval=5",
        ]
        if self.max_msg_size:
            props.append(f"maxMsgSize={self.max_msg_size}")
        args = ["--configure", "--template", "SyncEvolution"]
        for p in props:
            args += ["--sync-property", p]
        for p in (
            "backend=file",
            f"databaseFormat={fmt}",
            f"database=file://{self.folder}",
            "uri=contacts",
            "sync=two-way",
        ):
            args += ["--source-property", f"addressbook/{p}"]
        if self.vcard == "2.1":
            args += ["--source-property", "addressbook/syncFormat=text/x-vcard",
                     "--source-property", "addressbook/forceSyncFormat=1"]  # fmt: skip
        self.run(*args, "phone", "addressbook")

    def sync(self, mode: str = "two-way", *, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("--sync", mode, "phone", "addressbook", check=check)

    def write(self, name: str, vcard: str) -> Path:
        path = self.folder / name
        path.write_text(vcard.replace("\r\n", "\n").replace("\n", "\r\n"))
        return path

    def cards(self) -> dict[str, str]:
        return {p.name: p.read_text() for p in sorted(self.folder.iterdir()) if p.is_file()}
