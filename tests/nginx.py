"""nginx in front of test servers: Debian's binary running deploy/nginx-portico.conf itself (its
instances' ports and its own port put in), with a config, a prefix, a PID file and logs of its own
in the test's folder, in the foreground as the test's subprocess. Never the system's nginx service.

`make test` installs nginx when it is missing (as root); otherwise these tests are skipped, except
under CI=true, where they fail. bench/scale_out.py renders its nginx with the same functions."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

SITE = Path(__file__).parent.parent / "deploy" / "nginx-portico.conf"
INSTANCE_LINE = re.compile(r"^([ \t]*)server 127\.0\.0\.1:\d+ (.*)$", re.MULTILINE)
# The header the tests read to know which instance answered; only the tests' nginx sends it.
UPSTREAM_HEADER = "X-Test-Upstream"


def find_nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def nginx_binary() -> str:
    """nginx's path, or the test is skipped (failed under CI=true)."""
    import pytest

    from tests.conftest import IN_CI

    found = find_nginx()
    if found is None:
        problem = "nginx is not installed (as root: apt-get install nginx; `make test` does it)"
        if IN_CI:
            pytest.fail(f"{problem}; CI=true makes the nginx tests mandatory.")
        pytest.skip(problem)
    return found


def site_for(instance_ports: list[int], listen_port: int) -> str:
    """The deployed site, sending to these instances and listening on this loopback port."""
    text = SITE.read_text()
    lines = INSTANCE_LINE.findall(text)
    assert lines, f"{SITE} has no `server 127.0.0.1:PORT ...` line in its upstream block"
    indent, options = lines[0]
    ours = "\n".join(f"{indent}server 127.0.0.1:{port} {options}" for port in instance_ports)
    text = INSTANCE_LINE.sub("", text, count=len(lines) - 1)
    text = INSTANCE_LINE.sub(ours, text)
    text, listens = re.subn(r"^[ \t]*listen .*;$", "", text, flags=re.MULTILINE)
    assert listens, f"{SITE} has no listen line"
    return text.replace("server {", f"server {{\n    listen 127.0.0.1:{listen_port};", 1)


def main_config(folder: Path) -> str:
    # As root nginx would run its worker as `nobody`, who cannot enter the test's private folder.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
    access_log {folder / "access.log"};
{temp}
    add_header {UPSTREAM_HEADER} $upstream_addr always;
    include {folder / "portico.conf"};
}}
"""


@contextmanager
def nginx_server(instance_urls: list[str], folder: Path) -> Iterator[str]:
    """Yields nginx's base URL; stops nginx (by its own PID) afterwards."""
    binary = nginx_binary()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ports = [int(url.rsplit(":", 1)[1]) for url in instance_urls]
    (folder / "portico.conf").write_text(site_for(ports, port))
    (folder / "nginx.conf").write_text(main_config(folder))
    config = ["-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    checked = subprocess.run([binary, *config, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t refused the site:\n{checked.stderr}"
    with (folder / "nginx.out").open("wb") as out:
        process = subprocess.Popen([binary, *config, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start:\n{(folder / 'error.log').read_text()}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
