"""Several Glassbox replicas behind nginx with sticky sessions, here: python -m tools.replicas [--replicas 2]

Starts N Streamlit servers of the app and Debian's nginx running tools/deploy/glassbox.nginx.conf — the file a
deployment drops into /etc/nginx/conf.d/ — with only its listen port, its lines per replica and its log path filled
in for this run, and keeps them up until Ctrl-C. The load test runs through it (python -m tools.load_test
--replicas 1,2), and tests/test_replicas.py checks the stickiness and the balance with it. The replicas share one
server.cookieSecret, as a real deployment's replicas must (Streamlit signs its auth cookies with it).
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.bench_browser import free_port, launch_server, wait_healthy

CONF = Path(__file__).resolve().parent / "deploy" / "glassbox.nginx.conf"
PER_REPLICA = "# one per replica"  # marks the conf's lines written once per replica
WRAPPER = """pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/glassbox.conf;
}}
"""


@dataclass
class Replicas:
    url: str  # nginx, the one address learners open
    servers: list[subprocess.Popen]
    ports: list[int]
    access_log: Path  # one line per request: route=<cookie sent> upstream=<replica> served=<cookie set>


def nginx_conf(listen: int, ports: list[int], log: Path) -> str:
    """The deployable file with this run's listen port, replicas and log path; nothing else changed.

    Each line the file marks "one per replica" is its first replica's (route r1, port 8501): it is written here once
    per replica, numbered, in place of itself and the file's own lines of the same shape after it (its second
    replica's)."""
    lines, template = [], None
    for line in CONF.read_text().splitlines(keepends=True):
        if template is not None and _shape(line) == _shape(template):
            continue
        template = line if PER_REPLICA in line else None
        lines += [line] if template is None else [_numbered(line, i, port) for i, port in enumerate(ports, 1)]
    text = re.sub(r"listen \d+;", f"listen 127.0.0.1:{listen};", "".join(lines))
    return text.replace("/var/log/nginx/glassbox.log", str(log))


def _shape(line: str) -> list[str]:
    return re.sub(r"\d+", "0", line.split(PER_REPLICA)[0]).split()


def _numbered(line: str, i: int, port: int) -> str:
    """The first replica's line for replica i (from 1) on `port`; the marker stays on the first one only."""
    if i > 1:
        line = line.replace("  " + PER_REPLICA, "")
    line = re.sub(r"(?<![A-Za-z0-9])r1\b", f"r{i}", line)
    return re.sub(r"(?<!\d)8501(?!\d)", str(port), line)


@contextmanager
def replicas(n: int = 2, nginx: str | None = None) -> Iterator[Replicas]:
    """N replicas behind nginx on free ports of this machine, stopped on exit."""
    nginx = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
    tmp = Path(tempfile.mkdtemp(prefix="glassbox-nginx-"))
    tmp.chmod(0o755)  # nginx's workers (user nobody when started as root) write their temp files here
    ports, listen = [free_port() for _ in range(n)], free_port()
    secret = secrets.token_hex(16)
    servers = [launch_server(port, {"STREAMLIT_SERVER_COOKIE_SECRET": secret}) for port in ports]
    log = tmp / "access.log"
    (tmp / "glassbox.conf").write_text(nginx_conf(listen, ports, log))
    (tmp / "nginx.conf").write_text(WRAPPER.format(tmp=tmp))
    proxy = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}", [])
        url = f"http://127.0.0.1:{listen}"
        wait_healthy(url, [])
        yield Replicas(url, servers, ports, log)
    finally:
        for proc in [proxy, *servers]:
            proc.terminate()
        for proc in [proxy, *servers]:
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)
    with replicas(args.replicas) as setup:
        print(f"{args.replicas} replicas (ports {', '.join(map(str, setup.ports))}) behind nginx: {setup.url}  "
              "(Ctrl-C stops them)", flush=True)
        try:
            while all(proc.poll() is None for proc in setup.servers):
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
