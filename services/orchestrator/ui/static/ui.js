// Catalog Agents UI: progressive enhancement only. Every page works without this file; with it,
// a run page follows its run live over server-sent events. No inline script anywhere (the CSP
// forbids it); data from the server goes in as text, or as HTML the server rendered escaped.
"use strict";

function followRun(live) {
  const events = document.getElementById("events");
  const pages = document.getElementById("pages");
  const cancel = document.getElementById("cancel-form");
  let outputs = -1;
  const source = new EventSource(live.dataset.events);
  function apply(message, last) {
    const data = JSON.parse(message.data);
    live.innerHTML = data.panel; // rendered and escaped by the server's templates
    const item = document.createElement("li");
    item.textContent = data.line;
    events.appendChild(item);
    if (data.outputs !== outputs) {
      outputs = data.outputs;
      pages.innerHTML = data.pages;
    }
    if (last) {
      source.close();
      if (cancel) cancel.remove();
      document.body.dataset.runDone = data.status;
    }
  }
  source.addEventListener("progress", (m) => apply(m, false));
  source.addEventListener("done", (m) => apply(m, true));
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live && live.dataset.events) followRun(live);
});
