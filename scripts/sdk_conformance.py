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
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

import anthropic
import ollama
import openai

from harness import get_json, running_llmtap

# The SDKs warn about model names' retirement dates; the fake upstream does not care.
warnings.filterwarnings("ignore", category=DeprecationWarning)


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
