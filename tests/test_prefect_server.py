"""claimwire's own throwaway Prefect API server: it holds its port from before it starts, so no other
run can take the port or answer its health check, and it does not outlive the command that started it."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
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


def test_servers_starting_at_once_on_a_new_prefect_home_all_start(tmp_path):
    """Commands started together on a fresh machine: each starts a server on the same new PREFECT_HOME,
    whose database the first start creates. Unserialised, the starts migrated it together and some
    failed ("duplicate column name"); every one starts and answers."""
    script = (
        "import httpx\n"
        "from flows.prefect_server import throwaway_prefect_server\n"
        "with throwaway_prefect_server() as url:\n"
        "    print(url, httpx.get(url + '/health', timeout=10).json(), flush=True)\n"
    )
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    commands = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    outputs = [c.communicate(timeout=300) for c in commands]
    assert [c.returncode for c in commands] == [0] * 4, [err[-800:] for _, err in outputs]
    answers = [out.decode().split() for out, _ in outputs]
    assert all(answer[1] == "True" for answer in answers) and len({answer[0] for answer in answers}) == 4


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


def test_ctrl_c_on_an_ingest_records_the_run_failed_and_leaves_no_server_behind(tmp_path, http_server):
    """Ctrl-C reaches the command, not its server (a session of its own): the command still reports
    how the run ended, records it as failed, stops the server and exits at once."""
    from tests.fixtures.cli import ingest_command
    from tests.fixtures.site import atom_feed
    from tests.test_operations import counts, quiet_settings

    feed = http_server.add("/slow.xml", body=atom_feed("S", http_server.base, []), delay_s=60)
    db = f"sqlite:///{tmp_path / 'interrupted.db'}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    command = subprocess.Popen(
        ingest_command(quiet_settings(tmp_path, [feed]), db),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal gives a foreground command
    )
    try:
        deadline = time.monotonic() + 120
        while not http_server.hits("/slow.xml"):  # the run is polling its feed
            assert command.poll() is None and time.monotonic() < deadline, "the run never polled its feed"
            time.sleep(0.2)
        (server,) = [
            p for p in psutil.Process(command.pid).children() if "flows.prefect_server" in " ".join(p.cmdline())
        ]
        os.killpg(command.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert command.wait(timeout=60) == 130
        server.wait(timeout=30)
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
    assert counts(db, "SELECT kind, status FROM v_runs") == [("ingest", "failed")]


def test_reporting_to_reaches_prefects_threads_and_started_processes_and_is_undone_after():
    """Inside ``reporting_to`` a thread of Prefect's (which sees no copy of the caller's context) and a
    process the command starts both find the run's API; after it neither does. Run in a process of its
    own, so this test's global settings stay as they were."""
    script = (
        "import json, subprocess, sys, threading\n"
        "from prefect.settings import get_current_settings\n"
        "from flows.prefect_server import reporting_to, throwaway_prefect_server\n"
        "def in_a_thread():\n"
        "    seen = []\n"
        "    thread = threading.Thread(target=lambda: seen.append(get_current_settings().api.url))\n"
        "    thread.start(); thread.join()\n"
        "    return seen[0]\n"
        "def in_a_process():\n"
        "    code = 'from prefect.settings import get_current_settings; print(get_current_settings().api.url)'\n"
        "    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout.strip()\n"
        "before = in_a_thread()\n"
        "with throwaway_prefect_server() as url, reporting_to(url):\n"
        "    inside = {'url': url, 'thread': in_a_thread(), 'process': in_a_process()}\n"
        "print(json.dumps({'before': before, 'inside': inside, 'after': [in_a_thread(), in_a_process()]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_LOGGING_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    url = seen["inside"]["url"]
    assert url.startswith("http://127.0.0.1:")
    assert seen["before"] != url
    assert seen["inside"]["thread"] == url
    assert seen["inside"]["process"] == url
    assert seen["after"] == [seen["before"], str(seen["before"])]  # as it was: None unless a profile sets one
