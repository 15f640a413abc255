"""What the Python checks share: a fake upstream speaking OpenAI, Anthropic and Ollama wire
formats (JSON, SSE, NDJSON) and `llmtap serve` started in front of it. Standard library only."""
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
        shutil.rmtree(workdir, ignore_errors=True)
