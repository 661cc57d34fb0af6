// zkserver console: data-view tabs, live updates over server-sent events, region refresh.
// Plain browser JavaScript, no library: the pages work without it, this only adds to them.
"use strict";

function setupTabs() {
  for (const button of document.querySelectorAll("button.tab")) {
    button.addEventListener("click", () => {
      const section = button.closest("section");
      for (const pre of section.querySelectorAll("pre.view")) {
        pre.hidden = pre.dataset.view !== button.dataset.view;
      }
      for (const other of section.querySelectorAll("button.tab")) {
        other.classList.toggle("active", other === button);
      }
    });
  }
}

// Re-read the page and swap in its regions (sections marked data-region), except one holding
// the field the user is typing in (it is refreshed by the next change); then mark what the
// events named.
async function refreshRegions(marks) {
  const response = await fetch(location.href, {credentials: "same-origin"});
  if (!response.ok || response.redirected) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const region of document.querySelectorAll("[data-region]")) {
    const replacement = fresh.getElementById(region.id);
    const typing = region.contains(document.activeElement) &&
      ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (replacement && !typing) {
      const openDetails = region.querySelector("details[open]") !== null;
      region.replaceWith(replacement);
      const details = replacement.querySelector("details");
      if (details && openDetails) details.open = true;
    }
  }
  setupTabs();
  for (const path of marks || []) {
    for (const el of document.querySelectorAll("[data-path]")) {
      if (el.dataset.path === path) el.classList.add("changed");
    }
  }
}

function setupLive(main) {
  const path = main.dataset.livePath;
  const status = document.getElementById("live-status");
  const changes = document.getElementById("changes");
  const source = new EventSource("/console/events?path=" + encodeURIComponent(path));
  let pending = [];
  let timer = null;
  const flush = () => {
    timer = null;
    const marks = pending;
    pending = [];
    refreshRegions(marks).then(() => {
      for (const p of marks) {
        if (p === path) {
          const stale = document.getElementById("edit-stale");
          if (stale) stale.hidden = false;
          const data = document.getElementById("data");
          if (data) data.classList.add("changed");
          const stat = document.getElementById("stat");
          if (stat) stat.classList.add("changed");
        }
      }
    });
  };
  const schedule = (p) => {
    if (p) pending.push(p);
    if (timer === null) timer = setTimeout(flush, 200);
  };
  source.addEventListener("ready", () => {
    status.textContent = "live";
    status.className = "on";
  });
  source.addEventListener("change", (e) => {
    const ev = JSON.parse(e.data);
    const item = document.createElement("li");
    item.className = "changed";
    item.dataset.type = ev.type;
    item.textContent = new Date().toLocaleTimeString() + " " + ev.type + " " + ev.path;
    changes.prepend(item);
    while (changes.children.length > 50) changes.lastChild.remove();
    schedule(ev.path);
  });
  source.addEventListener("resync", () => schedule(null));
  source.addEventListener("closed", () => source.close());
  source.onerror = () => {
    status.textContent = "reconnecting";
    status.className = "off";
  };
}

function setupRefresh(box) {
  const every = parseInt(box.dataset.refresh, 10) || 2000;
  const tick = () => refreshRegions([]).finally(() => setTimeout(tick, every));
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  setupTabs();
  const main = document.querySelector("main[data-live-path]");
  if (main) setupLive(main);
  const box = document.querySelector("[data-refresh]");
  if (box) setupRefresh(box);
});
