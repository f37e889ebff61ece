// folio default theme: view counts. Counts this visit once (POST for the element marked
// data-views-count) and reads the other counts on the page in batches of 50. Every counter
// starts hidden and is shown only once its number is known, so without JavaScript, or when
// the API is unreachable, the page simply has no counters. Markup: an element
// [data-views="<page key>"] (hidden) holding a [data-views-n] slot, the key being the page's
// path (`projects.minirt`: a count belongs to a page, not a slug); the Worker's API:
// POST /api/views/<key> and GET /api/views?slugs=a,b (crates/edge/src/routes.rs).
(function () {
  "use strict";
  // The site's base path ("/" or e.g. "/blog/"): docs/templates.md.
  var BASE = (document.querySelector('meta[name="folio-base"]') || { content: "/" }).content;
  var nodes = document.querySelectorAll("[data-views]");
  if (!nodes.length || !window.fetch) return;
  // Made on the first number, not at load: building a NumberFormat loads locale data, a
  // long task that would otherwise land in the page's first seconds.
  var fmt;

  function format(n) {
    if (fmt === undefined) {
      try { fmt = new Intl.NumberFormat(); } catch (e) { fmt = null; }
    }
    return fmt ? fmt.format(n) : String(n);
  }

  function show(slug, n) {
    if (typeof n !== "number" || !isFinite(n) || n < 0) return;
    var text = format(n);
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (el.getAttribute("data-views") !== slug) continue;
      var slot = el.querySelector("[data-views-n]");
      if (!slot) continue;
      slot.textContent = text;
      el.hidden = false;
    }
  }

  function json(url, method) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    });
  }

  function quietly() { /* counters stay hidden: the page is complete without them */ }

  var counted = null;
  var read = [];
  for (var i = 0; i < nodes.length; i++) {
    var slug = nodes[i].getAttribute("data-views");
    if (!slug) continue;
    if (counted === null && nodes[i].hasAttribute("data-views-count")) counted = slug;
    else if (read.indexOf(slug) < 0) read.push(slug);
  }

  if (counted !== null) {
    json(BASE + "api/views/" + encodeURIComponent(counted), "POST").then(function (body) {
      if (body && body.slug === counted) show(counted, body.views);
    }).catch(quietly);
    read = read.filter(function (s) { return s !== counted; });
  }
  for (var start = 0; start < read.length; start += 50) {
    var batch = read.slice(start, start + 50);
    json(BASE + "api/views?slugs=" + batch.map(encodeURIComponent).join(","), "GET").then(function (body) {
      var views = body && body.views;
      if (!views || typeof views !== "object") return;
      Object.keys(views).forEach(function (s) { show(s, views[s]); });
    }).catch(quietly);
  }
})();
