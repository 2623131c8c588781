"""``llm-mux init`` on a machine with a fake agent CLI on PATH and a fake Ollama on loopback."""

from __future__ import annotations

import json
import os
import stat
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class FakeOllama(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/api/tags":
            self._send({"models": [{"name": "qwen-tiny:latest"}, {"name": "other:1b"}]})
        else:
            self._send({"error": "not found"}, 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        prompt = body["messages"][-1]["content"]
        self._send(
            {
                "model": body["model"],
                "message": {"role": "assistant", "content": f"ollama says: {prompt}"},
                "done": True,
                "prompt_eval_count": 3,
                "eval_count": 4,
            }
        )

    def _send(self, data: object, status: int = 200) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_path(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text('#!/bin/sh\nfor last; do :; done\nprintf "claude says: %s" "$last"\n')
    claude.chmod(claude.stat().st_mode | stat.S_IXUSR)
    for name in ("codex", "gemini"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    llm = bin_dir / "llm"  # answers `llm models default` and `--version` as llm 0.36 does
    llm.write_text(
        '#!/bin/sh\ncase "$1 $2" in\n'
        '"models default") echo gpt-5.6-luna ;;\n"--version ") echo "llm, version 0.36" ;;\n'
        "*) echo 'llm says hi' ;;\nesac\n"
    )
    llm.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def user_config() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "llm-mux" / "config.toml"


def test_init_writes_detected_backends_and_roles(cli, ollama: str, fake_path: str) -> None:
    env = {"PATH": fake_path, "OLLAMA_HOST": ollama, "ANTHROPIC_API_KEY": "sk-ant-planted-999"}
    result = cli("init", env=env)
    assert result.exit_code == 0, result.stderr
    path = user_config()
    config = tomllib.loads(path.read_text())
    backends = config["backends"]
    assert backends["claude"] == {"command": "claude", "args": ["-p", "--output-format", "json"]}
    assert backends["codex"]["args"] == ["exec", "--json", "--skip-git-repo-check"]
    assert backends["gemini"]["args"] == ["-o", "json", "-p"]
    assert backends["llm"] == {"command": "llm", "args": ["-m", "gpt-5.6-luna"]}
    assert config["backends"]["ollama"]["type"] == "ollama"
    assert config["backends"]["ollama"]["model"] == "qwen-tiny:latest"
    assert config["backends"]["anthropic"]["api_key"] == "${ANTHROPIC_API_KEY}"
    assert config["roles"]["analyzer"]["execution"] == "parallel"
    assert config["roles"]["quick"]["execution"] == "first"
    assert config["roles"]["fallback"]["execution"] == "fallback"
    assert "sk-ant-planted" not in path.read_text() + result.output
    assert "--dangerously" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "[backends.claude]" in result.stdout  # the file is shown


def test_init_never_overwrites_without_force(cli, fake_path: str) -> None:
    path = user_config()
    path.parent.mkdir(parents=True)
    path.write_text("# mine\n")
    result = cli("init", env={"PATH": fake_path})
    assert result.exit_code == 2
    assert "--force" in result.stderr
    assert path.read_text() == "# mine\n"
    forced = cli("init", "--force", env={"PATH": fake_path})
    assert forced.exit_code == 0
    assert "[backends.claude]" in path.read_text()


def test_init_dry_run_writes_nothing(cli, fake_path: str) -> None:
    result = cli("init", "--dry-run", env={"PATH": fake_path})
    assert result.exit_code == 0
    assert "[backends.claude]" in result.stdout
    assert not user_config().exists()


def test_init_project_writes_into_the_project(cli, tmp_path: Path, fake_path: str) -> None:
    result = cli("init", "--project", env={"PATH": fake_path})
    assert result.exit_code == 0
    assert (Path.cwd() / ".llm-mux" / "config.toml").is_file()
    assert not user_config().exists()


def test_init_config_is_accepted_by_doctor_and_used_by_ask(
    cli, ollama: str, fake_path: str
) -> None:
    env = {"PATH": fake_path, "OLLAMA_HOST": ollama}
    assert cli("init", env=env).exit_code == 0
    doctor = cli("doctor", "-o", "json", env=env)
    assert doctor.exit_code == 0, doctor.stdout + doctor.stderr
    report = json.loads(doctor.stdout)["backends"]
    assert report["claude"]["available"] and report["ollama"]["available"]
    claude = cli("ask", "claude", "hello there", "-q", env=env)
    assert claude.exit_code == 0, claude.stderr
    assert claude.stdout.strip() == "claude says: hello there"
    ollama_answer = cli("ask", "ollama", "hi", "-q", env=env)
    assert ollama_answer.stdout.strip() == "ollama says: hi"
    fallback = cli("ask", "fallback", "ping", "-q", env=env, timeout=300)  # tiny: CPU-bound
    assert fallback.exit_code == 0, fallback.stderr
    assert fallback.stdout.strip()  # the first backend of the chain answered


def test_init_probes_only_the_servers_it_is_told_about(cli, fake_path: str, llm_server) -> None:
    servers = f"vllm={llm_server.url}/v1"
    result = cli("init", "--dry-run", env={"PATH": fake_path, "LLM_MUX_INIT_SERVERS": servers})
    assert result.exit_code == 0, result.stderr
    config = tomllib.loads(result.stdout[result.stdout.index("[") :])
    assert config["backends"]["vllm"] == {
        "type": "openai",
        "command": f"{llm_server.url}/v1",
        "model": "fake-model",
    }
    assert [r.path for r in llm_server.requests] == ["/v1/models"]
    nothing = cli("init", "--dry-run", env={"PATH": fake_path})
    assert "vllm" not in nothing.stdout and "ollama" not in nothing.stdout


def test_a_malformed_server_list_is_named(cli, fake_path: str) -> None:
    result = cli("init", "--dry-run", env={"PATH": fake_path, "LLM_MUX_INIT_SERVERS": "vllm"})
    assert result.exit_code == 2
    assert "LLM_MUX_INIT_SERVERS" in result.stderr
