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

  function buildRow(t, fresh) {
    const tr = document.createElement("tr");
    tr.className = "task-row" + (t.urgent ? " urgent" : "") + (t.overdue ? " overdue" : "") + (fresh ? " fresh" : "");
    tr.dataset.id = String(t.id);
    tr.dataset.href = t.href;
    const prio = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "prio p" + t.priority;
    badge.textContent = String(t.priority);
    prio.appendChild(badge);
    tr.appendChild(prio);
    tr.appendChild(cell(t.queue_label));
    const title = document.createElement("td");
    const link = document.createElement("a");
    link.href = t.href;
    link.className = "task-link";
    link.textContent = t.title;
    title.appendChild(link);
    tr.appendChild(title);
    tr.appendChild(cell(t.patient));
    tr.appendChild(cell(t.age));
    const due = document.createElement("td");
    if (t.overdue) {
      const late = document.createElement("strong");
      late.className = "late";
      late.textContent = t.due_in + " late";
      due.appendChild(late);
    } else {
      due.textContent = "in " + t.due_in;
    }
    tr.appendChild(due);
    tr.appendChild(cell(t.status + (t.assignee ? " · " + t.assignee : "")));
    return tr;
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
    const fresh = data.tasks.filter((t) => !known.has(String(t.id)));
    const fragment = document.createDocumentFragment();
    data.tasks.forEach((t) => fragment.appendChild(buildRow(t, !known.has(String(t.id)))));
    rowsEl.replaceChildren(fragment);
    known = new Set(data.tasks.map((t) => String(t.id)));
    emptyEl.hidden = data.tasks.length > 0;
    renderSummary(data.summary);
    if (fresh.length > 0) {
      const urgent = fresh.filter((t) => t.urgent).length;
      liveEl.textContent = fresh.length + " new task" + (fresh.length > 1 ? "s" : "") + (urgent ? " (" + urgent + " urgent)" : "");
    }
    if (selectedId !== null) {
      const index = rows().findIndex((tr) => tr.dataset.id === selectedId);
      if (index >= 0) {
        selected = index;
        rows()[index].classList.add("selected");
      }
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
    if (tr && event.target.tagName !== "A") { window.location.assign(tr.dataset.href); }
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

  window.setTimeout(poll, seconds * 1000);
})();
