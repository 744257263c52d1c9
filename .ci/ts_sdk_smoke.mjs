#!/usr/bin/env node
// Drives target/release/codex-lite with the official TypeScript SDK (`@openai/codex-sdk`,
// unchanged, installed by .ci/run into target/ts-sdk without its bundled reference binary):
// the SDK spawns `codex-lite exec --experimental-json …` and reads its events.
//
// A mock Responses server on 127.0.0.1 plays the model; the SDK's `baseUrl` and `apiKey`
// point the built-in provider at it. Covers a turn with a command, a streamed turn with a
// patch on the same thread (resume), an output schema, a local image, resuming from a new
// client, a failed turn and an unknown thread. Exits 1 with a message on any mismatch; prints
// what it checked.
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BINARY = path.join(ROOT, "target", "release", "codex-lite");
const SDK = path.join(ROOT, "target", "ts-sdk", "node_modules", "@openai", "codex-sdk", "dist", "index.js");
const { Codex } = await import(pathToFileURL(SDK).href);

let checks = 0;
function check(condition, message) {
  if (!condition) {
    console.log(`ts sdk smoke: FAILED: ${message}`);
    process.exit(1);
  }
  checks += 1;
}

// ---- the mock model ------------------------------------------------------------------------

const replies = [];
const requests = [];

function sse(items, usage = { input_tokens: 10, input_tokens_details: { cached_tokens: 4 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 15 }) {
  const events = [{ type: "response.created", response: { id: "r" } }];
  for (const item of items) events.push({ type: "response.output_item.done", item });
  events.push({ type: "response.completed", response: { id: "r", usage } });
  return events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
}

const message = (text) => ({ type: "message", id: "msg", role: "assistant", content: [{ type: "output_text", text }] });

// A call of whichever command tool the request offers (the server picks tools per model).
function commandCall(tools, callId, script) {
  const tool = ["shell", "exec_command", "shell_command"].map((n) => tools.find((t) => t.name === n)).find(Boolean);
  if (!tool) return message("no command tool offered");
  const args = tool.name === "shell" ? { command: ["sh", "-c", script] } : tool.name === "exec_command" ? { cmd: script } : { command: script };
  return { type: "function_call", id: `fc_${callId}`, call_id: callId, name: tool.name, arguments: JSON.stringify(args) };
}

function patchCall(tools, callId, patch) {
  const tool = tools.find((t) => t.name === "apply_patch");
  if (!tool) return message("no apply_patch tool offered");
  return tool.type === "custom"
    ? { type: "custom_tool_call", id: `ctc_${callId}`, call_id: callId, name: "apply_patch", input: patch }
    : { type: "function_call", id: `fc_${callId}`, call_id: callId, name: "apply_patch", arguments: JSON.stringify({ input: patch }) };
}

// The tools a request offers: its `tools`, or in the Responses Lite shape those of the
// `additional_tools` input item (namespaces flattened).
function offeredTools(request) {
  const tools = [...(request.tools ?? [])];
  for (const item of request.input ?? []) {
    if (item.type !== "additional_tools") continue;
    for (const tool of item.tools ?? []) {
      if (Array.isArray(tool.tools)) tools.push(...tool.tools);
      else tools.push(tool);
    }
  }
  return tools;
}

const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    if (req.method !== "POST" || !req.url.endsWith("/responses")) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"message":"not mocked"}}');
      return;
    }
    const json = JSON.parse(body);
    requests.push({ headers: req.headers, body: json, text: body });
    const reply = replies.shift();
    if (!reply) {
      res.writeHead(500, { "content-type": "application/json" }).end('{"error":{"message":"no reply scripted"}}');
    } else if (reply.status) {
      res.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.body));
    } else {
      res.writeHead(200, { "content-type": "text/event-stream" }).end(sse(reply(offeredTools(json))));
    }
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseUrl = `http://127.0.0.1:${server.address().port}/v1`;

// ---- the run -------------------------------------------------------------------------------

const home = mkdtempSync(path.join(os.tmpdir(), "codex-lite-ts-sdk-"));
const work = mkdtempSync(path.join(os.tmpdir(), "codex-lite-ts-sdk-cwd-"));
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, CODEX_HOME: home };
const options = { codexPathOverride: BINARY, baseUrl, apiKey: "sk-ts-smoke", env };
const threadOptions = { workingDirectory: work, skipGitRepoCheck: true, sandboxMode: "workspace-write" };

