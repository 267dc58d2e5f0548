// Herald dashboard: live regions and "select all". Progressive enhancement only: every page works without it.
//
// A live region is an element with data-live="URL". Every few seconds (data-live-interval, ms) it fetches
// {"count": n, "items": [{"id", "version", "html"}]} and merges: new items are inserted in order, changed
// ones replaced, vanished ones removed. The fragments are rendered (and escaped) by the server with the same
// templates as the page. Nothing the user is working in (the focused element's item) is replaced or removed.
"use strict";

(function () {
  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function holdsFocus(node) {
    return node.contains(document.activeElement) && document.activeElement !== document.body;
  }

  function merge(container, items) {
    const existing = new Map();
    for (const child of Array.from(container.children)) {
      if (child.dataset.id) existing.set(child.dataset.id, child);
    }
    const seen = new Set();
    let previous = null;
    let added = 0;
    for (const item of items) {
      let node = existing.get(item.id);
      if (!node) {
        node = fragment(item.html);
        if (!node) continue;
        if (previous) previous.after(node);
        else container.prepend(node);
        added += 1;
      } else if (node.dataset.version !== item.version && !holdsFocus(node)) {
        const fresh = fragment(item.html);
        if (fresh) {
          node.replaceWith(fresh);
          node = fresh;
        }
      }
      seen.add(item.id);
      previous = node;
    }
    for (const [id, node] of existing) {
      if (seen.has(id)) continue;
      if (holdsFocus(node)) node.classList.add("gone");
      else node.remove();
    }
    return added;
  }

  function announce(container, added) {
    const status = document.getElementById(container.dataset.liveStatus || "");
    if (status && added > 0) {
      status.textContent = (container.dataset.liveAnnounce || "{n} new").replace("{n}", String(added));
    }
  }

  function startLive(container) {
    const url = container.dataset.live;
    const every = Number(container.dataset.liveInterval || 2000);
    const empty = document.getElementById(container.dataset.liveEmpty || "");
    async function tick() {
      if (!document.hidden) {
        try {
          const response = await fetch(url, {
            headers: { Accept: "application/json" },
            credentials: "same-origin",
            cache: "no-store",
          });
          if (response.status === 401) {
            window.location.reload();
            return;
          }
          if (response.ok) {
            const body = await response.json();
            announce(container, merge(container, body.items));
            if (empty) empty.hidden = body.count > 0;
            for (const badge of document.querySelectorAll("[data-live-count='" + container.id + "']")) {
              badge.textContent = String(body.count);
              badge.hidden = body.count === 0;
            }
          }
        } catch (_error) {
          // A network blip: the next tick tries again.
        }
      }
      window.setTimeout(tick, every);
    }
    window.setTimeout(tick, every);
  }

  function selectAll(box) {
    box.addEventListener("change", function () {
      const form = box.dataset.selectAll;
      for (const pick of document.querySelectorAll("input[type=checkbox][name=ids][form='" + form + "']")) {
        pick.checked = box.checked;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(startLive);
    document.querySelectorAll("input[data-select-all]").forEach(selectAll);
  });
})();
