"""``llm-mux serve`` over its life: disconnects, SIGTERM drain, load, limits, start-up checks."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx2 as httpx
import openai
import pytest

from tests.conftest import llm_mux_executable
from tests.fakes.fixtures import read_pid, wait_gone
from tests.serve_support import KEY, Served, serving

BODY = '{{"model": "{model}", "messages": [{{"role": "user", "content": "x"}}]}}'


def hang_config(fake_bin: Path, pidfile: Path, grace: str = "10s") -> str:
    return f"""
[serve]
grace = "{grace}"

[backends.hang]
command = "{fake_bin}/fake-hang"
args = ["{pidfile}"]

[backends.slow]
type = "mock"
delay = 1500
response = "slow answer"

[backends.quick]
type = "mock"
delay = 200
response = "quick"
"""


def raw_request(served: Served, model: str) -> socket.socket:
    """Send a chat request on a raw socket and leave it open (the caller closes it)."""
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    body = BODY.format(model=model).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    return sock


def in_flight(served: Served) -> float:
    text = httpx.get(served.url + "/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("llm_mux_requests_in_flight "))
    return float(line.split()[1])


def wait_for(predicate, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_client_disconnect_kills_the_cli_process_group(fake_bin: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "hang.pid"
    with serving(hang_config(fake_bin, pidfile), tmp_path) as served:
        sock = raw_request(served, "hang")
        grandchild = read_pid(pidfile)
        started = time.monotonic()
        sock.close()
        assert wait_gone(grandchild, within=4.0), "the backend's process group outlived the client"
        assert time.monotonic() - started < 4.0
        wait_for(lambda: "status=499" in served.stderr())
        assert served.proc.poll() is None  # the server keeps serving
        assert httpx.get(served.url + "/health").status_code == 200


def test_sigterm_drains_requests_in_flight_and_exits_0(fake_bin: Path, tmp_path: Path) -> None:
    with serving(hang_config(fake_bin, tmp_path / "p"), tmp_path) as served:
        result: dict[str, httpx.Response] = {}

        def call() -> None:
            body = BODY.format(model="slow")
            result["r"] = httpx.post(served.url + "/v1/chat/completions", content=body, timeout=30)

        thread = threading.Thread(target=call)
        thread.start()
        wait_for(lambda: in_flight(served) == 1.0)
        served.signal(signal.SIGTERM)
        wait_for(lambda: "finishing the requests in flight" in served.stderr())
        with pytest.raises(httpx.ConnectError):
            httpx.get(served.url + "/health", timeout=2)  # no longer accepting
        thread.join(20)
        assert result["r"].status_code == 200
        assert result["r"].json()["choices"][0]["message"]["content"] == "slow answer"
        assert served.proc.wait(10) == 0


def test_grace_over_cancels_and_kills_the_backend(fake_bin: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "hang.pid"
    with serving(hang_config(fake_bin, pidfile, grace="1s"), tmp_path) as served:
        sock = raw_request(served, "hang")
        grandchild = read_pid(pidfile)
        started = time.monotonic()
        served.signal(signal.SIGTERM)
        assert served.proc.wait(10) == 0
        assert time.monotonic() - started < 1 + 4.0
        assert wait_gone(grandchild, within=4.0)
        sock.close()
        assert "Traceback" not in served.stderr()


def test_second_signal_cancels_at_once(fake_bin: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "hang.pid"
    with serving(hang_config(fake_bin, pidfile, grace="60s"), tmp_path) as served:
        sock = raw_request(served, "hang")
        grandchild = read_pid(pidfile)
        served.signal(signal.SIGTERM)
        wait_for(lambda: "finishing the requests in flight" in served.stderr())
        started = time.monotonic()
        served.signal(signal.SIGINT)
        assert served.proc.wait(10) == 0
        assert wait_gone(grandchild, within=4.0)
        assert time.monotonic() - started < 6.0
        sock.close()
        assert "Traceback" not in served.stderr()


def test_200_concurrent_requests_all_succeed(fake_bin: Path, tmp_path: Path) -> None:
    with serving(hang_config(fake_bin, tmp_path / "p"), tmp_path) as served:

        async def main() -> list[str]:
            client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="-", max_retries=0)
            async with client:
                calls = [
                    client.chat.completions.create(
                        model="quick", messages=[{"role": "user", "content": str(i)}]
                    )
                    for i in range(200)
                ]
                answers = await asyncio.gather(*calls)
            return [a.choices[0].message.content or "" for a in answers]

        started = time.monotonic()
        answers = asyncio.run(main())
        wall = time.monotonic() - started
        assert answers == ["quick"] * 200
        assert wall < 20, wall  # 0.2 s each, all at once: well under a second when idle


def test_body_over_the_limit_is_413_before_it_is_read(tmp_path: Path) -> None:
    config = '[serve]\nmax_body_mb = 0.01\n[backends.m]\ntype = "mock"\n'
    with serving(config, tmp_path) as served:
        big = '{"model": "m", "messages": [{"role": "user", "content": "' + "x" * 20_000 + '"}]}'
        response = httpx.post(served.url + "/v1/messages", content=big)
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "request_too_large"
        assert "max_body_mb" in response.json()["error"]["message"]
        # announced as 10 GB: refused from the headers alone, with no body sent at all
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 10000000000\r\n\r\n"
            )
            assert sock.recv(100).startswith(b"HTTP/1.1 413")
        ok = '{"model": "m", "messages": [{"role": "user", "content": "small"}]}'
        assert httpx.post(served.url + "/v1/chat/completions", content=ok).status_code == 200


def test_non_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[backends.m]\ntype = "mock"\n')
    proc = subprocess.run(
        [llm_mux_executable(), "serve", "--config", str(config), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "[serve] api_keys" in proc.stderr and "--no-auth" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_key_variable_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[serve]\napi_keys = ["${NOT_SET_ANYWHERE}"]\n[backends.m]\ntype = "mock"\n')
    proc = subprocess.run(
        [llm_mux_executable(), "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "NOT_SET_ANYWHERE" in proc.stderr


def test_serve_table_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[serve]\nprot = 5\n[backends.m]\ntype = "mock"\n')
    proc = subprocess.run(
        [llm_mux_executable(), "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "prot" in proc.stderr and "port" in proc.stderr


def test_models_table_limits_what_is_exposed(tmp_path: Path) -> None:
    config = (
        '[serve]\nmodels = ["b", "r"]\n[backends.a]\ntype = "mock"\n[backends.b]\ntype = "mock"\n'
        '[roles.r]\nbackends = ["a"]\n'
    )
    with serving(config, tmp_path) as served:
        data = httpx.get(served.url + "/v1/models").json()["data"]
        assert [m["id"] for m in data] == ["r", "b"]
        body = BODY.format(model="a")
        assert httpx.post(served.url + "/v1/chat/completions", content=body).status_code == 404


def test_cors_allows_only_the_configured_origins(tmp_path: Path) -> None:
    config = '[serve]\ncors_origins = ["http://app.test"]\n[backends.m]\ntype = "mock"\n'
    with serving(config, tmp_path) as served:
        headers = {
            "Origin": "http://app.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        pre = httpx.options(served.url + "/v1/chat/completions", headers=headers)
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "http://app.test"
        other = httpx.options(
            served.url + "/v1/chat/completions", headers={**headers, "Origin": "http://evil.test"}
        )
        assert "access-control-allow-origin" not in other.headers
        body = BODY.format(model="m")
        answer = httpx.post(
            served.url + "/v1/chat/completions", content=body, headers={"Origin": "http://app.test"}
        )
        assert answer.headers["access-control-allow-origin"] == "http://app.test"


def test_json_access_log(tmp_path: Path) -> None:
    import json

    with serving('[backends.m]\ntype = "mock"\n', tmp_path, "--output", "json") as served:
        httpx.post(served.url + "/v1/chat/completions", content=BODY.format(model="m"))
        wait_for(lambda: '"model": "m"' in served.stderr())
    records = [json.loads(x) for x in served.stderr().splitlines() if x.startswith("{")]
    record = next(r for r in records if r["model"] == "m")
    assert record["status"] == 200 and record["backends"] == ["m"]
    assert record["path"] == "/v1/chat/completions" and record["duration_ms"] >= 0


def test_two_workers_share_one_port(tmp_path: Path) -> None:
    config = f'[serve]\napi_keys = ["{KEY}"]\n[backends.m]\ntype = "mock"\nresponse = "w"\n'
    with serving(config, tmp_path, "--workers", "2") as served:
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=2, timeout=60)
        wait_for(lambda: _answers(client))
        for _ in range(20):
            answer = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
            assert answer.choices[0].message.content == "w"
        served.signal(signal.SIGTERM)
        assert served.proc.wait(20) == 0


def _answers(client: openai.OpenAI) -> bool:
    try:
        client.models.list()
    except openai.APIConnectionError:
        return False
    return True


def test_keep_alive_answers_are_not_held_back_by_delayed_acks(tmp_path: Path) -> None:
    """Headers and body go out as two writes: without TCP_NODELAY each answer on a
    kept-alive connection waits ~40 ms for the client's delayed ACK."""
    with serving('[backends.m]\ntype = "mock"\n', tmp_path, "--quiet") as served:
        with httpx.Client(base_url=served.url) as client:
            times = []
            for _ in range(31):
                started = time.perf_counter()
                response = client.post("/v1/chat/completions", content=BODY.format(model="m"))
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
        assert sorted(times)[15] < 0.030, sorted(times)


def test_doctor_lists_serve_and_warns_about_an_open_host(tmp_path: Path) -> None:
    import json

    config = tmp_path / "c.toml"
    config.write_text('[serve]\nhost = "0.0.0.0"\nport = 8088\n[backends.m]\ntype = "mock"\n')
    argv = [llm_mux_executable(), "doctor", "--config", str(config)]
    console = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert console.returncode == 0
    assert "serve: http://0.0.0.0:8088, 0 client keys, 1 models" in console.stdout
    assert "warning: [serve] host 0.0.0.0 is not loopback and api_keys is empty" in console.stderr
    document = subprocess.run([*argv, "--output", "json"], capture_output=True, text=True)
    serve = json.loads(document.stdout)["serve"]
    assert serve["url"] == "http://0.0.0.0:8088" and serve["models"] == ["m"]
    assert serve["api_keys"] == 0 and serve["warnings"]