try {
  const codex = new Codex(options);
  const thread = codex.startThread(threadOptions);

  // 1. run(): a command, then the answer.
  replies.push((tools) => [commandCall(tools, "call_1", "echo from-ts-smoke")], () => [message("First answer")]);
  const first = await thread.run("Run a command.");
  check(first.finalResponse === "First answer", `first finalResponse: ${first.finalResponse}`);
  const command = first.items.find((i) => i.type === "command_execution");
  check(command && command.aggregated_output.includes("from-ts-smoke") && command.exit_code === 0 && command.status === "completed", `command item: ${JSON.stringify(command)}`);
  check(first.usage && first.usage.input_tokens === 20 && first.usage.cached_input_tokens === 8 && first.usage.output_tokens === 10, `usage: ${JSON.stringify(first.usage)}`);
  check(typeof thread.id === "string" && thread.id.length > 0, "thread id after the first turn");
  const headers = requests[0].headers;
  check(headers.authorization === "Bearer sk-ts-smoke", `authorization: ${headers.authorization}`);
  check(headers.originator === "codex_sdk_ts", `originator: ${headers.originator}`);

  // 2. runStreamed() on the same thread (the SDK resumes it): a patch, events in order.
  replies.push((tools) => [patchCall(tools, "call_2", "*** Begin Patch\n*** Add File: added.txt\n+added by the model\n*** End Patch\n")], () => [message("Patched")]);
  const { events } = await thread.runStreamed("Add a file.");
  const seen = [];
  for await (const event of events) seen.push(event);
  // Warnings (`error` items) may come and go with the catalog; the rest has a fixed order.
  const kinds = seen.filter((e) => e.item?.type !== "error").map((e) => (e.item ? `${e.type}:${e.item.type}` : e.type));
  check(seen[0].type === "thread.started" && seen[0].thread_id === thread.id, `resumed thread: ${JSON.stringify(seen[0])}`);
  check(JSON.stringify(kinds) === JSON.stringify(["thread.started", "turn.started", "item.started:file_change", "item.completed:file_change", "item.completed:agent_message", "turn.completed"]), `streamed events: ${kinds}`);
  check(readFileSync(path.join(work, "added.txt"), "utf8") === "added by the model\n", "the patch was applied");
  const history = requests.at(-1).text;
  check(history.includes("Run a command.") && history.includes("First answer"), "the resumed turn carries the history");

  // 3. outputSchema: sent as the Responses text format.
  const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false };
  replies.push(() => [message('{"answer":"yes"}')]);
  const structured = await thread.run("Answer in JSON.", { outputSchema: schema });
  check(JSON.parse(structured.finalResponse).answer === "yes", `structured: ${structured.finalResponse}`);
  const format = requests.at(-1).body.text?.format;
  check(format && format.type === "json_schema" && isDeepStrictEqual(format.schema, schema), `text.format: ${JSON.stringify(format)}`);

  // 4. A local image.
  const image = path.join(work, "pixel.png");
  writeFileSync(image, Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64"));
  replies.push(() => [message("A pixel.")]);
  const seenImage = await thread.run([{ type: "text", text: "What is this?" }, { type: "local_image", path: image }]);
  check(seenImage.finalResponse === "A pixel.", "image turn");
  check(requests.at(-1).text.includes("data:image/png;base64,"), "the image reached the model");

  // 5. resumeThread() from a new client.
  replies.push(() => [message("Still here")]);
  const again = new Codex(options).resumeThread(thread.id, threadOptions);
  const resumed = await again.run("Are you there?");
  check(resumed.finalResponse === "Still here" && again.id === thread.id, "resumeThread");
  check(requests.at(-1).text.includes("Answer in JSON."), "resumeThread carries the history");

  // 6. A failed turn rejects with the model error.
  replies.push({ status: 400, body: { error: { message: "the mock refuses" } } });
  let failure = null;
  try {
    await codex.startThread(threadOptions).run("Fail, please.");
  } catch (e) {
    failure = e;
  }
  check(failure && String(failure.message).includes("the mock refuses"), `failed turn: ${failure}`);

  // 7. Resuming an unknown thread: exec exits 1 and says why.
  failure = null;
  try {
    await codex.resumeThread("01a22d77-c0c5-7a81-a21f-ff925e370cc9", threadOptions).run("Hello?");
  } catch (e) {
    failure = e;
  }
  check(failure && /exited with code 1/.test(failure.message) && failure.message.includes("cannot resume thread"), `unknown thread: ${failure}`);
  check(!existsSync(path.join(home, "auth.json")), "the API key was not written to auth.json");
} finally {
  server.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
console.log(`ts sdk smoke: @openai/codex-sdk drove codex-lite exec through ${checks} checks and ${requests.length} model requests`);
