// folio default theme: the projects grid. Without JavaScript the tag links go to the tag
// pages and every card is shown; with it, tags filter in place (and in ?tag=), a search box
// filters on the words typed (against /projects.json, fetched on first use) and the grid
// can be sorted by date or title.
(function () {
  "use strict";
  // The site's base path ("/" or e.g. "/blog/"): docs/templates.md.
  var BASE = (document.querySelector('meta[name="folio-base"]') || { content: "/" }).content;
  var grid = document.querySelector("[data-projects]");
  if (!grid) return;
  var cards = Array.prototype.slice.call(grid.querySelectorAll("[data-project]"));
  var filter = document.querySelector("[data-tag-filter]");
  var tagLinks = filter ? Array.prototype.slice.call(filter.querySelectorAll("a[data-tag]")) : [];
  var form = document.querySelector("[data-project-search]");
  var input = form && form.querySelector("[data-search-input]");
  var sortSelect = document.querySelector("[data-sort]");
  var results = document.querySelector("[data-results]");
  var empty = document.querySelector("[data-no-results]");

  var state = { tag: "", words: [], sort: "date" };
  // Text searched per card, by slug: the card's own data first, /projects.json's when loaded.
  var haystack = {};
  cards.forEach(function (card) {
    haystack[card.getAttribute("data-slug")] = norm(
      (card.getAttribute("data-title") || "") + " " + (card.getAttribute("data-tags") || ""));
  });

  function norm(s) {
    s = String(s).toLowerCase();
    return s.normalize ? s.normalize("NFD").replace(/[\u0300-\u036f]/g, "") : s;
  }

  function tagsOf(card) {
    return (card.getAttribute("data-tags") || "").split(/\s+/).filter(Boolean);
  }

  function matches(card) {
    if (state.tag && tagsOf(card).indexOf(state.tag) < 0) return false;
    var text = haystack[card.getAttribute("data-slug")] || "";
    for (var i = 0; i < state.words.length; i++) {
      if (text.indexOf(state.words[i]) < 0) return false;
    }
    return true;
  }

  function sortCards() {
    var byTitle = state.sort === "title";
    var sorted = cards.slice().sort(function (a, b) {
      if (byTitle) {
        return (a.getAttribute("data-title") || "").localeCompare(b.getAttribute("data-title") || "");
      }
      var da = a.getAttribute("data-date") || "";
      var db = b.getAttribute("data-date") || "";
      if (da !== db) return da < db ? 1 : -1; // newest first, undated last
      return 0;
    });
    sorted.forEach(function (card) { grid.appendChild(card); });
  }

  function apply() {
    var shown = 0;
    cards.forEach(function (card) {
      var ok = matches(card);
      card.hidden = !ok;
      if (ok) shown++;
    });
    tagLinks.forEach(function (a) {
      if (a.getAttribute("data-tag") === state.tag) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    });
    if (empty) empty.hidden = shown !== 0;
    if (results) {
      var what = shown === 1 ? "1 project" : shown + " projects";
      if (state.tag) what += " tagged " + state.tag;
      if (state.words.length) what += " matching \u201c" + state.words.join(" ") + "\u201d";
      results.textContent = what;
    }
  }

  function setUrl() {
    if (!window.history || !history.replaceState || !window.URL) return;
    var url = new URL(location.href);
    if (state.tag) url.searchParams.set("tag", state.tag);
    else url.searchParams.delete("tag");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }

  // Tags: plain links without JS; with it, filter in place. Modified clicks (new tab…) and
  // tags no card carries keep the link's own behaviour.
  tagLinks.forEach(function (a) {
    a.addEventListener("click", function (e) {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      var tag = a.getAttribute("data-tag") || "";
      e.preventDefault();
      state.tag = state.tag === tag ? "" : tag;
      setUrl();
      apply();
    });
  });

  // Search.
  var loading = null;
  function loadIndex() {
    if (loading || !window.fetch) return;
    loading = fetch(BASE + "projects.json", { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (list) {
        if (!Array.isArray(list)) return;
        list.forEach(function (p) {
          if (!p || !p.slug || !(p.slug in haystack)) return;
          haystack[p.slug] = norm([p.title, p.description, (p.tags || []).join(" "),
            haystack[p.slug]].join(" "));
        });
        // Search what is typed now, not what was typed when the index was asked for.
        if (input) state.words = norm(input.value).split(/\s+/).filter(Boolean);
        apply();
      })
      .catch(function () { /* the cards' own text is searched instead */ });
  }
  if (form && input) {
    form.hidden = false;
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    input.addEventListener("focus", loadIndex);
    input.addEventListener("input", function () {
      loadIndex();
      state.words = norm(input.value).split(/\s+/).filter(Boolean);
      apply();
    });
  }

  // Sort.
  if (sortSelect) {
    sortSelect.hidden = false;
    var label = sortSelect.closest && sortSelect.closest("label");
    if (label) label.hidden = false;
    state.sort = sortSelect.value === "title" ? "title" : "date";
    sortSelect.addEventListener("change", function () {
      state.sort = sortSelect.value === "title" ? "title" : "date";
      sortCards();
    });
  }

  var initial = new URLSearchParams(location.search).get("tag");
  if (initial) state.tag = initial;
  if (input && input.value) state.words = norm(input.value).split(/\s+/).filter(Boolean);
  if (state.sort !== "date") sortCards();
  apply();
})();

// ---- live-demo badges (wt-record) -----------------------------------------------------
// A card's "Live demo" badge tells the truth: GET /api/terminal/status (cached at the edge
// for at most 30 s) says whether live sessions can start now; when they cannot, the badge
// says the demo is a recording for now. A missing or failing endpoint changes nothing.
(function () {
  "use strict";
  var badges = document.querySelectorAll("[data-demo-badge]");
  if (!badges.length || !window.fetch) return;
  var base = (document.querySelector('meta[name="folio-base"]') || { content: "/" }).content;
  fetch(base + "api/terminal/status", { headers: { Accept: "application/json" } })
    .then(function (r) {
        // The body is read even for an error: unread, it keeps the request open.
        return r.text().then(function (t) { return r.ok ? JSON.parse(t) : null; });
      })
    .then(function (s) {
      if (!s || typeof s.live !== "boolean") return;
      for (var i = 0; i < badges.length; i++) {
        badges[i].setAttribute("data-live", String(s.live));
        if (!s.live) {
          var icon = badges[i].querySelector("svg");
          badges[i].textContent = "Demo: recording for now";
          if (icon) badges[i].insertBefore(icon, badges[i].firstChild);
        }
      }
    })
    .catch(function () { /* progressive enhancement: say nothing */ });
})();
// ---- end live-demo badges ---------------------------------------------------------------
