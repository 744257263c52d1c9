#!/usr/bin/env python3
"""Schema conformance of every recorded protocol message.

Reads the transcripts the integration tests wrote (target/transcripts/*.jsonl, or the directory
given as the first argument: one {"dir": "out"|"in", "raw": "<line>"} per line, "out" = server ->
client, "in" = client -> server, plus "crafted": true on client lines the test made deliberately
outside the schema) and validates every line against
protocol/app-server-protocol-0.169.0.schema.json (vendored, see protocol/README.md).

Server lines:
  - every one is JSON and a JSON-RPC message;
  - notifications: params by method (ServerNotification), plus an integer emittedAtMs;
  - server -> client requests: params by method (ServerRequest);
  - responses: result by the method of the client request they answer;
  - error responses: the error object (JSONRPCErrorError).
Client lines:
  - requests: the method is a ClientRequest and its params validate (legacy methods the schema
    omits, getAuthStatus, against auth.md's shape); a request the schema refuses must be
    answered with an error: the server accepting it is a violation;
  - notifications: by method (ClientNotification);
  - answers to server requests: a server request with that id was sent, and the result validates
    by that request's method;
  - a crafted line (malformed, unknown, a legacy shape or an extension we accept) is only
    counted: the tests send those on purpose, and the server may accept or refuse them.
Exits 1 on any violation, printing each; prints how many messages it checked.
"""
import json
import sys
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "protocol" / "app-server-protocol-0.169.0.schema.json"
TRANSCRIPTS = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "transcripts"

# Methods in scope whose result type does not follow the `<X>Params` -> `<X>Response` naming.
RESULT_REFS = {
    "initialize": "#/definitions/InitializeResponse",
    "account/logout": "#/definitions/v2/LogoutAccountResponse",
    "config/mcpServer/reload": "#/definitions/v2/McpServerRefreshResponse",
    "account/rateLimits/read": "#/definitions/v2/GetAccountRateLimitsResponse",
}
# Legacy methods in scope that the generated schema omits: checked against auth.md's shape.
LOCAL_PARAMS_SCHEMAS = {
    "getAuthStatus": {
        "type": ["object", "null"],
        "properties": {
            "includeToken": {"type": ["boolean", "null"]},
            "refreshToken": {"type": ["boolean", "null"]},
        },
    },
}
LOCAL_RESULT_SCHEMAS = {
    "getAuthStatus": {
        "type": "object",
        "required": ["authMethod", "authToken", "requiresOpenaiAuth"],
        "properties": {
            "authMethod": {"enum": ["apikey", "chatgpt", "chatgptAuthTokens", None]},
            "authToken": {"type": ["string", "null"]},
            "requiresOpenaiAuth": {"type": ["boolean", "null"]},
        },
    },
}


