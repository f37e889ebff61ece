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
