// folio default theme: full-text search over every page (docs/search.md). site.js loads this
// file on first use. The index is the one `folio build` writes under search/: a small manifest,
// then only the shards holding the words typed and the stores of the results shown. Page text
// reaches the page as text nodes only (never as HTML).
(function () {
  "use strict";
  var button = document.querySelector("[data-search-index]");
  if (!button || button.hasAttribute("data-search-ready")) return;
  var indexUrl = button.getAttribute("data-search-index");
  var root = indexUrl.replace(/[^/]*$/, ""); // the folder of index.json
  // Pages are indexed by their path from the site's root; a site under a subpath
  // (docs/templates.md, "URLs and the base path") puts them under its base.
  var BASE = (document.querySelector('meta[name="folio-base"]') || { content: "/" }).content;
  var LIMIT = 10;
  var MIN = 2;
  var WORDS = /[^\p{L}\p{N}]+/u;

  // ---- the dialog, built with DOM APIs
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (k) { e.append(k); });
    return e;
  }
  var input = el("input", {
    id: "search-q", type: "search", autocomplete: "off", spellcheck: "false",
    "aria-describedby": "search-status", enterkeyhint: "search"
  });
  var close = el("button", { type: "button", class: "search-close" }, ["Close"]);
  var status = el("p", { id: "search-status", class: "search-status", role: "status", "aria-live": "polite" });
  var list = el("ol", { class: "search-results", "aria-label": "Results" });
  var form = el("form", { role: "search" }, [
    el("div", { class: "search-bar" }, [el("label", { for: "search-q" }, ["Search"]), input, close]),
    status, list
  ]);
  var dialog = el("dialog", { class: "search-dialog", "aria-label": "Search this site" }, [form]);
  document.body.append(dialog);

  function open() {
    if (!dialog.open) dialog.showModal();
    input.focus();
    input.select();
    button.setAttribute("aria-expanded", "true");
  }
  // Focus back on the button that opens it, at once. Left to the browser (or to the "close"
  // event, which is queued), a field of the closed dialog can keep focus for a moment, and a `/`
  // typed then would go nowhere.
  function refocus() {
    if (!document.activeElement || document.activeElement === document.body || dialog.contains(document.activeElement)) {
      button.focus();
    }
  }
  function shut() {
    dialog.close();
    refocus();
  }
  dialog.addEventListener("close", function () {
    button.setAttribute("aria-expanded", "false");
    refocus();
  });
  close.addEventListener("click", shut);
  dialog.addEventListener("click", function (e) { if (e.target === dialog) shut(); });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var first = list.querySelector("a");
    if (first) first.click();
  });
  button.addEventListener("click", open);
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || dialog.open) return;
    var t = e.target;
    // A field of the closed dialog is not the visitor typing somewhere else: it only still had focus.
    if (t && !dialog.contains(t) && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    open();
  });
  // Arrows move between the field and the results; Enter follows a result (it is a link);
  // Escape closes (the dialog's own behaviour).
  dialog.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      // Closes at once, even from the search field (whose own Escape would only clear it).
      e.preventDefault();
      shut();
      return;
    }
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    var links = Array.prototype.slice.call(list.querySelectorAll("a"));
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var next = e.key === "ArrowDown" ? at + 1 : (at < 0 ? links.length - 1 : at - 1);
    e.preventDefault();
    if (next < 0) input.focus();
    else links[Math.min(next, links.length - 1)].focus();
  });

  // ---- the index
  var VERSION = 3; // the manifest's layout this script reads (docs/search.md)
  var manifest = null;
  var cache = { t: {}, p: {} }; // shards by start, store bundles by first id

  function getJson(url, fresh) {
    return fetch(url, fresh ? { cache: "no-cache" } : {}).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }
  // A gzip-compressed file of the index (shards, store bundles), as text. A server that sends
  // it with `Content-Encoding: gzip` has the browser inflate it already: then it is plain text.
  function getGz(url) {
    return fetch(url).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.arrayBuffer();
    }).then(function (buf) {
      var head = new Uint8Array(buf, 0, Math.min(2, buf.byteLength));
      if (head[0] !== 0x1f || head[1] !== 0x8b) return new TextDecoder().decode(buf);
      var inflated = new Blob([buf]).stream().pipeThrough(new DecompressionStream("gzip"));
      return new Response(inflated).text();
    });
  }
  // The manifest, with what the lookups need worked out once: each shard's start in hex (hex
  // of UTF-8 sorts as the build sorts terms) and the first id of each store bundle.
  function prepare(m) {
    if (m.version !== VERSION) throw new Error("search index version " + m.version);
    m.hexStarts = m.starts.map(hex);
    m.firsts = [];
    var first = 0;
    m.stores.forEach(function (n) { m.firsts.push(first); first += n; });
    return m;
  }
  function loadManifest(fresh) {
    if (!manifest || fresh) {
      manifest = getJson(indexUrl, fresh).then(prepare);
      manifest.catch(function () { manifest = null; });
      cache = { t: {}, p: {} };
    }
    return manifest;
  }
  // Something read from a file of the index: `locate(m)` names the file the manifest `m` puts
  // it in, `parse` reads that file (read once, kept by name), `pick(file, m)` takes it out.
  function fromIndex(kind, locate, parse, pick) {
    return loadManifest(false).then(function (m) {
      var rel = locate(m);
      if (!rel) throw new Error("not in the index");
      var c = cache[kind];
      if (!c[rel]) {
        c[rel] = getGz(root + rel).then(parse);
        c[rel].catch(function () { delete c[rel]; });
      }
      return c[rel].then(function (file) { return pick(file, m); });
    });
  }
  // The shard file that starts at `start`.
  function shard(start) {
    return fromIndex("t", function (m) {
      var i = m.starts.indexOf(start);
      return i < 0 ? null : "s/" + m.hexStarts[i] + "-" + m.digests.substr(i * 8, 8) + ".gz";
    }, JSON.parse, function (terms) { return terms; });
  }
  // The bundle holding page `id`: the last whose first id is at most `id`.
  function bundleOf(m, id) {
    var lo = 0, hi = m.firsts.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (m.firsts[mid] <= id) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  // A bundle: one page's store a line, in id order.
  function lines(text) {
    return text.split("\n").filter(Boolean).map(function (l) { return JSON.parse(l); });
  }
  // The store of page `id` (`{u, t, s, x}`), from its bundle.
  function store(id) {
    return fromIndex("p", function (m) {
      if (id >= m.docs) return null;
      var b = bundleOf(m, id), first = m.firsts[b];
      return "p-" + m.ids + "/" + first + "-" + (first + m.stores[b] - 1) + ".gz";
    }, lines, function (docs, m) {
      var d = docs[id - m.firsts[bundleOf(m, id)]];
      if (!d) throw new Error("not in its bundle: " + id);
      return d;
    });
  }
  function hex(s) {
    return Array.prototype.map.call(new TextEncoder().encode(s), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }
  // The shards that can hold terms starting with `word`: the last whose start sorts at or
  // before the word (the terms from the word on begin there), and those after it whose start
  // the word begins (its terms go on into them) — unless the word is so short that these are
  // many: then the first only, which holds the word itself.
  function shardsFor(m, word) {
    var w = hex(word), s = m.hexStarts, lo = -1, hi = s.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (s[mid] <= w) lo = mid; else hi = mid - 1;
    }
    var keys = lo >= 0 ? [m.starts[lo]] : [];
    var longer = [];
    for (var i = lo + 1; i < s.length && s[i].lastIndexOf(w, 0) === 0; i++) longer.push(m.starts[i]);
    if (longer.length <= 8) keys = keys.concat(longer);
    return keys;
  }
  function wordsOf(q) {
    var seen = {};
    return q.toLowerCase().split(WORDS).filter(function (w) {
      if (Array.from(w).length < MIN || seen[w]) return false;
      seen[w] = true;
      return true;
    });
  }
  // Scores of every page matching all words: a word matches the terms it starts; a whole-word
  // match counts double.
  function search(q) {
    var words = wordsOf(q);
    if (!words.length) return Promise.resolve(null);
    return loadManifest(false).then(function (m) {
      return Promise.all(words.map(function (w) {
        return Promise.all(shardsFor(m, w).map(function (k) {
          return shard(k);
        })).then(function (parts) {
          var scores = new Map();
          parts.forEach(function (terms) {
            Object.keys(terms).forEach(function (term) {
              if (term.lastIndexOf(w, 0) !== 0) return;
              var p = terms[term], id = 0, boost = term === w ? 2 : 1;
              for (var i = 0; i < p.length; i += 2) {
                id += p[i];
                scores.set(id, (scores.get(id) || 0) + p[i + 1] * boost);
              }
            });
          });
          return scores;
        });
      }));
    }).then(function (perWord) {
      var total = perWord[0];
      perWord.slice(1).forEach(function (s) {
        var both = new Map();
        total.forEach(function (v, id) { if (s.has(id)) both.set(id, v + s.get(id)); });
        total = both;
      });
      var ranked = Array.from(total.entries()).sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
      return { words: words, ids: ranked.map(function (e) { return e[0]; }) };
    });
  }

  // ---- excerpts: a window of the page's text around the first match, every match marked
  function pattern(words) {
    var alts = words.map(function (w) { return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); });
    return new RegExp("(^|[^\\p{L}\\p{N}])(" + alts.join("|") + ")", "giu");
  }
  function excerpt(text, re) {
    text = text.replace(/\s+/g, " ");
    re.lastIndex = 0;
    var m = re.exec(text);
    if (!m) return text.length > 160 ? text.slice(0, 160) + "…" : text;
    var at = m.index + m[1].length;
    var start = Math.max(0, at - 60);
    if (start > 0) {
      var space = text.indexOf(" ", start);
      if (space > 0 && space < at) start = space + 1;
    }
    var end = Math.min(text.length, at + 120);
    var cut = text.lastIndexOf(" ", end);
    if (end < text.length && cut > at) end = cut;
    return (start > 0 ? "…" : "") + text.slice(start, end) + (end < text.length ? "…" : "");
  }
  // `text` into `parent` as text nodes, the matches of `re` inside <mark>.
  function marked(parent, text, re) {
    re.lastIndex = 0;
    var last = 0, m;
    while ((m = re.exec(text))) {
      var at = m.index + m[1].length;
      parent.append(document.createTextNode(text.slice(last, at)), el("mark", {}, [m[2]]));
      last = at + m[2].length;
      if (re.lastIndex === m.index) re.lastIndex++;
    }
    parent.append(document.createTextNode(text.slice(last)));
    return parent;
  }

  function show(result, docs) {
    var re = pattern(result.words);
    list.replaceChildren.apply(list, docs.map(function (d) {
      var link = el("a", { href: d.u.charAt(0) === "/" && d.u.charAt(1) !== "/" ? BASE + d.u.slice(1) : d.u });
      link.append(marked(el("span", { class: "search-hit-title" }), d.t, re));
      if (d.s) link.append(el("span", { class: "search-hit-section" }, [d.s]));
      link.append(marked(el("span", { class: "search-hit-excerpt" }), excerpt(d.x, re), re));
      return el("li", {}, [link]);
    }));
    var n = result.ids.length;
    status.textContent = n === 0 ? "No results." :
      n > docs.length ? n + " results, the first " + docs.length + " shown." :
      n === 1 ? "1 result." : n + " results.";
  }

  var seq = 0;
  var timer = 0;
  // One query against the manifest in hand: the shards of its words, then the stores of the
  // results shown.
  function query(q) {
    return search(q).then(function (result) {
      if (!result) return null;
      return Promise.all(result.ids.slice(0, LIMIT).map(store)).then(function (docs) {
        return { result: result, docs: docs };
      });
    });
  }
  function run() {
    var q = input.value, mine = ++seq;
    if (!wordsOf(q).length) {
      list.replaceChildren();
      status.textContent = q.trim() ? "Type at least " + MIN + " letters." : "";
      return;
    }
    var used = manifest;
    query(q).catch(function () {
      // The site was rebuilt since the manifest was read: a file it names is gone (ids and
      // shards go with the manifest they came from). Read the manifest again, once (one
      // re-read for every query that failed on the same manifest), and query it from scratch.
      return (used && manifest !== used ? loadManifest(false) : loadManifest(true)).then(function () {
        return query(q);
      });
    }).then(function (found) {
      if (mine === seq && found) show(found.result, found.docs);
    }).catch(function () {
      if (mine === seq) status.textContent = "Search is unavailable right now.";
    });
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(run, 120);
  });

  button.setAttribute("data-search-ready", "");
  button.setAttribute("aria-expanded", "false");
  if (button.getAttribute("data-search-pending") === "open") {
    button.removeAttribute("data-search-pending");
    open();
  }
})();
