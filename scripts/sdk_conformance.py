#!/usr/bin/env python3
"""The official clients, unchanged, through llmtap.

Usage: sdk_conformance.py PATH_TO_LLMTAP_BINARY

Starts a fake upstream (OpenAI, Anthropic and Ollama wire formats: JSON, SSE, NDJSON) and
`llmtap serve` in front of it, then drives the official `openai`, `anthropic` and `ollama`
Python SDKs at both — directly and through llmtap — streaming and not. Each case checks
that the SDK returned the same thing both ways and that llmtap's record (read back from
the query API) holds the API, model, output, token counts and stream flag. Prints one line
per case; exits 1 on any difference. Run by `.ci/run` in a virtualenv.
"""
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import ollama
import openai

# The SDKs warn about model names' retirement dates; the fake upstream does not care.
warnings.filterwarnings("ignore", category=DeprecationWarning)

# ---------------------------------------------------------------- the fake upstream

CHAT_ID = "chatcmpl-AZ9tDd5yyEmYwWZJf1xWNEyUwHkLx"


def chat_chunk(delta, finish=None, usage=False):
    chunk = {
        "id": CHAT_ID, "object": "chat.completion.chunk", "created": 1733000000,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0aa8d3e20b",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = None
    return chunk


CHAT_USAGE = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}


def chat_stream(include_usage):
    deltas = [{"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": " there"}, {"content": "!"}]
    chunks = [chat_chunk(d, usage=include_usage) for d in deltas]
    chunks.append(chat_chunk({}, "stop", usage=include_usage))
    if include_usage:
        last = chat_chunk({}, usage=False)
        last["choices"] = []
        last["usage"] = CHAT_USAGE
        chunks.append(last)
    return [f"data: {json.dumps(c, separators=(',', ':'))}\n\n" for c in chunks] + ["data: [DONE]\n\n"]


CHAT_COMPLETION = {
    "id": CHAT_ID, "object": "chat.completion", "created": 1733000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris.", "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    "system_fingerprint": "fp_0aa8d3e20b",
}

RESPONSE = {
    "id": "resp_67ccd2bed1ec8190", "object": "response", "created_at": 1741476542, "status": "completed",
    "error": None, "incomplete_details": None, "instructions": None, "max_output_tokens": None,
    "model": "gpt-4.1-mini-2025-04-14",
    "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "Paris is the capital.", "annotations": []}]}],
    "parallel_tool_calls": True, "previous_response_id": None, "store": True, "temperature": 1.0,
    "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 8,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 44},
    "metadata": {},
}


def response_stream():
    start = dict(RESPONSE, status="in_progress", output=[], usage=None)
    events = [
        ("response.created", {"response": start}),
        ("response.in_progress", {"response": start}),
        ("response.output_item.added", {"output_index": 0, "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        ("response.content_part.added", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
        ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Paris"}),
        ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": " is the capital."}),
        ("response.output_text.done", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "text": "Paris is the capital."}),
        ("response.content_part.done", {"item_id": "msg_1", "output_index": 0, "content_index": 0, "part": RESPONSE["output"][0]["content"][0]}),
        ("response.output_item.done", {"output_index": 0, "item": RESPONSE["output"][0]}),
        ("response.completed", {"response": RESPONSE}),
    ]
    return [f"event: {name}\ndata: {json.dumps(dict(type=name, sequence_number=n, **body))}\n\n"
            for n, (name, body) in enumerate(events)]


EMBEDDINGS = {
    "object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8},
    "data": [{"object": "embedding", "index": i, "embedding": [0.0023, -0.0093, 0.0157]} for i in range(2)],
}

COMPLETION = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}

MODELS = {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}]}

MESSAGE = {
    "id": "msg_01Y", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Paris."}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 4},
}


