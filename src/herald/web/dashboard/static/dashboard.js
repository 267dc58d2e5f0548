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

// A schedule's next runs, previewed live while its rule is typed: the element with data-schedule-preview="URL"
// is filled from GET URL?cron_expression=&natural_language_schedule=&timezone= (the API's own parser, answered
// by /manage/schedules/preview). Debounced; an answer to an older keystroke is dropped. Text only, no HTML.
(function () {
  const FIELDS = ["cron_expression", "natural_language_schedule", "timezone"];
  const WAIT_MS = 300;

  function fill(region, title, description, lines, times, warn) {
    region.classList.toggle("preview-warn", Boolean(warn));
    let heading = region.querySelector(".preview-title");
    if (!heading) {
      heading = document.createElement("h2");
      heading.className = "preview-title";
      region.append(heading);
    }
    heading.textContent = title;
    let sentence = region.querySelector(".preview-description");
    if (!sentence) {
      sentence = document.createElement("p");
      sentence.className = "preview-description";
      heading.after(sentence);
    }
    sentence.textContent = description;
    sentence.classList.toggle("muted", !lines.length && !warn);
    let list = region.querySelector(".preview-lines");
    if (!list) {
      list = document.createElement("ul");
      list.className = "bare preview-lines";
      region.append(list);
    }
    list.replaceChildren();
    lines.forEach(function (line, index) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      if (times[index]) time.dateTime = times[index];
      time.textContent = line;
      item.append(time);
      list.append(item);
    });
  }

  function errorsOf(body) {
    const out = [];
    for (const [field, messages] of Object.entries((body && body.errors) || {})) {
      for (const message of messages) out.push((field ? field.replace(/_/g, " ") + ": " : "") + message);
    }
    return out.join(" ");
  }

  function startPreview(region) {
    const form = region.closest("form");
    if (!form) return;
    const inputs = FIELDS.map(function (name) { return form.elements.namedItem(name); }).filter(Boolean);
    let timer = null;
    let asked = 0;
    async function ask() {
      const query = new URLSearchParams();
      for (const input of inputs) query.set(input.name, input.value);
      if (!query.get("cron_expression").trim() && !query.get("natural_language_schedule").trim()) {
        fill(region, "Next runs", "Write a rule to see its next five runs.", [], [], false);
        return;
      }
      const mine = ++asked;
      try {
        const response = await fetch(region.dataset.schedulePreview + "?" + query.toString(), {
          headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
        });
        if (mine !== asked) return;
        if (response.redirected || response.status === 401) {
          window.location.reload();
          return;
        }
        const body = await response.json();
        if (mine !== asked) return;
        if (response.ok && body.ok) fill(region, body.title, body.description, body.lines, body.times, false);
        else fill(region, "Not a rule yet", errorsOf(body) || "the rule is not understood", [], [], true);
      } catch (_error) {
        // A network blip or a page that is not JSON: the next keystroke asks again.
      }
    }
    for (const input of inputs) {
      input.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(ask, WAIT_MS);
      });
      input.addEventListener("change", function () {
        window.clearTimeout(timer);
        ask();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-schedule-preview]").forEach(startPreview);
  });
})();
