"""The web page in a real headless browser (Debian's ``chromium``; scripts/setup.sh installs it).

Two ways in: ``--dump-dom`` of a ``#sort=`` URL (the initial sort), and the DevTools protocol over
``--remote-debugging-pipe`` (standard library only) to click a column header with a real mouse
event and read the order back. Skipped, saying why, where no chromium can be found.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pss_bench.leaderboard import default_reference_dir, render_leaderboard

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (scripts/setup.sh installs "
                                                         "it with apt-get where it can)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]
TABLE = "table1-fiou-resnet50"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = render_leaderboard(None, default_reference_dir(), tmp_path_factory.mktemp("site") / "LEADERBOARD.md",
                             figures=False, html=True)
    return out.parent / "index.html"


def _browser(tmp_path: Path, *args: str, timeout: float = 90) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _rows(dom: str, table_id: str) -> list[tuple[str, list[str]]]:
    """(entry name, cell texts) of the table's body rows, in DOM order."""
    table = re.search(rf'<table class="board" id="{table_id}"[^>]*>(.*?)</table>', dom, re.S).group(1)
    out = []
    for row in re.findall(r"<tr data-i=\"\d+\">(.*?)</tr>", table, re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out.append((cells[1].rstrip("†‡§¶‖◊°"), cells[2:]))  # after the rank: name, then Source, Mean, users
    return out


def test_page_is_self_contained(page):
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script>" in html and "<style>" in html and "<link" not in html
    for table_id in ("table1-fiou-resnet50", "table2-miou-vgg16", "table3-fiou-vgg16", "table5-fiou-vgg16"):
        assert f'id="{table_id}"' in html and f'href="csv/{table_id}.csv"' in html
    assert 'title="reported in the paper' in html   # footnote marks explain themselves


def test_rows_render_and_the_url_hash_sorts_a_column(page, tmp_path):
    plain = _rows(_browser(tmp_path, "--dump-dom", page.as_uri()), TABLE)
    assert [name for name, _ in plain][:2] == ["OURS-S2", "OURS-S1"] and len(plain) == 8
    dom = _browser(tmp_path, "--dump-dom", page.as_uri() + f"#sort={TABLE}:6:desc")  # column 6: user 3
    rows = _rows(dom, TABLE)
    user3 = [float(cells[4]) for _, cells in rows]
    assert user3 == sorted(user3, reverse=True) and len(rows) == 8
    assert [name for name, _ in rows][:3] == ["OURS-S2", "OURS-S1", "MRNet"]   # 54.81, 54.74, 54.29
    assert re.search(rf'id="{TABLE}"[^>]*data-sorted="6:desc"', dom)
    asc = _rows(_browser(tmp_path, "--dump-dom", page.as_uri() + f"#sort={TABLE}:1:asc"), TABLE)
    assert [n for n, _ in asc] == sorted((n for n, _ in asc), key=str.lower)


class DevTools:
    """Chrome DevTools protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-framed)."""

    def __init__(self, url: str, profile: Path):
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become fds 3 and 4
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-pipe", url],
                                     preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._id = b"", 0

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError, EOFError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


@contextlib.contextmanager
def loaded_page(page: Path, tmp_path: Path):
    """``(tools, session, evaluate)`` on the page once its table and scripts are there."""
    tools = DevTools(page.as_uri(), tmp_path / "cdp-profile")
    try:
        deadline = time.monotonic() + 30
        targets = []
        while not targets and time.monotonic() < deadline:
            targets = [t for t in tools.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        session = tools.call("Target.attachToTarget", {"targetId": targets[0]["targetId"],
                                                       "flatten": True})["sessionId"]

        def evaluate(expression: str):
            result = tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
            assert "exceptionDetails" not in result, result
            return result["result"].get("value")

        # The target may still show about:blank: wait for the page's table and its scripts.
        while not evaluate(f"document.readyState === 'complete' && !!document.getElementById('{TABLE}')"
                           " && typeof sortTable === 'function'"):
            assert time.monotonic() < deadline, "page did not load"
            time.sleep(0.1)
        yield tools, session, evaluate
    finally:
        tools.close()


def test_clicking_a_header_sorts_through_the_same_function(page, tmp_path):
    with loaded_page(page, tmp_path) as (tools, session, evaluate):
        box = evaluate(f"(() => {{ const th = document.querySelector('#{TABLE} thead th:nth-child(9)');"
                       "th.scrollIntoView(); const r = th.getBoundingClientRect();"
                       "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        order = (f"Array.from(document.querySelectorAll('#{TABLE} tbody tr'))"
                 ".map(r => [r.cells[1].textContent, parseFloat(r.cells[8].textContent)])")  # user 5

        def click() -> None:
            for kind in ("mousePressed", "mouseReleased"):
                tools.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                        "button": "left", "clickCount": 1}, session)

        click()  # user 5, first click: best first
        rows = evaluate(order)
        assert [v for _, v in rows] == sorted((v for _, v in rows), reverse=True)
        assert rows[0][0].startswith("OURS-S2") and rows[0][1] == 66.87
        assert evaluate("location.hash") == f"#sort={TABLE}:8:desc"
        assert evaluate(f"document.querySelector('#{TABLE}').dataset.sorted") == "8:desc"
        click()  # second click: reversed
        rows = evaluate(order)
        assert [v for _, v in rows] == sorted(v for _, v in rows)
        # The click handler and the URL hash call the same sortTable.
        assert evaluate(f"sortTable('{TABLE}', 3, 'asc') && document.querySelector('#{TABLE} tbody tr')"
                        ".cells[1].textContent").startswith("No-DA")  # column 3: Mean
        shot = tools.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        assert len(shot) > 10_000


