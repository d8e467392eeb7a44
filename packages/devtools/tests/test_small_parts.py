"""Waiting, ports, processes, commands, users and signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools import commands, paths
from devtools.errors import CommandError, PortInUseError, WaitTimeout
from devtools.ports import accepts_connections, free_port, port_is_free, require_free_port
from devtools.processes import ProcessRef, process_start_time, spawn, tail, terminate
from devtools.signals import Terminated, termination_raises
from devtools.users import server_user
from devtools.waiting import wait_until


def test_wait_until_returns_elapsed_time_once_true():
    deadline = time.monotonic() + 0.05
    elapsed = wait_until(lambda: time.monotonic() >= deadline, 5, interval=0.001)
    assert 0.04 <= elapsed < 5


def test_wait_until_timeout_says_what_and_shows_detail():
    with pytest.raises(WaitTimeout, match="waiting for the moon") as raised:
        wait_until(lambda: False, 0.02, what="the moon", on_timeout=lambda: "log: nothing")
    assert "log: nothing" in str(raised.value)


def test_free_port_is_free_until_taken():
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free(port)
        assert accepts_connections(port)
        with pytest.raises(PortInUseError, match=f"port {port} .* choose another port with X"):
            require_free_port(port, what="nginx", setting="X")
    require_free_port(port, what="nginx", setting="X")
    assert not accepts_connections(port)


def test_commands_return_output_or_raise_with_it():
    assert commands.run([sys.executable, "-c", "print('hi')"]).strip() == "hi"
    with pytest.raises(CommandError) as raised:
        commands.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    assert raised.value.returncode == 3
    assert "boom" in str(raised.value)


def test_spawned_process_is_terminated_with_its_group(tmp_path: Path):
    log = tmp_path / "child.log"
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"
    )
    child = spawn([sys.executable, "-c", script], log_path=log)
    ref = ProcessRef.of(child.pid)
    wait_until(lambda: "started" in log.read_text(), 10, what="child to start")
    assert ref.alive()
    terminate(ref, popen=child)
    assert child.poll() is not None
    assert not ref.alive()
    terminate(ref, popen=child)  # already gone: no error


def test_terminate_escalates_to_sigkill(tmp_path: Path):
    log = tmp_path / "stubborn.log"
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    child = spawn([sys.executable, "-c", script], log_path=log)
    wait_until(lambda: "ready" in log.read_text(), 10, what="child to start")
    terminate(ProcessRef.of(child.pid), timeout=0.2, popen=child)
    assert child.returncode == -signal.SIGKILL


def test_process_ref_never_matches_a_recycled_pid():
    ref = ProcessRef.of(os.getpid())
    assert ref.alive()
    assert not ProcessRef(ref.pid, ref.start_time + 1).alive()
    assert ProcessRef.from_json(ref.to_json()) == ref
    assert process_start_time(2**22 + 7) is None
    with pytest.raises(ProcessLookupError):
        ProcessRef.of(2**22 + 7)


def test_tail_shows_last_lines_or_says_there_is_no_log(tmp_path: Path):
    log = tmp_path / "x.log"
    log.write_text("\n".join(str(n) for n in range(50)))
    assert tail(log, 2).endswith("48\n49")
    assert "no log" in tail(tmp_path / "missing.log")


def test_termination_raises_inside_the_block_only():
    def terminated_while_sleeping() -> None:
        with termination_raises():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)

    with pytest.raises(Terminated):
        terminated_while_sleeping()
    assert signal.getsignal(signal.SIGTERM) is not None


def test_a_sigterm_runs_finally_blocks(tmp_path: Path):
    marker = tmp_path / "cleaned"
    script = (
        "import time, sys\n"
        "from devtools.signals import install_termination_handler\n"
        "install_termination_handler()\n"
        "try:\n"
        "    print('ready', flush=True); time.sleep(30)\n"
        "finally:\n"
        f"    open({str(marker)!r}, 'w').close()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.terminate()
    child.wait(timeout=10)
    assert marker.exists()


def test_server_user_is_unprivileged_and_can_reach_public_folders(tmp_path: Path):
    user = server_user()
    if os.geteuid() == 0:
        assert user.uid != 0
        assert user.popen_kwargs()["user"] == user.uid
        private = tmp_path / "private"
        private.mkdir(mode=0o700)
        assert not user.can_traverse(private / "x")
    else:
        assert user.popen_kwargs() == {}
    assert user.can_traverse(Path("/usr/bin"))
    if os.geteuid() == 0:
        with pytest.raises(LookupError, match="none of the accounts"):
            server_user(("no-such-account-xyz",))


def test_project_root_is_found_from_below(project: Path):
    nested = project / "a" / "b"
    nested.mkdir(parents=True)
    assert paths.find_project_root(nested) == project
    assert paths.state_dir(project) == project / ".devtools"
    with pytest.raises(FileNotFoundError, match="no project root"):
        paths.find_project_root(Path("/"))


def test_scratch_is_tmpfs_when_present():
    if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        assert paths.scratch_root() == Path("/dev/shm")


def test_load_generator_counts_refused_connections_and_error_statuses():
    from devtools.loadgen import LoadResult, run_load

    refused = run_load(free_port(), "/", seconds=0.2, processes=1, connections=1)
    assert refused.requests == 0
    assert refused.errors > 0
    assert refused.rate == 0.0
    assert refused.percentile(0.99) == 0.0
    assert "0 requests/s" in refused.summary()
    empty = LoadResult(0.0)
    assert empty.rate == 0.0


def test_load_generator_counts_non_2xx_answers_as_errors(tmp_path: Path):
    import http.server
    import threading

    from devtools.loadgen import LoadResult, _connection_loop

    class Closing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.send_header("Connection", "close")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Closing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = LoadResult(0.2)
        _connection_loop(
            server.server_address[1], "/", time.perf_counter() + 0.2, result, threading.Lock()
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.requests == 0
    assert result.errors > 0


def test_fast_cache_refuses_a_folder_others_can_write(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(paths, "scratch_root", lambda: tmp_path)
    monkeypatch.setattr(paths, "cache_root", lambda: tmp_path / "disk-cache")
    shared = tmp_path / f"devtools-cache-{os.geteuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    assert paths.fast_cache_root() == tmp_path / "disk-cache"
    shared.chmod(0o755)
    assert paths.fast_cache_root() == shared


@pytest.mark.parametrize("unignore", [False, True])
def test_an_inherited_ignored_ctrl_c_is_undone_for_children(unignore: bool):
    child_sees = (
        "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    )
    script = (
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job inherits it\n"
        "from devtools.signals import unignore_interrupts\n"
        f"if {unignore}: unignore_interrupts()\n"
        f"print(subprocess.run([sys.executable, '-c', {child_sees!r}], capture_output=True,"
        " text=True).stdout.strip())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == str(unignore), done.stderr
