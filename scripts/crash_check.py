#!/usr/bin/env python3
"""kill -9 at random moments: nothing committed is lost, the file stays sound.

Usage: crash_check.py PATH_TO_LLMTAP_BINARY [ROUNDS]

Runs `llmtap serve` on one database in front of the fake upstream of harness.py, sends a
burst of calls from 8 client threads (streamed and not, each in its own session), and
`kill -9`s llmtap at a random moment; then restarts it on the same file. ROUNDS (default
24) alternate between the two durability modes:

- `--durability sync`: every call whose response the client received completely must be
  in the database after the restart.
- `--durability fast` (default): every call that was committed before the kill (read from
  the file by another process just before it) must be there; calls still in the ~10 ms
  queue may be lost, and the script prints how many were (the loss window).

After each restart: `PRAGMA integrity_check` is ok and `llmtap verify` passes (the audit
chain is unbroken). Exits 1 on any failure. Standard library only.
"""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

from harness import Upstream, free_port


def start(binary, db, upstream, mode):
    port, api_port = free_port(), free_port()
    process = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--api-port", str(api_port), "--db", db, "--upstream", upstream,
         "--durability", mode, "--log-level", "error"])
    for _ in range(400):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=1).read()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.025)
    raise RuntimeError("llmtap did not start")


def client(proxy, tag, completed, stop):
    """Sends calls until stopped; records the session ids of calls whose response ended cleanly."""
    n = 0
    while not stop.is_set():
        session = f"{tag}-{n}"
        n += 1
        body = json.dumps({"model": "gpt-4o-mini", "stream": n % 2 == 0,
                           "messages": [{"role": "user", "content": f"call {session}"}]}).encode()
        request = urllib.request.Request(
            f"{proxy}/v1/chat/completions", data=body,
            headers={"content-type": "application/json", "x-session-id": session, "authorization": "Bearer sk-crash"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()  # raises if the body is cut short
            completed.append(session)
        except (OSError, urllib.error.URLError, ValueError, Exception):
            return  # llmtap was killed


def committed_sessions(db):
    """Session ids committed so far, read by another process (WAL: only committed transactions are visible)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return {row[0] for row in conn.execute("SELECT session_id FROM calls WHERE session_id IS NOT NULL")}
    except sqlite3.Error:
        return set()


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # llmtap killed mid-call resets the upstream connection: expected here


def main(binary, rounds):
    upstream = QuietServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up = f"http://127.0.0.1:{upstream.server_address[1]}"
    workdir = tempfile.mkdtemp(prefix="llmtap-crash-")
    db = os.path.join(workdir, "calls.sqlite")
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    expected = set()  # sessions that must be in the database from here on
    failures = 0
    lost_fast = []
    for round_ in range(rounds):
        mode = "sync" if round_ % 2 == 0 else "fast"
        process, proxy = start(binary, db, up, mode)
        completed, stop = [], threading.Event()
        threads = [threading.Thread(target=client, args=(proxy, f"r{round_}-t{t}", completed, stop), daemon=True)
                   for t in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.05, 0.8))
        before_kill = committed_sessions(db) if mode == "fast" else set()
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        finished = set(completed)
        if mode == "sync":
            expected |= finished
        else:
            expected |= before_kill
        # Restart on the same file: it opens, recovers its WAL and must hold everything expected.
        process, _ = start(binary, db, up, mode)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        present = committed_sessions(db)
        missing = expected - present
        verify = subprocess.run([binary, "verify", "--db", db], capture_output=True, text=True)
        lost = len(finished - present)
        if mode == "fast":
            lost_fast.append(lost)
        ok = integrity == "ok" and not missing and verify.returncode == 0
        failures += not ok
        print(f"round {round_ + 1:2}/{rounds} {mode:4}: {len(finished):4} calls answered, "
              f"{len(present):5} stored in all, integrity {integrity}, verify rc={verify.returncode}, "
              f"missing {len(missing)}" + (f", answered but not yet committed at the kill: {lost}" if mode == "fast" else "")
              + ("" if ok else "  << FAIL"))
        if not ok and verify.returncode != 0:
            print(verify.stdout + verify.stderr)
    upstream.shutdown()
    if failures:
        print(f"database kept for inspection: {db}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{rounds - failures}/{rounds} kill -9 rounds sound; sync mode lost nothing answered; "
          f"fast mode lost at most {max(lost_fast or [0])} answered calls per kill (the queue's ~10 ms)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 24))
