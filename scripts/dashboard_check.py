#!/usr/bin/env python3
"""The web dashboard in a real browser.

Usage: dashboard_check.py PATH_TO_LLMTAP_BINARY [SCREENSHOT_DIR]

Fills a fresh database with real proxied calls (through `llmtap serve` in front of the fake
upstream of harness.py), then drives headless Chromium over the DevTools protocol:
every view renders and shows the totals the query API gives, links navigate, the live feed
shows a call made while it is open, the token prompt appears under --api-token, and no
script error or console error happens. Writes a screenshot of each view. Exits 1 on failure.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

from harness import get_json, running_llmtap

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def post(url, body, headers=()):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("authorization", "Bearer sk-dashboard-check")
    for name, value in headers:
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def fill(proxy):
    """Two sessions of real calls: a tagged two-turn OpenAI chat, an Anthropic call, an unpriced local model."""
    first = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Capital of France?"}]
    headers = [("X-Session-Id", "dash-1"), ("X-Tap-Meta-Team", "search")]
    post(proxy + "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": first}, headers)
    second = first + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]
    post(proxy + "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": second, "stream": True}, headers)
    post(proxy + "/anthropic/v1/messages", {"model": "claude-sonnet-4-5-20250929", "max_tokens": 64,
                                            "messages": [{"role": "user", "content": "Hi"}]}, [("X-Session-Id", "dash-2")])
    post(proxy + "/api/chat", {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "Why?"}]})


class Browser:
    """One headless Chromium tab over the DevTools protocol; collects console errors and exceptions."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="llmtap-chromium-")
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "--window-size=1280,1000", "about:blank"],
            stderr=subprocess.PIPE, text=True)
        url = None
        for line in self.process.stderr:
            if "DevTools listening on" in line:
                url = line.split("listening on", 1)[1].strip()
                break
        if url is None:
            raise RuntimeError("chromium did not start")
        self.socket = websocket.create_connection(url, timeout=30)
        self.next_id = 0
        self.problems = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable", session=True)

    def send(self, method, params=None, session=False):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.note(reply)

    def note(self, event):
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.problems.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            self.problems.append("console: " + json.dumps(params.get("args", []))[:300])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.problems.append("log: " + params["entry"].get("text", "")[:300])

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, True)
        return result.get("result", {}).get("value")

    def wait(self, expression, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def open(self, url, path):
        self.send("Page.navigate", {"url": url}, True)
        return self.wait(f"document.body && document.body.dataset.ready === {json.dumps(path)}")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, True)["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def text(browser, selector):
    return browser.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")


def main(binary, shots):
    if CHROMIUM is None:
        print("FAIL: no chromium to run the dashboard in")
        return 1
    os.makedirs(shots, exist_ok=True)
    failures = []

    def check(name, condition, detail=""):
        print(("ok  " if condition else "FAIL") + f": {name}" + (f" ({detail})" if detail and not condition else ""))
        if not condition:
            failures.append(name)

    with running_llmtap(binary) as tap:
        fill(tap["proxy"])
        api = tap["api"]
        for _ in range(100):
            if get_json(api + "/api/cost")["requests"] >= 4:
                break
            time.sleep(0.05)
        month = get_json(api + f"/api/cost?group_by=model&from={int(time.time()) - 30 * 86400}")
        browser = Browser()
        try:
            browser.open(api + "/", "/")
            browser.screenshot(os.path.join(shots, "overview.png"))
            check("overview shows the 30-day call count", text(browser, "#calls-30d .value") == f"{month['requests']:,}",
                  text(browser, "#calls-30d .value"))
            cost = month["total_cost_usd"]
            check("overview shows the 30-day spend", text(browser, "#spend-30d .value").startswith("$") and cost > 0,
                  text(browser, "#spend-30d .value"))
            check("overview lists the unpriced local model", "llama3.2" in text(browser, "main"))
            check("overview charts cost per day", browser.evaluate("document.querySelectorAll('.chart rect').length") > 0)
            check("overview shows the tag", "search" in text(browser, "main"))

            browser.evaluate("document.querySelector('nav a[href=\"/sessions\"]').click()")
            browser.wait("document.body.dataset.ready === '/sessions'")
            browser.screenshot(os.path.join(shots, "sessions.png"))
            listed = browser.evaluate("[...document.querySelectorAll('#list a')].map(a => a.textContent)")
            check("sessions lists both sessions", {"dash-1", "dash-2"} <= set(listed or []), listed)

            browser.evaluate("[...document.querySelectorAll('#list a')].find(a => a.textContent === 'dash-1').click()")
            browser.wait("document.body.dataset.ready === '/sessions/dash-1'")
            browser.screenshot(os.path.join(shots, "session.png"))
            transcript = text(browser, "main")
            check("session link opens the transcript", "And Italy?" in transcript and "You are terse." in transcript)
            check("transcript shows its call count", text(browser, "#session-calls") == "2")

            browser.evaluate("document.querySelector('.turn a[href^=\"/calls/\"]').click()")
            call_path = browser.wait("document.body.dataset.ready && document.body.dataset.ready.startsWith('/calls/') && location.pathname")
            browser.screenshot(os.path.join(shots, "call.png"))
            page = text(browser, "main")
            check("call view shows parameters, metrics and the raw request", "gpt-4o-mini" in page and "Raw request" in page
                  and "Capital of France?" in page)

            browser.open(api + call_path, call_path)
            check("a call's URL reloads to the same view", "Raw response" in text(browser, "main"))
            browser.evaluate("history.back()")
            browser.wait("document.body.dataset.ready === '/sessions/dash-1'")
            check("back returns to the transcript", "And Italy?" in text(browser, "main"))

            search_path = "/sessions?q=Italy"
            browser.open(api + search_path, "/sessions")
            listed = browser.evaluate("[...document.querySelectorAll('#list a')].map(a => a.textContent)")
            check("session search by text", listed == ["dash-1"], listed)

            browser.open(api + "/live", "/live")
            post(tap["proxy"] + "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "live?"}]},
                 [("X-Session-Id", "dash-live")])
            browser.wait("document.querySelector('#feed') && document.querySelector('#feed').textContent.includes('dash-live')")
            browser.screenshot(os.path.join(shots, "live.png"))
            check("live feed shows a call made while it is open", True)
            check("no script or console errors", not browser.problems, browser.problems)
        finally:
            browser.close()

    with running_llmtap(binary, "--api-token", "dash-token") as tap:
        browser = Browser()
        try:
            browser.send("Page.navigate", {"url": tap["api"] + "/"}, True)
            browser.wait("!!document.getElementById('token-form')")
            check("with --api-token the dashboard asks for the token", True)
            browser.evaluate("document.querySelector('#token-form input').value = 'dash-token';"
                             "document.querySelector('#token-form button').click()")
            browser.wait("document.body.dataset.ready === '/'")
            check("the token opens the dashboard", "#calls-30d" and text(browser, "#calls-30d .value") == "0")
            browser.problems = [p for p in browser.problems if "401" not in p]  # the first, tokenless fetch
            check("no script errors under --api-token", not browser.problems, browser.problems)
        finally:
            browser.close()

    print(f"screenshots in {shots}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ".build/dashboard-screenshots"))
