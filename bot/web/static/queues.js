// The queues page: poll for new tasks without a reload, and keyboard navigation (j/k, Enter).
"use strict";

(function () {
  const body = document.body;
  const rowsEl = document.getElementById("task-rows");
  const emptyEl = document.getElementById("empty");
  const liveEl = document.getElementById("live");
  const url = body.dataset.jsonUrl;
  const seconds = Math.max(1, Number(body.dataset.pollSeconds || "5"));
  let selected = -1;
  let known = new Set(Array.from(rowsEl.querySelectorAll("tr")).map((tr) => tr.dataset.id));

  function rows() {
    return Array.from(rowsEl.querySelectorAll("tr.task-row"));
  }

  function select(index) {
    const all = rows();
    if (all.length === 0) { selected = -1; return; }
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((tr, i) => {
      tr.classList.toggle("selected", i === selected);
      tr.setAttribute("aria-selected", i === selected ? "true" : "false");
    });
    const link = all[selected].querySelector("a.task-link");
    if (link) { link.focus(); }
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function link(href, cls, text) {
    const a = el("a", cls, text);
    a.href = href;
    return a;
  }

  // Every text goes in through textContent: what a patient typed is never parsed as markup.
  function buildRow(t, fresh, checked) {
    const tr = document.createElement("tr");
    tr.className = "task-row" + (t.urgent ? " urgent" : "") + (t.overdue ? " overdue" : "") + (fresh ? " fresh" : "");
    tr.dataset.id = String(t.id);
    tr.dataset.href = t.href;
    const pick = el("td", "pick");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "task";
    box.value = String(t.id);
    box.setAttribute("form", "bulk");
    box.setAttribute("aria-label", "Select task " + t.id);
    box.checked = checked;
    pick.appendChild(box);
    tr.appendChild(pick);
    const prio = el("td");
    prio.appendChild(el("span", "prio p" + t.priority, String(t.priority)));
    tr.appendChild(prio);
    const who = el("td", "who-cell");
    who.appendChild(t.patient_href ? link(t.patient_href, "patient-link", t.patient) : document.createTextNode(t.patient));
    who.appendChild(el("span", "sub", t.patient_detail));
    if (t.others > 0) {
      who.appendChild(link(t.patient_href, "others", t.others + " other open task" + (t.others > 1 ? "s" : "")));
    }
    tr.appendChild(who);
    const said = el("td", "said");
    said.appendChild(t.said ? el("q", "", t.said) : el("span", "sub", "no text"));
    tr.appendChild(said);
    const why = el("td");
    why.appendChild(link(t.href, "task-link", t.title));
    why.appendChild(el("span", "sub", t.queue_label + " · opened " + t.age + " ago"));
    tr.appendChild(why);
    const due = el("td");
    if (t.overdue) {
      due.appendChild(el("strong", "late", t.due_in + " late"));
    } else {
      due.textContent = t.due_in + " left";
    }
    tr.appendChild(due);
    tr.appendChild(cell(t.status_label + (t.assignee ? " · " + t.assignee : "")));
    return tr;
  }

  // The tab's title counts urgent tasks nobody has claimed, so a pharmacist on another tab sees them.
  const baseTitle = document.title;
  function renderTitle(count) {
    document.title = count > 0 ? "(" + count + " urgent) " + baseTitle : baseTitle;
  }

  function renderSummary(summary) {
    summary.forEach((s) => {
      const card = document.querySelector('.queue-card[data-queue="' + s.queue + '"]');
      if (!card) { return; }
      card.classList.toggle("breached", s.breached > 0);
      ["count", "oldest", "breached", "unassigned"].forEach((field) => {
        const el = card.querySelector('[data-field="' + field + '"]');
        if (el) { el.textContent = String(s[field]); }
      });
    });
  }

  function render(data) {
    const selectedId = selected >= 0 && rows()[selected] ? rows()[selected].dataset.id : null;
    const focusedId = document.activeElement && document.activeElement.closest
      ? (document.activeElement.closest("tr.task-row") || {}).dataset : null;
    const focusClass = document.activeElement ? document.activeElement.className : "";
    const checked = new Set(Array.from(rowsEl.querySelectorAll("input[name=task]:checked")).map((b) => b.value));
    const fresh = data.tasks.filter((t) => !known.has(String(t.id)));
    const fragment = document.createDocumentFragment();
    data.tasks.forEach((t) => fragment.appendChild(buildRow(t, !known.has(String(t.id)), checked.has(String(t.id)))));
    rowsEl.replaceChildren(fragment);
    known = new Set(data.tasks.map((t) => String(t.id)));
    emptyEl.hidden = data.tasks.length > 0;
    renderSummary(data.summary);
    renderTitle(data.urgent_open || 0);
    if (fresh.length > 0) {
      const urgent = fresh.filter((t) => t.urgent).length;
      liveEl.textContent = fresh.length + " new task" + (fresh.length > 1 ? "s" : "") + (urgent ? " (" + urgent + " urgent)" : "");
      if (urgent > 0) { window.dispatchEvent(new CustomEvent("midbot:urgent", { detail: { count: urgent } })); }
    }
    if (selectedId !== null) {
      const index = rows().findIndex((tr) => tr.dataset.id === selectedId);
      if (index >= 0) {
        selected = index;
        rows()[index].classList.add("selected");
      }
    }
    // Keep the keyboard focus where it was (the list is rebuilt on every refresh).
    if (focusedId && focusedId.id) {
      const again = rowsEl.querySelector('tr.task-row[data-id="' + focusedId.id + '"] .' + (focusClass.split(" ")[0] || "task-link"));
      if (again) { again.focus(); }
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status === 401 || response.redirected) { window.location.assign("/login"); return; }
      if (response.ok) { render(await response.json()); }
    } catch (err) {
      liveEl.textContent = "Cannot reach the server; retrying.";
    } finally {
      window.setTimeout(poll, seconds * 1000);
    }
  }

  rowsEl.addEventListener("click", (event) => {
    const tr = event.target.closest("tr.task-row");
    if (tr && event.target.tagName !== "A" && event.target.tagName !== "INPUT" && !event.target.closest("td.pick")) { window.location.assign(tr.dataset.href); }
  });

  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (event.key === "j") { event.preventDefault(); select(selected + 1); }
    else if (event.key === "k") { event.preventDefault(); select(selected < 0 ? 0 : selected - 1); }
    else if (event.key === "Enter" && selected >= 0 && rows()[selected]) {
      event.preventDefault();
      window.location.assign(rows()[selected].dataset.href);
    }
  });

  // Alerts for new urgent tasks, opted into per browser: a short tone and a desktop notification that says
  // only that there is urgent work (no name, no text: it may show on a locked screen).
  const alertsButton = document.getElementById("alerts-toggle");
  function alertsOn() {
    try { return window.localStorage.getItem("midbot-alerts") === "on"; } catch (err) { return false; }
  }
  function showAlertsState() {
    if (!alertsButton) { return; }
    alertsButton.setAttribute("aria-pressed", alertsOn() ? "true" : "false");
    alertsButton.textContent = alertsOn() ? "Sound and notifications: on" : "Sound and notifications: off";
  }
  function beep() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    const ctx = new Context();
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.frequency.value = 880;
    gain.gain.value = 0.15;
    tone.connect(gain).connect(ctx.destination);
    tone.start();
    tone.stop(ctx.currentTime + 0.35);
  }
  if (alertsButton) {
    alertsButton.hidden = false;
    alertsButton.addEventListener("click", () => {
      const next = alertsOn() ? "off" : "on";
      try { window.localStorage.setItem("midbot-alerts", next); } catch (err) { /* storage disabled */ }
      if (next === "on" && "Notification" in window && Notification.permission === "default") {
        Notification.requestPermission();
      }
      showAlertsState();
    });
    showAlertsState();
  }
  window.addEventListener("midbot:urgent", (event) => {
    if (!alertsOn()) { return; }
    try { beep(); } catch (err) { /* audio blocked until the page is used */ }
    if ("Notification" in window && Notification.permission === "granted") {
      const count = event.detail.count;
      new Notification("midbot: " + count + " new urgent task" + (count > 1 ? "s" : ""), { tag: "midbot-urgent" });
    }
  });

  renderTitle(Number(body.dataset.urgentOpen || "0"));
  window.setTimeout(poll, seconds * 1000);
})();
