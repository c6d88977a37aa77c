// xqg search page: plain JS, no build step. Every text from the server goes in through textContent.
"use strict";

const $ = (sel) => document.querySelector(sel);
let served = { baseline: null, index: null };
let lastAnswer = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function setMessage(text, isError) {
  const m = $("#message");
  m.textContent = text || "";
  m.className = isError ? "error" : "";
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return body.message || (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
  } catch (e) {
    return resp.statusText;
  }
}

function moveBadge(change, otherRank) {
  if (otherRank === undefined) return null;
  if (change === null) return el("span", "move up", "new");
  if (change > 0) return el("span", "move up", "▲ " + change);
  if (change < 0) return el("span", "move down", "▼ " + -change);
  return el("span", "move same", "=");
}

function hitItem(hit, side) {
  const li = el("li", "hit");
  li.tabIndex = 0;
  li.dataset.id = hit.id;
  li.dataset.side = side;
  const top = el("div", "top");
  top.append(el("span", "rank", hit.rank + "."), el("span", "title", hit.title || hit.id));
  const other = side === "augmented" ? hit.baseline_rank : hit.augmented_rank;
  const badge = served.baseline ? moveBadge(hit.rank_change, other) : null;
  if (badge) {
    badge.title = side === "augmented"
      ? (other ? "baseline rank " + other : "not in the baseline's top results")
      : (other ? "xQG rank " + other : "not in the xQG index's top results");
    top.append(badge);
  }
  li.append(top);
  const snip = el("p", "snippet", hit.snippet + (hit.snippet.length >= 240 ? "…" : ""));
  snip.dir = "auto";
  li.append(snip);
  let meta = "score " + hit.score.toFixed(4);
  const ex = hit.explanation;
  if (ex) {
    const d = ex.fusion_delta;
    meta += " · Δ " + (d >= 0 ? "+" : "") + d.toFixed(4);
    if (ex.closest_queries.length) {
      const q = ex.closest_queries[0];
      meta += " · closest generated [" + q.lang + "]: " + (q.text || "");
    }
  }
  const m = el("div", "meta", meta);
  m.dir = "auto";
  li.append(m);
  li.addEventListener("click", () => openPassage(hit));
  li.addEventListener("keydown", (e) => { if (e.key === "Enter") openPassage(hit); });
  return li;
}

function render(answer) {
  lastAnswer = answer;
  const lang = $("#lang");
  lang.hidden = false;
  lang.textContent = "language: " + answer.lang + (answer.lang_source === "detected" ? " (detected)" : "");
  const rankings = $("#rankings");
  rankings.hidden = false;
  const hasBaseline = Array.isArray(answer.baseline);
  rankings.classList.toggle("single", !hasBaseline);
  $("#col-baseline").hidden = !hasBaseline;
  const fill = (col, hits, side) => {
    const ol = $(col + " .hits");
    ol.replaceChildren(...hits.map((h) => hitItem(h, side)));
  };
  if (hasBaseline) fill("#col-baseline", answer.baseline, "baseline");
  fill("#col-augmented", answer.results, "augmented");
  const moved = answer.results.filter((h) => h.rank_change).length;
  setMessage(hasBaseline ? moved + " of " + answer.results.length + " passages moved" : "");
}

async function search(ev) {
  ev.preventDefault();
  const query = $("#q").value.trim();
  if (!query) return;
  setMessage("searching…");
  try {
    const resp = await fetch("/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: query, k: Number($("#k").value) }),
    });
    if (!resp.ok) {
      setMessage("error " + resp.status + ": " + (await errorText(resp)), true);
      return;
    }
    render(await resp.json());
  } catch (e) {
    setMessage("the server did not answer: " + e, true);
  }
}

async function openPassage(hit) {
  const dlg = $("#passage");
  $("#passage-title").textContent = hit.title || hit.id;
  $("#passage-id").textContent = hit.id;
  $("#passage-text").textContent = "loading…";
  $("#passage-generated").replaceChildren();
  const ex = hit.explanation;
  $("#passage-explain").hidden = !ex;
  if (ex) {
    $("#passage-scores").textContent = "fused vector " + ex.fused_score.toFixed(4) + " vs plain passage " +
      ex.plain_score.toFixed(4) + " (Δ " + (ex.fusion_delta >= 0 ? "+" : "") + ex.fusion_delta.toFixed(4) +
      "). Its generated queries closest to yours:";
    $("#passage-closest").replaceChildren(...ex.closest_queries.map((q) => {
      const li = el("li", null, "[" + q.lang + "] " + (q.text || "") + "  (" + q.score.toFixed(3) + ")");
      li.dir = "auto";
      return li;
    }));
  }
  if (!dlg.open) dlg.showModal();
  const resp = await fetch("/passages/" + encodeURIComponent(hit.id));
  if (!resp.ok) {
    $("#passage-text").textContent = "error " + resp.status + ": " + (await errorText(resp));
    return;
  }
  const p = await resp.json();
  $("#passage-text").textContent = p.text;
  $("#passage-count").textContent = "(" + p.generated_count + ")";
  const langs = Object.keys(p.generated).sort();
  const box = $("#passage-generated");
  if (!langs.length) box.append(el("p", "muted", "no generated queries for this passage"));
  langs.forEach((lang, i) => {
    const det = el("details");
    det.open = i < 3 || lang === (lastAnswer && lastAnswer.lang);
    det.dataset.lang = lang;
    det.append(el("summary", null, lang + " (" + p.generated[lang].length + ")"));
    const ul = el("ul");
    p.generated[lang].forEach((t) => { const li = el("li", "gen", t); li.dir = "auto"; ul.append(li); });
    det.append(ul);
    box.append(det);
  });
}

async function init() {
  $("#search-form").addEventListener("submit", search);
  try {
    const h = await (await fetch("/health")).json();
    served = h;
    const idx = h.index ? h.index.name : "index";
    $("#h-augmented").textContent = (h.index && h.index.augmented ? "xQG-augmented" : "Results") + " · " + idx;
    if (h.baseline) $("#h-baseline").textContent = "Baseline · " + h.baseline.name;
    $("#served").textContent = h.passages + " passages · " + h.generated_queries + " generated queries · " + h.model;
  } catch (e) {
    setMessage("cannot reach the server: " + e, true);
  }
}

document.addEventListener("DOMContentLoaded", init);