def main() -> int:
    schema = json.loads(SCHEMA_PATH.read_text())
    defs = schema["definitions"]
    cache = {}

    def validator(ref_or_schema):
        key = json.dumps(ref_or_schema, sort_keys=True)
        if key not in cache:
            if isinstance(ref_or_schema, str):
                sub = {"$ref": ref_or_schema, "definitions": defs}
            else:
                sub = ref_or_schema
            cache[key] = jsonschema.Draft7Validator(sub)
        return cache[key]

    def by_method(union):
        table = {}
        for variant in defs[union]["oneOf"]:
            method = variant["properties"]["method"]["enum"][0]
            table[method] = variant["properties"].get("params", {}).get("$ref")
        return table

    notification_params = by_method("ServerNotification")
    server_request_params = by_method("ServerRequest")
    client_request_params = by_method("ClientRequest")
    client_notification_params = by_method("ClientNotification")

    def result_ref(method, params_table):
        if method in RESULT_REFS:
            return RESULT_REFS[method]
        if method in LOCAL_RESULT_SCHEMAS:
            return LOCAL_RESULT_SCHEMAS[method]
        params = params_table.get(method)
        if params and params.endswith("Params"):
            return params[: -len("Params")] + "Response"
        return None

    def schema_errors(ref, value):
        return [
            f"at /{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}"
            for e in validator(ref).iter_errors(value)
        ]

    def client_message_problems(msg, server_requests):
        """Why a client -> server message is not in the schema (an empty list when it is)."""
        key = json.dumps(msg.get("id"))
        method = msg.get("method")
        if "method" in msg and "id" in msg:
            reasons = schema_errors("#/definitions/JSONRPCRequest", msg)
            if not isinstance(method, str):
                return reasons or ["the method is not a string"]
            if method in LOCAL_PARAMS_SCHEMAS:
                return reasons + schema_errors(LOCAL_PARAMS_SCHEMAS[method], msg.get("params"))
            if method not in client_request_params:
                return reasons + [f"method not in the schema: {method}"]
            ref = client_request_params[method]
            # A method without params in the schema leaves `params` free (JSONRPCRequest).
            return reasons + (schema_errors(ref, msg.get("params")) if ref else [])
        if "method" in msg:
            reasons = schema_errors("#/definitions/JSONRPCNotification", msg)
            if not isinstance(method, str):
                return reasons or ["the method is not a string"]
            if method not in client_notification_params:
                return reasons + [f"notification not in the schema: {method}"]
            ref = client_notification_params[method]
            return reasons + (schema_errors(ref, msg.get("params")) if ref else [])
        if "error" in msg:
            reasons = schema_errors("#/definitions/JSONRPCError", msg)
            if key not in server_requests:
                reasons.append(f"an error answer to id {key}, which the server never sent")
            return reasons
        if "result" in msg:
            reasons = schema_errors("#/definitions/JSONRPCResponse", msg)
            if key not in server_requests:
                return reasons + [f"an answer to id {key}, which the server never sent"]
            ref = result_ref(server_requests[key], server_request_params)
            if ref is None:
                return reasons + [f"no result schema known for {server_requests[key]}"]
            return reasons + schema_errors(ref, msg["result"])
        return ["not a JSON-RPC message"]

    checked = 0
    refusals = 0
    crafted = 0
    problems = []
    files = sorted(TRANSCRIPTS.glob("*.jsonl")) if TRANSCRIPTS.is_dir() else []
    if not files:
        print(f"conformance: no transcripts under {TRANSCRIPTS}; run the tests first")
        return 1

    for path in files:
        client_requests = {}  # id (json) -> method, requests the client sent
        server_requests = {}  # id -> method, requests the server sent
        refused = {}  # id -> (where, method, reasons): requests the schema refuses, unanswered
        for lineno, entry_text in enumerate(path.read_text().splitlines(), 1):
            entry = json.loads(entry_text)
            where = f"{path.name}:{lineno}"
            try:
                msg = json.loads(entry["raw"])
            except json.JSONDecodeError as e:
                if entry["dir"] == "out":
                    problems.append(f"{where}: server wrote a non-JSON line ({e}): {entry['raw'][:200]}")
                elif entry.get("crafted"):
                    crafted += 1
                else:
                    problems.append(f"{where}: client wrote a non-JSON line ({e}): {entry['raw'][:200]}")
                continue
            if not isinstance(msg, dict):
                if entry["dir"] == "out":
                    problems.append(f"{where}: server wrote a non-object: {entry['raw'][:200]}")
                elif entry.get("crafted"):
                    crafted += 1
                else:
                    problems.append(f"{where}: client wrote a non-object: {entry['raw'][:200]}")
                continue
            key = json.dumps(msg.get("id"))
            errors = []
            if entry["dir"] == "in":
                checked += 1
                reasons = client_message_problems(msg, server_requests)
                if reasons and entry.get("crafted"):
                    crafted += 1
                if "method" in msg and "id" in msg:
                    client_requests[key] = msg["method"]
                    if reasons and not entry.get("crafted"):
                        refused[key] = (where, msg["method"], reasons)
                    else:
                        refused.pop(key, None)
                elif reasons and entry.get("crafted"):
                    pass
                else:
                    for reason in reasons:
                        problems.append(f"{where}: client {msg.get('method', 'answer')}: {reason}")
                continue
            # Server -> client.
            checked += 1
            if "method" in msg and "id" in msg:
                method = msg["method"]
                server_requests[key] = method
                ref = server_request_params.get(method)
                if method not in server_request_params:
                    problems.append(f"{where}: server request method not in the schema: {method}")
                elif ref:
                    errors = list(validator(ref).iter_errors(msg.get("params")))
                errors += list(validator("#/definitions/JSONRPCRequest").iter_errors(msg))
            elif "method" in msg:
                method = msg["method"]
                if method not in notification_params:
                    problems.append(f"{where}: notification method not in the schema: {method}")
                else:
                    errors = list(validator(notification_params[method]).iter_errors(msg.get("params")))
                if not isinstance(msg.get("emittedAtMs"), int):
                    problems.append(f"{where}: notification without an integer emittedAtMs")
            elif "error" in msg:
                errors = list(validator("#/definitions/JSONRPCError").iter_errors(msg))
                if refused.pop(key, None) is not None:
                    refusals += 1
            elif "result" in msg:
                if key in refused:
                    at, method, reasons = refused.pop(key)
                    problems.append(
                        f"{at}: the server accepted a {method} request the schema refuses "
                        f"(fix the request, or refuse it): {'; '.join(reasons)}"
                    )
                method = client_requests.get(key)
                errors = list(validator("#/definitions/JSONRPCResponse").iter_errors(msg))
                if method is None:
                    problems.append(f"{where}: result for id {key}, which the client never sent")
                else:
                    ref = result_ref(method, client_request_params)
                    if ref is None:
                        problems.append(f"{where}: no result schema known for {method}")
                    else:
                        errors += list(validator(ref).iter_errors(msg["result"]))
            else:
                problems.append(f"{where}: not a JSON-RPC message: {entry['raw'][:200]}")
            for error in errors:
                at = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"{where}: {msg.get('method', 'response')} at /{at}: {error.message[:300]}")

        for at, method, reasons in refused.values():
            problems.append(
                f"{at}: a {method} request the schema refuses was never answered with an error: "
                f"{'; '.join(reasons)}"
            )

    for problem in problems:
        print(problem)
    print(
        f"conformance: checked {checked} messages in {len(files)} transcripts "
        f"({refusals} out-of-schema requests refused, {crafted} deliberately crafted client lines); "
        f"{len(problems)} violations"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
