"""claimwire's own throwaway Prefect API server: it holds its port from before it starts, so no other
run can take the port or answer its health check, and it does not outlive the command that started it."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from flows.prefect_server import throwaway_prefect_server


def test_throwaway_server_holds_its_port_and_answers_as_prefect():
    with throwaway_prefect_server() as url:
        port = urlsplit(url).port
        assert urlsplit(url).hostname == "127.0.0.1"
        # Another run starting a server on this port could not bind it.
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
        assert httpx.get(f"{url}/health", timeout=10).json() is True
        assert httpx.get(f"{url}/admin/version", timeout=10).status_code == 200
        server = [p for p in psutil.Process().children() if "flows.prefect_server" in " ".join(p.cmdline())]
        assert len(server) == 1
        # What listens on the port is the server this process started, not some other run's.
        listening = [c.laddr for c in server[0].net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", port)]
    assert not server[0].is_running() or server[0].status() == psutil.STATUS_ZOMBIE
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=5)


def test_throwaway_server_stops_itself_when_its_command_is_killed_outright():
    """SIGKILL leaves the command no chance to stop its server; the server notices and stops."""
    command = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from flows.prefect_server import throwaway_prefect_server\n"
            "with throwaway_prefect_server() as url:\n"
            "    print(url, flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"},
    )
    try:
        url = command.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        (server,) = psutil.Process(command.pid).children()
        assert "flows.prefect_server" in " ".join(server.cmdline())
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=10)
        server.wait(timeout=30)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=5)
    finally:
        command.kill()
        for child in psutil.Process().children(recursive=True):
            if "flows.prefect_server" in " ".join(child.cmdline()):
                child.kill()
