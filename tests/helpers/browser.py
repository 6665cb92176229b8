"""A headless Chromium driven over the Chrome DevTools protocol: what a user sees of a web page, in a test.

Only Chromium itself and ``aiohttp`` (already installed: MLflow and Ray's dashboard need it) are used; no browser
download, no Selenium. Each ``Browser`` has a fresh profile (a new user: no local storage, no cookies)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class Browser:
    """One headless Chromium with one page. ``evaluate`` runs JavaScript in the page; ``wait_for`` polls a
    JavaScript expression until it is truthy (a JS app renders when it likes: no fixed sleeps)."""

    def __init__(self, profile: Path, width: int = 1600, height: int = 900, start_timeout: float = 60):
        self._loop = asyncio.new_event_loop()
        self._ids = itertools.count(1)
        profile.mkdir(parents=True, exist_ok=True)
        command = [find_chromium() or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
                   f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = _devtools_port(profile / "DevToolsActivePort", self._process, start_timeout)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:  # noqa: S310
            page = next(t for t in json.load(answer) if t["type"] == "page")
        self._session = None
        self._ws = self._run(self._connect(page["webSocketDebuggerUrl"]))
        self.call("Page.enable")
        self.call("Runtime.enable")

    async def _connect(self, url: str):
        import aiohttp

        self._session = aiohttp.ClientSession()
        return await self._session.ws_connect(url, max_msg_size=0)

    def _run(self, coroutine):
        return self._loop.run_until_complete(coroutine)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        return self._run(self._call(method, params))

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        await self._ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads((await self._ws.receive(timeout=60)).data)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str | None = None) -> Any:
        """The first truthy value of ``expression``, polled until ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"after {timeout:g}s still false: {what or expression}")
            time.sleep(0.25)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self._run(self._ws.close())
            self._run(self._session.close())
        finally:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._loop.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _devtools_port(active_port: Path, process: subprocess.Popen, timeout: float) -> int:
    """The port Chromium chose, from the file it writes into its profile once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode} before listening")
        if active_port.exists() and (lines := active_port.read_text().split()):
            return int(lines[0])
        time.sleep(0.1)
    raise TimeoutError(f"chromium wrote no {active_port.name} within {timeout:g}s")
