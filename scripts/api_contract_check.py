#!/usr/bin/env python3
"""The query API under schemathesis: generated requests, hostile ones included, against
`/openapi.json` of a running llmtap that holds some calls.

Usage: api_contract_check.py PATH_TO_LLMTAP_BINARY [SECONDS]

Runs every check schemathesis has (no server errors, responses match the documented
schemas, status codes and content types, undocumented methods get 405, invalid input is
rejected, valid input accepted — see schemathesis.toml for the two exceptions) for SECONDS
(default 90). Exits with schemathesis's status. Run by `.ci/run` in the virtualenv.
"""
import json
import os
import subprocess
import sys
import urllib.request

from harness import running_llmtap


def main(binary, seconds):
    with running_llmtap(binary) as tap:
        for n in range(6):
            body = json.dumps({"model": "gpt-4o-mini", "stream": n % 2 == 0,
                               "messages": [{"role": "user", "content": f"question {n}"}]}).encode()
            request = urllib.request.Request(
                f"{tap['proxy']}/v1/chat/completions", data=body,
                headers={"content-type": "application/json", "x-session-id": f"contract-{n % 2}",
                         "x-tap-meta-team": "search"})
            urllib.request.urlopen(request, timeout=10).read()
        here = os.path.dirname(os.path.abspath(__file__))
        command = [os.path.join(os.path.dirname(sys.executable), "schemathesis"),
                   "--config-file", os.path.join(here, "schemathesis.toml"),
                   "run", f"{tap['api']}/openapi.json", "--checks", "all", "--max-time", str(seconds),
                   "--workers", "2", "--phases", "examples,coverage,fuzzing", "--seed", "20261122"]
        return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 90))
