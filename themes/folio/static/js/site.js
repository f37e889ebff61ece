// folio default theme: the light/dark toggle. The choice is stored in localStorage and applied
// before first paint by a tiny inline script in <head> (its hash is in the CSP), so no flash.
(function () {
  "use strict";
  var button = document.querySelector(".theme-toggle");
  if (!button) return;
  var root = document.documentElement;
  function current() {
    if (root.dataset.theme) return root.dataset.theme;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function label() {
    var next = current() === "dark" ? "light" : "dark";
    button.setAttribute("aria-label", "Switch to " + next + " theme");
    button.textContent = next === "dark" ? "Dark" : "Light";
  }
  button.hidden = false;
  label();
  button.addEventListener("click", function () {
    var next = current() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("folio-theme", next); } catch (e) { /* private mode: not remembered */ }
    label();
  });
})();

// ---- search (docs/search.md): the search box's script is loaded on first use (the button, or
// the `/` key), so pages that never search do not pay for it.
(function () {
  "use strict";
  var button = document.querySelector("[data-search-index][data-search-script]");
  if (!button) return;
  button.hidden = false;
  var loading = false;
  function load(open) {
    if (open) button.setAttribute("data-search-pending", "open");
    if (loading) return;
    loading = true;
    var s = document.createElement("script");
    s.src = button.getAttribute("data-search-script");
    document.head.appendChild(s);
  }
  button.addEventListener("click", function () {
    if (!button.hasAttribute("data-search-ready")) load(true);
  });
  button.addEventListener("focus", function () { load(false); });
  button.addEventListener("pointerenter", function () { load(false); });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    if (button.hasAttribute("data-search-ready")) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    load(true);
  });
})();
// ---- end search
