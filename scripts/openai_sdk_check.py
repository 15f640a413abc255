#!/usr/bin/env python3
"""Checks that the official openai SDK sees no difference through llmtap.

Usage: openai_sdk_check.py DIRECT_BASE_URL LLMTAP_BASE_URL
(e.g. http://127.0.0.1:18111/v1 http://127.0.0.1:18112/v1), with both pointing at the
same deterministic upstream (the bench harness's mock). For a non-streaming call, a
stream without usage, and a stream asking for usage, it compares what the SDK returns
directly and through llmtap, and prints one line per case; exit status 1 on a difference.
"""
import sys

from openai import OpenAI

direct, tapped = (OpenAI(base_url=u, api_key="sk-sdk-check") for u in sys.argv[1:3])
messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]


def normalize(obj):
    """Drops the fields a mock makes unique per call (ids, timestamps)."""
    d = obj.model_dump()
    d.pop("id", None)
    d.pop("created", None)
    return d


def run(client, **kw):
    if not kw.get("stream"):
        return normalize(client.chat.completions.create(model="mock-w20", messages=messages, **kw))
    return [normalize(c) for c in client.chat.completions.create(model="mock-c5-d2", messages=messages, **kw)]


failures = 0
for name, kw in [
    ("non-stream", {}),
    ("stream", {"stream": True}),
    ("stream with include_usage", {"stream": True, "stream_options": {"include_usage": True}}),
]:
    a, b = run(direct, **kw), run(tapped, **kw)
    same = a == b
    failures += not same
    detail = f"{len(a)} chunks" if isinstance(a, list) else f"{a['usage']['completion_tokens']} tokens"
    print(f"{'same' if same else 'DIFFERENT'}: {name} ({detail})")
    if not same:
        print("  direct:", a, "\n  llmtap:", b)
sys.exit(1 if failures else 0)
