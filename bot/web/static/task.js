// The task page: approved snippets, a live SMS segment counter (as Twilio bills it) and a drug-name warning.
"use strict";

(function () {
  const GSM7_BASIC = new Set(Array.from(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
  ));
  const GSM7_EXTENSION = new Set(Array.from("\f^{}\\[]~|€"));

  // Segments for per-character costs; a character (escape pair, surrogate pair) is never split.
  function pack(units, single, concat) {
    const total = units.reduce((a, b) => a + b, 0);
    if (total <= single) { return 1; }
    let segments = 1;
    let used = 0;
    units.forEach((cost) => {
      if (used + cost > concat) { segments += 1; used = 0; }
      used += cost;
    });
    return segments;
  }

  function segmentInfo(text) {
    const chars = Array.from(text);  // code points
    const gsm = chars.every((ch) => GSM7_BASIC.has(ch) || GSM7_EXTENSION.has(ch));
    if (gsm) {
      const units = chars.map((ch) => (GSM7_EXTENSION.has(ch) ? 2 : 1));
      return { encoding: "GSM-7", segments: pack(units, 160, 153), characters: chars.length };
    }
    const units = chars.map((ch) => (ch.codePointAt(0) > 0xffff ? 2 : 1));
    return { encoding: "UCS-2", segments: pack(units, 70, 67), characters: chars.length };
  }
  window.midbotSegmentInfo = segmentInfo;

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  function drugWords(drugs) {
    const words = [];
    drugs.forEach((drug) => {
      const name = drug.trim().toLowerCase();
      if (!name) { return; }
      words.push(name);
      const first = name.split(/[\s,/(]+/)[0];
      if (first.length >= 4) { words.push(first); }
    });
    return words;
  }

  // The thread opens on its newest message (it is oldest-first, like a phone's).
  const thread = document.getElementById("thread");
  if (thread) { thread.scrollTop = thread.scrollHeight; }

  // Shortcuts: c claim, r reply, e resolve (never while typing in a field).
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const target = { c: "claim", r: "reply-body", e: "outcome" }[event.key];
    const el = target ? document.getElementById(target) : null;
    if (!el) { return; }
    event.preventDefault();
    if (target === "claim") { el.click(); } else { el.focus(); }
  });

  const body = document.getElementById("reply-body");
  if (!body) { return; }
  // A typed reply survives an expired session (sign-in again lands back here): kept in this browser only,
  // dropped once the reply is sent.
  const draftKey = body.dataset.draftKey;
  function saveDraft() {
    try {
      if (body.value.trim()) { window.localStorage.setItem(draftKey, body.value); }
      else { window.localStorage.removeItem(draftKey); }
    } catch (err) { /* storage full or disabled: nothing to keep */ }
  }
  try {
    if (document.body.dataset.done === "reply") { window.localStorage.removeItem(draftKey); }
    else if (!body.value) { body.value = window.localStorage.getItem(draftKey) || ""; }
  } catch (err) { /* storage disabled */ }
  const counter = document.getElementById("segment-counter");
  const warning = document.getElementById("drug-warning");
  const snippet = document.getElementById("snippet");
  let drugs = [];
  try { drugs = JSON.parse(document.body.dataset.drugs || "[]"); } catch (err) { drugs = []; }
  const detailed = document.body.dataset.detailed === "1";
  const patterns = drugWords(drugs).map((w) => new RegExp("(^|[^\\p{L}\\p{N}_])" + escapeRegExp(w) + "(?![\\p{L}\\p{N}_])", "iu"));

  function update() {
    const text = body.value;
    const info = segmentInfo(text);
    counter.textContent = info.characters + " characters · " + info.encoding + " · " + info.segments +
      " segment" + (info.segments > 1 ? "s" : "");
    counter.classList.toggle("multi", info.segments > 1);
    counter.dataset.segments = String(info.segments);
    counter.dataset.encoding = info.encoding;
    const named = !detailed && patterns.some((re) => re.test(text));
    warning.hidden = !named;
  }

  if (snippet) {
    snippet.addEventListener("change", () => {
      if (snippet.value) {
        body.value = snippet.value;
        update();
        saveDraft();
        body.focus();
      }
    });
  }
  body.addEventListener("input", () => { update(); saveDraft(); });
  update();
})();