def test_headers_sort_from_the_keyboard_and_say_their_order(page, tmp_path):
    """Each header holds a button: Tab moves between them, Enter and Space sort, and aria-sort
    says the order (Mean, descending, as rendered)."""
    with loaded_page(page, tmp_path) as (tools, session, evaluate):
        def press(key: str, code: int, text: str = "") -> None:
            for kind in ("keyDown", "keyUp"):
                params = {"type": kind, "key": key, "code": key if key != " " else "Space",
                          "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
                if kind == "keyDown" and text:
                    params["text"] = text
                tools.call("Input.dispatchKeyEvent", params, session)

        sorts = f"Array.from(document.querySelectorAll('#{TABLE} thead th')).map(th => th.getAttribute('aria-sort'))"
        initial = evaluate(sorts)
        assert initial[3] == "descending" and [s for i, s in enumerate(initial) if i != 3] == [None] * (len(initial) - 1)
        assert evaluate(f"document.querySelector('#{TABLE} thead th:nth-child(4) button').textContent") == "Mean"
        evaluate(f"document.querySelector('#{TABLE} thead th:nth-child(4) button').focus()")
        press("Tab", 9)  # to the next header's button: the 95 % CI / Δ paper columns are absent here: user 1
        focused = evaluate("[document.activeElement.tagName, document.activeElement.textContent,"
                           " document.activeElement.closest('th').cellIndex]")
        assert focused == ["BUTTON", "1", 4]
        press("Enter", 13, "\r")
        order = (f"Array.from(document.querySelectorAll('#{TABLE} tbody tr'))"
                 ".map(r => parseFloat(r.cells[4].textContent))")
        values = evaluate(order)
        assert values == sorted(values, reverse=True)
        assert evaluate(sorts)[4] == "descending" and evaluate(sorts)[3] is None
        press(" ", 32, " ")
        values = evaluate(order)
        assert values == sorted(values) and evaluate(sorts)[4] == "ascending"
        assert evaluate("location.hash") == f"#sort={TABLE}:4:asc"


def test_screenshot(page, tmp_path):
    shot = tmp_path / "page.png"
    _browser(tmp_path, f"--screenshot={shot}", page.as_uri() + f"#sort={TABLE}:6:desc")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
