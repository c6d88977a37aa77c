"""``xqg serve`` for real: e5-small over XQuAD, the committed generated queries, the CLI's own
uvicorn process, and Debian's chromium driven by Playwright.

The indexes are the demo's (baseline + xQG mean-norm α=0.5 fusion), with the first 2 of the 5
committed generated queries per language to keep the build short. Set ``XQG_SCREENSHOT_DIR`` to
also copy the page's screenshots there (the README's picture comes from this test).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from xqg.paths import data_root

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "reports" / "generated" / "xquad-gemma-lora"
GEN_LANGS = {"ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (data_root() / "xquad").is_dir(), reason=f"XQuAD not found under {data_root()}"),
    pytest.mark.skipif(not (GENERATED / "manifest.json").is_file(), reason=f"{GENERATED} is missing"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.models.encoder import BiEncoder
    from xqg.pipeline import build_demo_indexes, demo_config

    root = tmp_path_factory.mktemp("serve-live")
    encoder = BiEncoder(demo_config().encoder)
    build_demo_indexes(root, GENERATED, langs=("en", "ar"), n=2, encoder=encoder, show_progress=False)
    return {"root": root, "bench": load_xquad(["en", "ar"], split="all"), "encoder": encoder}


@pytest.fixture(scope="module")
def server(demo: dict):
    """``xqg serve`` in its own process on a free loopback port, as a user starts it."""
    root = demo["root"]
    exe = Path(sys.executable).with_name("xqg")
    cmd = [str(exe), "serve", str(root / "index-xqg"), "--baseline", str(root / "index"), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "Uvicorn running on" in line:
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(180):
        proc.kill()
        pytest.fail("xqg serve did not start:\n" + "".join(lines))
    url = re.search(r"http://127\.0\.0\.1:\d+", "".join(lines)).group(0)  # type: ignore[union-attr]
    yield {"url": url, "proc": proc, "lines": lines}
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_service_ranks_as_the_batch_pipeline_on_arabic_questions(demo: dict, server: dict) -> None:
    from xqg.search import search_queries

    questions = demo["bench"].queries["ar"][:32]
    got = []
    with httpx.Client(base_url=server["url"], timeout=60) as c:
        for i in range(0, len(questions), 16):
            body = {"queries": [{"query": q.text} for q in questions[i : i + 16]], "k": 10}
            r = c.post("/search/batch", json=body)
            assert r.status_code == 200, r.text
            got += r.json()["results"]
    for key, index in (("results", "index-xqg"), ("baseline", "index")):
        run = search_queries(demo["root"] / index, questions, encoder=demo["encoder"], show_progress=False)
        for q, ans in zip(questions, got, strict=True):
            assert [h["id"] for h in ans[key]] == list(run[q.id])[:10], (key, q.id)
    assert all(a["lang"] == "ar" and a["lang_source"] == "detected" for a in got)
    # The real model finds the paragraph that holds the answer for most questions.
    qrels = demo["bench"].qrels
    found = [any(h["id"] in qrels[q.id] for h in a["results"]) for q, a in zip(questions, got, strict=True)]
    assert sum(found) >= 0.8 * len(found)
    moved = [h for a in got for h in a["results"] if h["rank_change"]]
    assert moved, "fusion moved no passage in 32 questions"
    ex = got[0]["results"][0]["explanation"]
    assert ex["closest_queries"] and {c["lang"] for c in ex["closest_queries"]} <= GEN_LANGS


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed and could not be")
def test_browser_arabic_query_both_rankings_and_generated_queries(
    demo: dict, server: dict, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    query = demo["bench"].queries["ar"][0].text  # a real XQuAD question (Super Bowl 50)
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server["url"] + "/")
            page.wait_for_function("document.querySelector('#h-baseline').textContent.includes('index')")
            page.fill("#q", query)
            page.press("#q", "Enter")
            page.wait_for_selector("#col-augmented .hit")
            assert page.locator("#col-baseline .hit").count() == 10
            assert page.locator("#col-augmented .hit").count() == 10
            assert "ar" in page.inner_text("#lang") and "detected" in page.inner_text("#lang")
            assert page.locator("#col-augmented .move").count() == 10  # every hit shows its move
            assert "xQG-augmented" in page.inner_text("#h-augmented")
            shots.append(tmp_path / "serve-page.png")
            page.screenshot(path=str(shots[-1]), full_page=False)

            page.click("#col-augmented .hit >> nth=0")
            page.wait_for_selector("#passage-generated li.gen")
            assert page.locator("#passage").evaluate("d => d.open")
            generated = page.locator("#passage-generated li.gen").all_inner_texts()
            assert len(generated) == 11 * 5  # every committed query, not only the 2 fused per language
            arabic = page.locator('#passage-generated details[data-lang="ar"] li.gen').all_inner_texts()
            assert arabic and all(re.search(r"[\u0600-\u06ff]", t) for t in arabic)
            assert page.locator("#passage-closest li").count() == 3
            shots.append(tmp_path / "serve-passage.png")
            page.screenshot(path=str(shots[-1]))

            page.click("#passage-close")
            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
            box_b = page.locator("#col-baseline").bounding_box()
            box_a = page.locator("#col-augmented").bounding_box()
            assert box_a["y"] >= box_b["y"] + box_b["height"] - 1  # stacked, not squeezed side by side
            shots.append(tmp_path / "serve-phone.png")
            page.screenshot(path=str(shots[-1]))
        finally:
            browser.close()
    for shot in shots:
        assert shot.stat().st_size > 10_000
    if out := os.environ.get("XQG_SCREENSHOT_DIR"):
        for shot in shots:
            shutil.copy(shot, Path(out) / shot.name)


def test_sigterm_shuts_down_gracefully(server: dict) -> None:
    proc = server["proc"]
    out: dict = {}
    body = {"queries": [{"query": f"Who won Super Bowl {i}?"} for i in range(16)], "k": 10}

    def call() -> None:
        out["r"] = httpx.post(server["url"] + "/search/batch", json=body, timeout=60)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.05)  # the request is on its way or being encoded
    proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert proc.wait(60) == 0
    assert out["r"].status_code == 200 and len(out["r"].json()["results"]) == 16
    log = "".join(server["lines"])
    assert "Shutting down" in log and "Finished server process" in log
    assert "stopped by SIGTERM" in log and "Traceback" not in log
