"""A hand-written stdio MCP server that misbehaves on purpose (standard library only).

Usage: misbehaving.py MODE [LOG]
  never     reads everything, answers nothing
  garbage   prints lines that are not JSON-RPC, answers nothing
  noisy     a working server that also prints garbage lines between its answers
  crash     works until tools/call, then writes to stderr and exits with status 3
  many      500 tools, listed 100 per page
  hang      tools/call never answers (everything else works)
  env       the tool `env` answers with the environment's variable names
  deaf      works until its tools are listed, then sends 5000 `ping`s, never reads again
            and idles (our answers fill its stdin)
  escape    a working server that first starts a process in a session of its own holding its
            stdout and stderr (alive 60 s; its pid is written to LOG)
  asks      during tools/call, sends us `ping` and `sampling/createMessage` and answers with
            what came back
Every line received is appended to LOG when given. When MCP_TEST_PIDFILE is set, the pid is
written there.
"""
import json
import os
import sys
import time

mode = sys.argv[1]
log = open(sys.argv[2], "a") if len(sys.argv) > 2 and mode != "escape" else None
if os.environ.get("MCP_TEST_PIDFILE"):
    with open(os.environ["MCP_TEST_PIDFILE"], "w") as f:
        f.write(str(os.getpid()))
if mode == "escape":
    import subprocess
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True, stdin=subprocess.DEVNULL)
    with open(sys.argv[2], "w") as f:
        f.write(str(sleeper.pid))


def send(message):
    if mode == "noisy":
        print("log: this line is not JSON-RPC", flush=True)
    print(json.dumps(message), flush=True)


def tool(name):
    return {"name": name, "description": f"tool {name}", "inputSchema": {"type": "object"}}


for line in sys.stdin:
    if log:
        log.write(line)
        log.flush()
    if mode == "garbage":
        print("Starting server... ready! (not JSON)", flush=True)
        continue
    if mode == "never":
        continue
    message = json.loads(line)
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": ident, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": f"misbehaving-{mode}", "version": "0"}}})
    elif method == "tools/list":
        if mode == "many":
            start = int(message.get("params", {}).get("cursor") or 0)
            page = [tool(f"tool_{i}") for i in range(start, min(start + 100, 500))]
            result = {"tools": page}
            if start + 100 < 500:
                result["nextCursor"] = str(start + 100)
        else:
            result = {"tools": [tool("work"), tool("env")]}
        send({"jsonrpc": "2.0", "id": ident, "result": result})
        if mode == "deaf":
            for n in range(5000):
                send({"jsonrpc": "2.0", "id": f"p{n}", "method": "ping"})
            time.sleep(3600)
    elif method == "tools/call":
        if mode == "crash":
            sys.stderr.write("boom: the server crashed\n")
            sys.stderr.flush()
            sys.exit(3)
        if mode == "hang":
            continue
        if mode == "asks":
            send({"jsonrpc": "2.0", "id": "s1", "method": "ping"})
            send({"jsonrpc": "2.0", "id": "s2", "method": "sampling/createMessage",
                  "params": {"messages": [], "maxTokens": 1}})
            answers = {}
            while len(answers) < 2:
                reply = json.loads(sys.stdin.readline())
                if log:
                    log.write(json.dumps(reply) + "\n")
                    log.flush()
                answers[reply.get("id")] = reply
            text = "ping=%s sampling=%s" % (
                json.dumps(answers["s1"].get("result")),
                answers["s2"].get("error", {}).get("code"))
            send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": text}]}})
            continue
        name = message["params"]["name"]
        text = " ".join(sorted(os.environ)) if name == "env" else f"ran {name}"
        send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": text}]}})
    else:
        send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "no"}})
