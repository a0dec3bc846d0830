"""Beyond one server: the deployable nginx file (tools/deploy/glassbox.nginx.conf) in front of two real replicas of
the app, through Debian's nginx (tools.replicas). Learners open pages over Streamlit's own websocket protocol
(tools.session): every request of one learner reaches one replica, learners spread over both, and a page's script
run finishes through the balancer.

Skipped only when nginx is missing and GLASSBOX_REQUIRE_BROWSER is unset; .ci/run installs nginx and sets it.
"""

import asyncio
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from tools.replicas import CONF, nginx_conf

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def test_the_deployable_file_is_sticky_on_a_cookie_and_carries_the_websocket():
    text = CONF.read_text()
    assert re.search(r"upstream glassbox \{\s*hash \$glassbox_route consistent;", text)
    assert "map $cookie_glassbox_route $glassbox_route" in text and "$request_id" in text
    assert "Set-Cookie \"glassbox_route=$glassbox_route" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text and "ip_hash" not in text.split("#")[0]
    rewritten = nginx_conf(9000, [9001, 9002, 9003], Path("/x/access.log"))
    assert re.findall(r"^\s*server 127\.0\.0\.1:(\d+);", rewritten, re.M) == ["9001", "9002", "9003"]
    assert "listen 127.0.0.1:9000;" in rewritten and "/x/access.log" in rewritten
    strip = lambda t: re.sub(r"listen [^;]+;|server 127[^;]+;|access_log [^;]+;", "", t).split()  # noqa: E731
    assert strip(rewritten) == strip(text)  # nothing else of the deployable file changed


def routes(log: str) -> dict[str, set[str]]:
    seen = defaultdict(set)
    for route, upstream in re.findall(r"route=(\S+) upstream=(\S+)", log):
        seen[route].add(upstream)
    return seen


@pytest.mark.slow  # two app servers behind nginx
@pytest.mark.skipif(not Path(NGINX).exists() and os.environ.get("GLASSBOX_REQUIRE_BROWSER") != "1",
                    reason="Debian's nginx is not installed")
def test_two_replicas_behind_nginx_keep_each_learner_on_one_replica():
    from tools.replicas import replicas
    from tools.session import visit

    async def learners(url: str) -> list:
        fresh = await asyncio.gather(*(visit(url, "", f"model=tiny-stories-1m&text=learner {i}") for i in range(3)))
        again = await asyncio.gather(*(visit(url, "attention", f"model=tiny-stories-1m&text=learner {i}",
                                             cookies=v.cookies) for i, v in enumerate(fresh)))
        chosen = await asyncio.gather(*(visit(url, "", "model=tiny-stories-1m&text=hi",
                                              cookies={"glassbox_route": f"learner-{i}"}) for i in range(12)))
        return [*fresh, *again, *chosen]

    with replicas(2) as setup:
        visits = asyncio.run(learners(setup.url))
        log = setup.access_log.read_text()
    assert [v.status for v in visits] == ["finished"] * len(visits), [v.status for v in visits]
    assert all(v.sent_bytes > 1000 for v in visits)
    fresh_routes = [v.cookies["glassbox_route"] for v in visits[:3]]
    assert len(set(fresh_routes)) == 3  # nginx gave each new learner its own route cookie
    seen = routes(log)
    for route in fresh_routes + [f"learner-{i}" for i in range(12)]:
        assert len(seen[route]) == 1, (route, seen[route])  # page GETs and websockets of one learner: one replica
    replicas_used = {next(iter(seen[f"learner-{i}"])) for i in range(12)}
    assert replicas_used == {f"127.0.0.1:{port}" for port in setup.ports}  # twelve learners spread over both
