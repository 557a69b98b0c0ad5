"""A real Synapse for the tests: installed from PyPI into its own virtual environment, SQLite,
registration by shared secret, rate limits raised so the tests measure our code, not Synapse's budget.

`SYNAPSE_VENV` points at an existing environment; otherwise `.venv-synapse` in the repository
is created on first use (a few minutes, once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shared.settings import REPO_ROOT

SYNAPSE_SPEC = "matrix-synapse>=1.100,<2"
SECRET = "linju-test-registration-secret"
SERVER_NAME = "linju.test"
_LOOSE = {"per_second": 10000, "burst_count": 10000}


def synapse_python() -> Path:
    venv = Path(os.environ.get("SYNAPSE_VENV") or REPO_ROOT / ".venv-synapse")
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import synapse.app.homeserver"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", SYNAPSE_SPEC], check=True, capture_output=True,
                   timeout=1200)
    subprocess.run(probe, check=True, capture_output=True)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, port: int) -> Path:
    config = {
        "server_name": SERVER_NAME,
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                       "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "log_config": str(directory / "log.yaml"),
        "media_store_path": str(directory / "media"),
        "registration_shared_secret": SECRET,
        "report_stats": False,
        "macaroon_secret_key": "linju-test-macaroon",
        "form_secret": "linju-test-form",
        "signing_key_path": str(directory / "signing.key"),
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "enable_metrics": False,
        "presence": {"enabled": False},
        # Test accounts: 2^4 bcrypt rounds instead of 2^12, or every registration and login of every
        # test's world costs about a second of CPU.
        "bcrypt_rounds": 4,
        "rc_message": _LOOSE,
        "rc_registration": _LOOSE,
        "rc_login": {"address": _LOOSE, "account": _LOOSE, "failed_attempts": _LOOSE},
        "rc_joins": {"local": _LOOSE, "remote": _LOOSE},
        "rc_joins_per_room": _LOOSE,
        "rc_invites": {"per_room": _LOOSE, "per_user": _LOOSE, "per_issuer": _LOOSE},
        "rc_room_creation": _LOOSE,
        "rc_3pid_validation": _LOOSE,
        "rc_admin_redaction": _LOOSE,
    }
    (directory / "log.yaml").write_text(json.dumps({
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(directory / "homeserver.log"),
                              "formatter": "plain"}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }))
    path = directory / "homeserver.yaml"
    path.write_text(json.dumps(config))   # JSON is YAML
    return path


@dataclass
class Homeserver:
    url: str
    process: subprocess.Popen
    directory: Path

    def register(self, localpart: str, password: str, admin: bool = False) -> str:
        """Register a user with the shared secret (Synapse's admin registration API); returns the Matrix id."""
        base = f"{self.url}/_synapse/admin/v1/register"
        nonce = json.load(urllib.request.urlopen(base, timeout=10))["nonce"]
        mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        body = json.dumps({"nonce": nonce, "username": localpart, "password": password, "admin": admin,
                           "mac": mac.hexdigest()}).encode()
        request = urllib.request.Request(base, data=body, headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(request, timeout=10))["user_id"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(directory: Path) -> Homeserver:
    python = synapse_python()
    port = free_port()
    config = write_config(directory, port)
    subprocess.run([str(python), "-m", "synapse.app.homeserver", "-c", str(config), "--generate-keys"],
                   check=True, capture_output=True, cwd=directory, timeout=120)
    log = open(directory / "stdout.log", "wb")
    process = subprocess.Popen([str(python), "-m", "synapse.app.homeserver", "-c", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Synapse exited with {process.returncode}: "
                               + (directory / "stdout.log").read_text()[-2000:])
        try:
            urllib.request.urlopen(f"{url}/_matrix/client/versions", timeout=2)
            return Homeserver(url, process, directory)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("Synapse did not answer within 120 s")
