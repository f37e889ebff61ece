// folio serve's live reload (served at /__folio/reload.js in serve mode only).
// Listens on /__folio/ws: reloads the tab when what it shows changed, swaps stylesheets
// in place when only CSS changed, and shows a failed build in an overlay built with DOM
// APIs and styled through element.style (allowed by the site's CSP, unlike inline styles).
(() => {
  "use strict";
  const script = document.currentScript;
  const notFoundPage = !!(script && script.src.indexOf("?nf") >= 0);
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
    const here = currentFile();
    const all = (msg.changed || []).concat(msg.removed || []);
    // This page changed or went away, or an asset pages load (stylesheets, scripts, images,
    // fonts). Feeds, the sitemap and other pages do not concern this tab.
    const asset = /\.(css|m?js|svg|png|jpe?g|gif|webp|avif|ico|woff2?)$/i;
    return all.some((f) => f === here || f === here + "/index.html" || asset.test(f));
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
    if (lastFocus && typeof lastFocus.focus === "function") lastFocus.focus();
  }

  function onKey(ev) {
    if (ev.key === "Escape") { ev.preventDefault(); clearErrors(); }
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
      " (still showing the last good version)";
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
    box.focus();
  }

  // Replaces this page's stylesheets with the ones the freshly built page links to; each
  // old sheet goes once its replacement has loaded, so nothing flashes unstyled.
  function swapStylesheets() {
    fetch(location.href, { cache: "no-store" })
      .then((r) => r.text())
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html");
        const want = Array.from(fresh.querySelectorAll('link[rel~="stylesheet"]'));
        const have = Array.from(document.querySelectorAll('link[rel~="stylesheet"]'));
        const bust = "?folio-reload=" + Date.now();
        want.forEach((link, i) => {
          const el = document.createElement("link");
          for (const a of Array.from(link.attributes)) el.setAttribute(a.name, a.value);
          el.href = link.getAttribute("href").split("?")[0] + bust;
          const old = have[i];
          el.addEventListener("load", () => { if (old) old.remove(); });
          if (old) old.after(el); else document.head.append(el);
        });
        have.slice(want.length).forEach((l) => l.remove());
      })
      .catch(() => location.reload());
  }

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    if (msg.type === "error") {
      showErrors(msg.errors || []);
    } else if (msg.type === "reload") {
      clearErrors();
      if (!affectsThisTab(msg)) return;
      if (msg.css_only) swapStylesheets(); else location.reload();
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
