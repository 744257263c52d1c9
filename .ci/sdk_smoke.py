#!/usr/bin/env python3
"""Drives target/release/codex-lite with the official `openai-codex` Python SDK, unchanged.

A mock Responses server on 127.0.0.1 plays the model. Covers the SDK's handshake checks,
model/list, an API-key login, thread start/read/name/list/archive/unarchive/fork/resume and
two turns with their final responses. Exits 1 with a message on any mismatch; prints what
it checked.
"""
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path

from openai_codex import Codex, CodexConfig, Sandbox

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "codex-lite"


def sse(kind, data):
    data["type"] = kind
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def reply(text):
    events = [
        sse("response.created", {"response": {"id": "r"}}),
        sse("response.output_item.added", {"item": {"type": "message", "id": "m1", "role": "assistant", "content": []}}),
        sse("response.output_text.delta", {"item_id": "m1", "delta": text[:4]}),
        sse("response.output_text.delta", {"item_id": "m1", "delta": text[4:]}),
        sse("response.output_item.done", {"item": {"type": "message", "id": "m1", "role": "assistant", "content": [{"type": "output_text", "text": text}]}}),
        sse("response.completed", {"response": {"id": "r", "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}}}),
    ]
    return "".join(events).encode()


def start_mock():
    """Answers every POST with the next canned reply; records request bodies."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    bodies = []

    def serve():
        while True:
            conn, _ = listener.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            bodies.append(json.loads(rest))
            body = reply(f"Answer number {len(bodies)}")
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], bodies


def check(condition, message):
    if not condition:
        print(f"sdk smoke: FAILED: {message}")
        sys.exit(1)


def main():
    port, bodies = start_mock()
    home = tempfile.mkdtemp(prefix="codex-lite-sdk-")
    workdir = tempfile.mkdtemp(prefix="codex-lite-sdk-cwd-")
    config = CodexConfig(
        codex_bin=str(BINARY),
        config_overrides=(
            "model_provider=mock",
            f'model_providers.mock={{name="mock",base_url="http://127.0.0.1:{port}/v1",env_key="MOCK_KEY"}}',
            "model=mock-model",
        ),
        cwd=workdir,
        env={"MOCK_KEY": "k", "CODEX_HOME": home},
    )
    checks = 0
    try:
        with Codex(config=config) as codex:
            check(codex.metadata.serverInfo.name == "codex-lite", "serverInfo")
            check(codex.metadata.serverInfo.version == "0.169.0", "serverInfo.version")
            # The catalog (bundled facts here: a custom provider fetches none); the configured
            # model it does not know is not listed, as with the reference.
            models = [m.id for m in codex.models().data]
            check("gpt-6.1-sol" in models, f"model/list: {models}")
            codex.login_api_key("sk-sdk-smoke")
            check(codex.account().account is not None, "account after API-key login")
            thread = codex.thread_start(sandbox=Sandbox.read_only)
            first = thread.run("Say hello.")
            check(first.final_response == "Answer number 1", f"first turn: {first.final_response!r}")
            second = thread.run("Again.")
            check(second.final_response == "Answer number 2", f"second turn: {second.final_response!r}")
            texts = [c["content"][0].get("text") for c in bodies[1]["input"] if c.get("type") == "message"]
            check("Say hello." in texts and "Answer number 1" in texts, f"history sent: {texts}")
            thread.set_name("smoke")
            read = thread.read(include_turns=True)
            check(len(read.thread.turns) == 2, "thread/read turns")
            listed = codex.thread_list()
            check(any(t.id == thread.id and t.name == "smoke" for t in listed.data), "thread/list")
            fork = codex.thread_fork(thread.id)
            third = fork.run("From the fork.")
            check(third.final_response == "Answer number 3", "turn on the fork")
            codex.thread_archive(fork.id)
            codex.thread_unarchive(fork.id)
            resumed = codex.thread_resume(thread.id)
            check(resumed.id == thread.id, "thread/resume")
            # excludeTurns is gated on the runtime version (>= 0.151.0): ours reports 0.169.0.
            gated = codex.thread_resume(thread.id, include_turns=False)
            check(gated.id == thread.id, "thread/resume with the version-gated excludeTurns")
            checks = 14
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"sdk smoke: openai-codex drove codex-lite through {checks} checks and {len(bodies)} model requests")


if __name__ == "__main__":
    main()
