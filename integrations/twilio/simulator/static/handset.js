// Handset simulator page: poll the open thread and send without a page reload.
// Hand-written, no dependencies; text is inserted with textContent only.
"use strict";

(function () {
  const thread = document.getElementById("thread");
  const form = document.getElementById("send");
  if (!thread) {
    return;
  }
  const phone = thread.dataset.phone;
  let lastSignature = "";

  function render(messages) {
    const signature = messages.map((m) => m.sid + ":" + m.status).join(",");
    if (signature === lastSignature) {
      return;
    }
    lastSignature = signature;
    thread.replaceChildren();
    if (messages.length === 0) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "No messages yet.";
      thread.appendChild(empty);
      return;
    }
    for (const m of messages) {
      const item = document.createElement("li");
      item.className = "msg " + (m.direction === "inbound" ? "in" : "out");
      item.dataset.sid = m.sid;
      const body = document.createElement("p");
      body.className = "body";
      body.textContent = m.body;
      const meta = document.createElement("p");
      meta.className = "meta";
      meta.textContent = m.date_created.slice(11, 16) + " UTC · " + m.status + (m.error_code ? " (" + m.error_code + ")" : "");
      item.append(body, meta);
      thread.appendChild(item);
    }
    scrollToEnd();
  }

  function scrollToEnd() {
    const last = thread.lastElementChild;
    if (last && last.scrollIntoView) {
      last.scrollIntoView({ block: "nearest" });
    }
  }

  async function refresh() {
    try {
      const response = await fetch("/simulator/messages?phone=" + encodeURIComponent(phone), { cache: "no-store" });
      if (response.ok) {
        render((await response.json()).messages);
      }
    } catch (err) {
      // The simulator may be restarting; try again on the next tick.
    }
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = document.getElementById("send-status");
      const bodyField = form.elements.namedItem("body");
      const payload = { from: phone, to: form.elements.namedItem("to").value, body: bodyField.value };
      status.textContent = "Sending…";
      try {
        const response = await fetch("/simulator/inbound", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(payload),
        });
        const result = await response.json();
        if (!response.ok) {
          status.textContent = "Not sent: " + (result.error || response.status);
          return;
        }
        bodyField.value = "";
        status.textContent = result.webhook_status === null
          ? "Recorded, but midbot could not be reached (" + (result.webhook_error || "no webhook") + ")."
          : "Delivered to midbot (HTTP " + result.webhook_status + ").";
        await refresh();
      } catch (err) {
        status.textContent = "Not sent: the simulator did not answer.";
      }
    });
  }

  setInterval(refresh, 1500);
})();
