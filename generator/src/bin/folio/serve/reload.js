// folio serve's live reload (served at /__folio/reload.js in serve mode only).
// Listens on /__folio/ws: reloads the tab when what it shows changed, swaps stylesheets
// in place when only CSS changed, and shows a failed build in an overlay built with DOM
// APIs and styled through element.style (allowed by the site's CSP, unlike inline styles).
(() => {
  "use strict";
  const script = document.currentScript;
  const notFoundPage = !!(script && script.src.indexOf("?nf") >= 0);
  // The page `folio serve` shows until the site first builds.
  const notBuilt = !!document.querySelector('meta[name="folio-serve"][content="not-built"]');
  const socketUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/__folio/ws";
  let overlay = null;
  let lastFocus = null;
  let connectedBefore = false;

  // The output file this tab shows: "/" → "index.html", "/about/" → "about/index.html".
  function currentFile() {
    let p = location.pathname;
    try { p = decodeURIComponent(p); } catch (_) { /* keep it encoded */ }
    if (p.endsWith("/")) p += "index.html";
    return p.replace(/^\/+/, "");
  }

  function affectsThisTab(msg) {
    if (msg.lagged || notFoundPage) return true;
    // This page changed or went away, or an asset pages load (stylesheets, scripts, images,
    // fonts). Feeds, the sitemap and other pages do not concern this tab.
    const asset = /\.(css|m?js|svg|png|jpe?g|gif|webp|avif|ico|woff2?)$/i;
    return pageChanged(msg) || (msg.changed || []).concat(msg.removed || []).some((f) => asset.test(f));
  }

  function pageChanged(msg) {
    const here = currentFile();
    return (msg.changed || []).concat(msg.removed || []).some((f) => f === here || f === here + "/index.html");
  }

  // Whether a sheet this page loads through @import (same origin, so readable) is among
  // the changed or removed files.
  function importsChanged(msg) {
    const touched = new Set((msg.changed || []).concat(msg.removed || []).map((f) => "/" + f));
    const seen = new Set();
    const walk = (sheet) => {
      if (!sheet || seen.has(sheet)) return false;
      seen.add(sheet);
      let rules;
      try { rules = sheet.cssRules; } catch (_) { return false; }
      for (const rule of Array.from(rules || [])) {
        if (!rule.styleSheet) continue;
        if (rule.styleSheet.href) {
          let path = new URL(rule.styleSheet.href).pathname;
          try { path = decodeURIComponent(path); } catch (_) { /* keep it encoded */ }
          if (touched.has(path)) return true;
        }
        if (walk(rule.styleSheet)) return true;
      }
      return false;
    };
    return Array.from(document.styleSheets).some(walk);
  }

  function style(el, props) {
    for (const k in props) el.style.setProperty(k, props[k]);
    return el;
  }

  function clearErrors() {
    if (!overlay) return;
    overlay.remove();
    overlay = null;
    document.removeEventListener("keydown", onKey, true);
    document.removeEventListener("focusin", onFocusIn, true);
    if (lastFocus && typeof lastFocus.focus === "function") lastFocus.focus();
  }

  // The overlay is modal: Esc closes it, Tab and Shift+Tab cycle within it, and focus
  // that lands elsewhere (a page script, a click) comes back to it.
  function onKey(ev) {
    if (!overlay) return;
    if (ev.key === "Escape") {
      ev.preventDefault();
      clearErrors();
    } else if (ev.key === "Tab") {
      const stops = Array.from(overlay.querySelectorAll("button, a[href], [tabindex]:not([tabindex='-1'])"));
      if (!stops.length) { ev.preventDefault(); return; }
      const at = stops.indexOf(document.activeElement);
      const next = ev.shiftKey ? (at <= 0 ? stops.length - 1 : at - 1) : (at + 1) % stops.length;
      ev.preventDefault();
      stops[next].focus();
    }
  }

  function onFocusIn(ev) {
    if (overlay && !overlay.contains(ev.target)) overlay.firstChild.focus();
  }

  function showErrors(errors) {
    clearErrors();
    lastFocus = document.activeElement;
    overlay = style(document.createElement("div"), {
      position: "fixed", inset: "0", "z-index": "2147483647", background: "rgba(0,0,0,.6)",
      display: "flex", "align-items": "flex-start", "justify-content": "center",
      padding: "5vh 1rem", overflow: "auto",
    });
    overlay.id = "folio-build-error";
    const box = style(document.createElement("div"), {
      background: "#1e1e1e", color: "#f5f5f5", "max-width": "60rem", width: "100%",
      "border-radius": "8px", "border-top": "6px solid #e5484d", padding: "1.25rem 1.5rem",
      font: "14px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      "box-shadow": "0 10px 40px rgba(0,0,0,.5)",
    });
    box.setAttribute("role", "alertdialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "folio-build-error-title");
    box.setAttribute("aria-describedby", "folio-build-error-list");
    box.tabIndex = -1;
    const title = style(document.createElement("h2"), {
      margin: "0 0 .75rem", font: "bold 1.1rem/1.3 system-ui, sans-serif", color: "#ff9592",
    });
    title.id = "folio-build-error-title";
    title.textContent = "Build failed: " + errors.length + " error" + (errors.length === 1 ? "" : "s") +
      (notBuilt ? " (the site has not built yet)" : " (still showing the last good version)");
    const list = style(document.createElement("ul"), { margin: "0", padding: "0", "list-style": "none" });
    list.id = "folio-build-error-list";
    for (const e of errors) {
      const item = style(document.createElement("li"), {
        margin: "0 0 .75rem", "white-space": "pre-wrap", "overflow-wrap": "anywhere",
      });
      const where = style(document.createElement("strong"), { color: "#7cc4fa" });
      where.textContent = e.file + (e.line != null ? ":" + e.line + (e.column != null ? ":" + e.column : "") : "");
      item.append(where, document.createTextNode(": " + e.message));
      list.append(item);
    }
    const close = style(document.createElement("button"), {
      "margin-top": ".5rem", padding: ".4rem .9rem", font: "inherit", cursor: "pointer",
      color: "#1e1e1e", background: "#f5f5f5", border: "0", "border-radius": "4px",
    });
    close.type = "button";
    close.textContent = "Dismiss (Esc)";
    close.addEventListener("click", clearErrors);
    const hint = style(document.createElement("p"), { margin: ".75rem 0 0", color: "#b4b4b4" });
    hint.textContent = "Fix the file and save: this clears by itself.";
    box.append(title, list, close, hint);
    overlay.append(box);
    document.body.append(overlay);
    document.addEventListener("keydown", onKey, true);
    document.addEventListener("focusin", onFocusIn, true);
    box.focus();
  }

  // Relinks, in place, the stylesheets of this page that the rebuild touched: a renamed
  // (content-hashed) sheet gets its new URL from `css_renames`, a sheet rebuilt under the
  // same URL is fetched again. Each replacement goes right after the sheet it replaces (same
  // cascade order), which goes once the replacement has loaded, so nothing flashes
  // unstyled. Sheets the rebuild did not touch (including ones page scripts added, like the
  // terminal's) stay. Returns false when no sheet of this page was touched.
  function swapStylesheets(msg) {
    const renames = new Map((msg.css_renames || []).map((pair) => [pair[0], pair[1]]));
    const rebuilt = new Set((msg.changed || []).filter((f) => /\.css$/i.test(f)).map((f) => "/" + f));
    const bust = "folio-reload=" + Date.now();
    let swapped = false;
    for (const old of Array.from(document.querySelectorAll('link[rel~="stylesheet"][href]'))) {
      let url;
      try { url = new URL(old.href); } catch (_) { continue; }
      if (url.origin !== location.origin) continue;
      let path = url.pathname;
      try { path = decodeURIComponent(path); } catch (_) { /* keep it encoded */ }
      let next;
      if (renames.has(path)) next = renames.get(path);
      else if (rebuilt.has(path)) next = url.pathname + "?" + bust;
      else continue;
      const el = old.cloneNode(false);
      el.setAttribute("href", next);
      // A sheet still loading that is replaced again hands on what it was to replace.
      const replaces = [old].concat(old.folioReplaces || []);
      el.folioReplaces = replaces;
      el.addEventListener("load", () => {
        replaces.forEach((r) => r.remove());
        el.folioReplaces = null;
      }, { once: true });
      el.addEventListener("error", () => location.reload(), { once: true });
      old.after(el);
      swapped = true;
    }
    return swapped;
  }

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    if (msg.type === "error") {
      showErrors(msg.errors || []);
    } else if (msg.type === "reload") {
      clearErrors();
      if (!affectsThisTab(msg)) return;
      if (!msg.css_only) { location.reload(); return; }
      // Only CSS changed: relink this page's sheets in place. When none of them was
      // touched, reload only if the page itself changed (a renamed sheet it names in an
      // attribute, say) or a sheet it pulls in by @import changed; else nothing concerns it.
      if (!swapStylesheets(msg) && (pageChanged(msg) || importsChanged(msg))) location.reload();
    }
  }

  function connect() {
    let ws;
    try { ws = new WebSocket(socketUrl); } catch (_) { setTimeout(connect, 1000); return; }
    ws.addEventListener("open", () => {
      // Back after the server restarted: the site may have changed meanwhile.
      if (connectedBefore) location.reload();
      connectedBefore = true;
    });
    ws.addEventListener("message", onMessage);
    ws.addEventListener("close", () => setTimeout(connect, 1000));
  }
  connect();
})();