def message_stream():
    events = [
        ("message_start", {"type": "message_start", "message": dict(MESSAGE, content=[], stop_reason=None, usage={"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1})}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Paris"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " it is."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(body)}\n\n" for name, body in events]


def ollama_lines(generate, stream):
    pieces = ["Rayleigh", " scattering."]
    key = "response" if generate else "message"
    def body(text):
        return text if generate else {"role": "assistant", "content": text}
    done = {"model": "llama3.2", "created_at": "2026-11-22T10:00:00.1Z", key: body("" if stream else "".join(pieces)),
            "done": True, "done_reason": "stop", "total_duration": 2500000000, "load_duration": 500000000,
            "prompt_eval_count": 26, "prompt_eval_duration": 100000000, "eval_count": 4, "eval_duration": 200000000}
    if not stream:
        return [json.dumps(done)]
    lines = [{"model": "llama3.2", "created_at": "2026-11-22T10:00:00.0Z", key: body(p), "done": False} for p in pieces]
    return [json.dumps(line) + "\n" for line in lines] + [json.dumps(done) + "\n"]


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, content_type, pieces):
        self.send_response(status)
        self.send_header("content-type", content_type)
        if isinstance(pieces, list):
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in pieces:
                data = piece.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            data = json.dumps(pieces).encode()
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_GET(self):
        if self.path.endswith("/v1/models"):
            return self.send(200, "application/json", MODELS)
        self.send(404, "application/json", {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        stream = body.get("stream", False)
        path = self.path
        sse = "text/event-stream; charset=utf-8"
        if path.endswith("/chat/completions"):
            if not stream:
                return self.send(200, "application/json", CHAT_COMPLETION)
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return self.send(200, sse, chat_stream(include))
        if path.endswith("/v1/responses"):
            return self.send(200, sse, response_stream()) if stream else self.send(200, "application/json", RESPONSE)
        if path.endswith("/v1/embeddings"):
            return self.send(200, "application/json", EMBEDDINGS)
        if path.endswith("/v1/completions"):
            return self.send(200, "application/json", COMPLETION)
        if path.endswith("/v1/messages"):
            return self.send(200, sse, message_stream()) if stream else self.send(200, "application/json", MESSAGE)
        if path.endswith("/api/chat") or path.endswith("/api/generate"):
            stream = body.get("stream", True)
            lines = ollama_lines(path.endswith("/api/generate"), stream)
            if stream:
                return self.send(200, "application/x-ndjson", lines)
            return self.send(200, "application/json", json.loads(lines[0]))
        self.send(404, "application/json", {"error": {"message": "no such path", "type": "invalid_request_error"}})


# ---------------------------------------------------------------- llmtap

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@contextlib.contextmanager
def running_llmtap(binary, *extra):
    """The fake upstream and `llmtap serve` in front of it; yields their base URLs and the database path."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up = f"http://127.0.0.1:{upstream.server_address[1]}"
    port, api_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="llmtap-sdk-")
    db = os.path.join(workdir, "calls.sqlite")
    tap = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--api-port", str(api_port), "--db", db,
         "--upstream", up, "--provider", f"anthropic={up}", "--provider", f"ollama={up}", "--log-level", "warning", *extra])
    try:
        for _ in range(200):
            try:
                get_json(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("llmtap did not start")
        yield {"upstream": up, "proxy": f"http://127.0.0.1:{port}", "api": f"http://127.0.0.1:{api_port}", "db": db}
    finally:
        tap.terminate()
        tap.wait(timeout=20)
        upstream.shutdown()


def main(binary):
    with running_llmtap(binary) as tap:
        failures = run_cases(tap["upstream"], tap["proxy"], tap["api"])
        return failures | check_cli(binary, tap["db"], tap["api"])


def check_cli(binary, db, api):
    """The CLI's --json, read from the database while serve runs, says what the API says."""
    def cli(*args):
        out = subprocess.run([binary, *args, "--db", db, "--json"], check=True, capture_output=True, text=True).stdout
        return json.loads(out)
    problems = []
    cost, api_cost = cli("cost", "--by", "model"), get_json(api + "/api/cost?group_by=model")
    if cost != api_cost:
        problems.append(f"cost --json differs from /api/cost: {cost} vs {api_cost}")
    if cost["requests"] != 13:
        problems.append(f"cost --json counts {cost['requests']} calls, expected 13")
    sessions = cli("sessions", "--limit", "50")["sessions"]
    if sessions != get_json(api + "/api/sessions?limit=50")["sessions"]:
        problems.append("sessions --json differs from /api/sessions")
    detail = cli("show", sessions[0]["id"])
    if [c["id"] for c in detail["calls"]] != [c["id"] for c in get_json(api + "/api/sessions/" + sessions[0]["id"])["calls"]]:
        problems.append("show --json differs from /api/sessions/{id}")
    check = cli("check")
    if check["integrity"] != "ok" or check["calls"] != 13:
        problems.append(f"check --json: {check}")
    # export → import → export, through the CLI, while serve keeps running
    def run(*args):
        return subprocess.run([binary, *args], check=True, capture_output=True).stdout
    backup = run("export", "--format", "backup", "--db", db)
    restored = db + ".restored.sqlite"
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
        file.write(backup)
        file.flush()
        run("import", file.name, "--db", restored)
        run("import", file.name, "--db", restored)  # twice: nothing more
    if run("export", "--format", "backup", "--db", restored) != backup or len(backup.splitlines()) != 13:
        problems.append("export --format backup → import → export differs")
    if run("export", "--db", restored) != run("export", "--db", db):
        problems.append("the JSONL export of the restored database differs")
    print(("ok  " if not problems else "FAIL") + ": CLI --json (cost, sessions, show, check) and export/import round trip while serve runs")
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


def dump(value):
    """What an SDK returned, as plain data (lists for streams)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value


def run_cases(upstream, proxy, api):
    key = "sk-sdk-conformance-0001"
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}]

    def openai_client(base):
        return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

    def anthropic_client(base, direct):
        return anthropic.Anthropic(base_url=base if direct else base + "/anthropic", api_key=key, max_retries=0)

    def anthropic_stream(client):
        with client.messages.stream(model="claude-sonnet-4-5-20250929", max_tokens=64, messages=messages[1:]) as s:
            texts = list(s.text_stream)
            return texts, s.get_final_message()

    cases = [
        ("openai chat", "openai.chat", False, "Paris.", (20, 2),
         lambda b: openai_client(b).chat.completions.create(model="gpt-4o-mini", messages=messages)),
        ("openai chat stream", "openai.chat", True, "Hello there!", (12, 4),
         lambda b: list(openai_client(b).chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))),
        ("openai chat stream include_usage", "openai.chat", True, "Hello there!", (12, 4),
         lambda b: list(openai_client(b).chat.completions.create(
             model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}))),
        ("openai responses", "openai.responses", False, "Paris is the capital.", (36, 8),
         lambda b: openai_client(b).responses.create(model="gpt-4.1-mini", input="Capital of France?")),
        ("openai responses stream", "openai.responses", True, "Paris is the capital.", (36, 8),
         lambda b: list(openai_client(b).responses.create(model="gpt-4.1-mini", input="Capital of France?", stream=True))),
        ("openai embeddings", "openai.embeddings", False, None, (8, 0),
         lambda b: openai_client(b).embeddings.create(model="text-embedding-3-small", input=["a", "b"])),
        ("openai completions", "openai.completions", False, "\n\nThis is indeed a test", (5, 7),
         lambda b: openai_client(b).completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")),
        ("openai models", "generic", False, None, None,
         lambda b: list(openai_client(b).models.list())),
        ("anthropic messages", "anthropic.messages", False, "Paris.", (20, 4),
         lambda b: anthropic_client(b, b == upstream).messages.create(
             model="claude-sonnet-4-5-20250929", max_tokens=64, system="You are terse.", messages=messages[1:])),
        ("anthropic messages stream", "anthropic.messages", True, "Paris it is.", (25, 5),
         lambda b: anthropic_stream(anthropic_client(b, b == upstream))),
        ("ollama chat", "ollama.chat", False, "Rayleigh scattering.", (26, 4),
         lambda b: ollama.Client(host=b).chat(model="llama3.2", messages=messages, stream=False)),
        ("ollama chat stream", "ollama.chat", True, "Rayleigh scattering.", (26, 4),
         lambda b: list(ollama.Client(host=b).chat(model="llama3.2", messages=messages, stream=True))),
        ("ollama generate stream", "ollama.generate", True, "Rayleigh scattering.", (26, 4),
         lambda b: list(ollama.Client(host=b).generate(model="llama3.2", prompt="Why is the sky blue?", stream=True))),
    ]
    failures = 0
    for name, api_format, stream, output, tokens, call in cases:
        problems = []
        try:
            direct = dump(call(upstream))
            before = get_json(api + "/api/requests?limit=1")["requests"]
            tapped = dump(call(proxy))
        except Exception as error:  # an SDK refusing what llmtap sent back is the failure to report
            print(f"FAIL: {name}: {type(error).__name__}: {error}")
            failures += 1
            continue
        if direct != tapped:
            problems.append(f"the SDK saw a difference:\n    direct: {direct}\n    llmtap: {tapped}")
        record = None
        for _ in range(100):
            latest = get_json(api + "/api/requests?limit=1")["requests"]
            if latest and (not before or latest[0]["id"] != before[0]["id"]):
                record = get_json(api + "/api/requests/" + latest[0]["id"])
                break
            time.sleep(0.02)
        if record is None:
            problems.append("no record")
        else:
            metrics = record["metrics"]
            expected = {"api_format": api_format, "is_stream": stream, "outcome": "ok"}
            if output is not None:
                expected["chat_output"] = output
            for field, value in expected.items():
                if record.get(field) != value:
                    problems.append(f"record {field} = {record.get(field)!r}, expected {value!r}")
            if tokens and (metrics["input_tokens"], metrics["output_tokens"]) != tokens:
                problems.append(f"record tokens {(metrics['input_tokens'], metrics['output_tokens'])}, expected {tokens}")
            if tokens and metrics["usage_source"] != "upstream":
                problems.append(f"usage_source {metrics['usage_source']}")
            if key in json.dumps(record):
                problems.append("the provider key is in the record")
        failures += bool(problems)
        print(("ok  " if not problems else "FAIL") + f": {name}")
        for problem in problems:
            print("  " + problem)
    print(f"{len(cases) - failures}/{len(cases)} SDK cases identical through llmtap and recorded")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
