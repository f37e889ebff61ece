// folio default theme: "Run it live". A project page with a [demo] has a section
// [data-terminal]; this script shows its start button and, on click only, loads xterm.js
// (the hashed URLs in the section's data-xterm-js / data-fit-js / data-xterm-css) and opens
// the terminal WebSocket (/terminal/<demo>, docs/terminal-protocol.md):
//   hello:   text {"cols","rows"}         client → server, first
//   binary:  0x00 input, 0x01 resize JSON, 0x02 pause, 0x03 resume      client → server
//            0x00 output, 0x01 exit JSON, 0x02 notice text,
//            0x03 resume token JSON                                     server → client
// It shows connecting / running / exited / refused / lost in [data-terminal-status], and is
// usable with the keyboard alone: focus moves into the terminal on start, Shift+Tab leaves it.
(function () {
  "use strict";
  // The site's base path ("/" or e.g. "/blog/"): docs/templates.md.
  var BASE = (document.querySelector('meta[name="folio-base"]') || { content: "/" }).content;
  var sections = document.querySelectorAll("[data-terminal]");
  if (!sections.length || !window.WebSocket || !window.Promise) return;

  // Pause the origin when this many bytes wait for xterm to parse; resume below LOW.
  var HIGH = 256 * 1024;
  var LOW = 32 * 1024;
  // The Worker's refusals (429/503 before the upgrade) reach a browser only as a failed
  // WebSocket; its own guess at when to retry (edge-worker limits::SESSION_RETRY_AFTER_SECS).
  var DEFAULT_RETRY_SECS = 30;
  var encoder = new TextEncoder();
  var decoder = new TextDecoder();

  // --- xterm under a strict CSP --------------------------------------------------------
  // xterm's DOM renderer injects <style> elements and may set style attributes with
  // setAttribute("style"); a style-src without 'unsafe-inline' blocks both (Chrome checks an
  // inline <style> against the CSP even when it is empty or not CSS). So, once the visitor
  // starts a terminal: document.createElement("style") gives xterm an inert element instead
  // (never a <style>, so nothing for CSP to check) whose text goes into a constructed
  // stylesheet adopted by the document; setAttribute("style", v) becomes style.cssText = v,
  // the CSSOM, which CSP allows. The styles that apply are the same.
  var shimmed = false;
  function shimStyles() {
    if (shimmed) return;
    shimmed = true;
    if (!("adoptedStyleSheets" in document) || !window.CSSStyleSheet ||
        !("replaceSync" in CSSStyleSheet.prototype)) return;
    var createElement = document.createElement;
    document.createElement = function (name) {
      if (String(name).toLowerCase() === "style") return adopted();
      return createElement.apply(document, arguments);
    };
    var setAttribute = Element.prototype.setAttribute;
    Element.prototype.setAttribute = function (name, value) {
      if (String(name).toLowerCase() === "style" && this.style) {
        this.style.cssText = String(value);
        return;
      }
      return setAttribute.call(this, name, value);
    };
  }
  function adopted() {
    var el = document.createElementNS("http://www.w3.org/1999/xhtml", "folio-style");
    el.hidden = true;
    var sheet = new CSSStyleSheet();
    var text = "";
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    Object.defineProperty(el, "textContent", {
      configurable: true,
      get: function () { return text; },
      set: function (v) {
        text = v == null ? "" : String(v);
        try { sheet.replaceSync(text); } catch (e) { /* not CSS: nothing to apply */ }
      },
    });
    var remove = el.remove;
    el.remove = function () {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter(function (s) {
        return s !== sheet;
      });
      return remove.apply(el, arguments);
    };
    return el;
  }

  var xterm = null;
  function loadXterm(section) {
    if (xterm) return xterm;
    var js = section.getAttribute("data-xterm-js");
    var fit = section.getAttribute("data-fit-js");
    var css = section.getAttribute("data-xterm-css");
    if (!js || !fit) return Promise.reject(new Error("the page does not say where xterm is"));
    var abs = function (u) { return new URL(u, location.href).href; };
    var sheet = !css ? Promise.resolve() : new Promise(function (resolve, reject) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = abs(css);
      link.onload = resolve;
      link.onerror = function () { reject(new Error("xterm.css did not load")); };
      document.head.appendChild(link);
    });
    var links = section.getAttribute("data-links-js");
    xterm = Promise.all([import(abs(js)), import(abs(fit)), sheet,
      links ? import(abs(links)).catch(function () { return {}; }) : {}]).then(function (m) {
      return { Terminal: m[0].Terminal, FitAddon: m[1].FitAddon, WebLinksAddon: m[3].WebLinksAddon };
    });
    xterm.catch(function () { xterm = null; });
    return xterm;
  }

  // The recording player (player.js) loads xterm the same way, under the same CSP shim.
  window.folioXterm = function (section) {
    return loadXterm(section).then(function (lib) { shimStyles(); return lib; });
  };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  function wsUrl(endpoint) {
    var u = new URL(endpoint, location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  function frame(type, payload) {
    var bytes = new Uint8Array(1 + (payload ? payload.length : 0));
    bytes[0] = type;
    if (payload) bytes.set(payload, 1);
    return bytes;
  }

  function retryAfter(reason) {
    var m = /retry[ _-]?after[ =:]*(\d+)/i.exec(reason || "");
    return m ? Number(m[1]) : null;
  }

  var REFUSALS = {
    rate_limited: "You started terminals too quickly.",
    too_many_sessions: "You already have the most terminals one visitor may open.",
    sessions_full: "All terminal sessions are in use.",
    too_many_starts: "Many terminals were started in the last minute."
  };

  var END_REASONS = {
    idle: "no input for a while",
    timeout: "time limit reached",
    process_limit: "too many processes",
    shutdown: "the terminal server is shutting down",
  };

  // ---- touch key bar (wt-record) ------------------------------------------------------
  // On a touch screen ((pointer: coarse)) a row of the keys a phone keyboard lacks: Esc,
  // Tab, a sticky Ctrl (applies to the next key, from the bar or the keyboard), arrows (as
  // xterm sends them, honouring application cursor mode), | ~ /. The buttons keep the
  // focus in the terminal, so the on-screen keyboard stays open.
  var KEYS = [
    ["Esc", "Esc", "\x1b"], ["Tab", "Tab", "\t"], ["Ctrl", "Ctrl", null],
    ["\u2190", "Left arrow", "D"], ["\u2191", "Up arrow", "A"], ["\u2193", "Down arrow", "B"],
    ["\u2192", "Right arrow", "C"], ["|", "Pipe", "|"], ["~", "Tilde", "~"], ["/", "Slash", "/"],
  ];
  function ctrlOf(data) {
    if (data.length !== 1) return data;
    var c = data.toUpperCase().charCodeAt(0);
    if (c >= 64 && c <= 95) return String.fromCharCode(c - 64);
    if (data === " ") return "\x00";
    if (data === "?") return "\x7f";
    return data;
  }
  function keyBar(section, screen, term, send) {
    var ctrl = false;
    var bar = el("div", { class: "terminal-keys", role: "toolbar", "aria-label": "Terminal keys", "data-terminal-keys": "" });
    var ctrlBtn = null;
    function setCtrl(on) {
      ctrl = on;
      if (ctrlBtn) ctrlBtn.setAttribute("aria-pressed", String(on));
    }
    KEYS.forEach(function (k) {
      var b = el("button", { type: "button", "aria-label": k[1], "data-key": k[1] }, k[0]);
      if (k[2] === null) {
        ctrlBtn = b;
        b.setAttribute("aria-pressed", "false");
      }
      // Keep the focus (and the on-screen keyboard) in the terminal.
      b.addEventListener("mousedown", function (e) { e.preventDefault(); });
      b.addEventListener("click", function () {
        if (k[2] === null) {
          setCtrl(!ctrl);
        } else if (k[2].length === 1 && "ABCD".indexOf(k[2]) >= 0) {
          var app = term.modes && term.modes.applicationCursorKeysMode;
          send(ctrl ? "\x1b[1;5" + k[2] : (app ? "\x1bO" : "\x1b[") + k[2]);
          setCtrl(false);
        } else {
          send(ctrl ? ctrlOf(k[2]) : k[2]);
          setCtrl(false);
        }
        term.focus();
      });
      bar.appendChild(b);
    });
    var coarse = window.matchMedia ? window.matchMedia("(pointer: coarse)") : null;
    bar.hidden = !(coarse && coarse.matches);
    if (coarse && coarse.addEventListener) {
      coarse.addEventListener("change", function () { bar.hidden = !coarse.matches; });
    }
    screen.parentNode.insertBefore(bar, screen.nextSibling);
    return {
      // A key typed while the sticky Ctrl is on is sent as its control character.
      apply: function (data) {
        if (!ctrl) return data;
        setCtrl(false);
        return ctrlOf(data);
      },
    };
  }
  // ---- end touch key bar --------------------------------------------------------------

  function setup(section) {
    var start = section.querySelector("[data-terminal-start]");
    var status = section.querySelector("[data-terminal-status]");
    var screen = section.querySelector("[data-terminal-screen]");
    var demo = section.getAttribute("data-demo");
    var endpoint = section.getAttribute("data-endpoint") || (demo && BASE + "terminal/" + demo);
    if (!start || !screen || !endpoint) return;

    var term = null;
    var fitAddon = null;
    var ws = null;
    var controls = null;
    var stopBtn = null;
    var againBtn = null;
    var srBtn = null;
    var notice = null;
    var retryTimer = 0;

    function say(state, text) {
      section.setAttribute("data-terminal-state", state);
      if (status) status.textContent = text;
    }

    function buildControls() {
      controls = el("div", { class: "terminal-controls" });
      stopBtn = el("button", { type: "button", class: "button", "data-terminal-stop": "" }, "Stop");
      againBtn = el("button", { type: "button", class: "button", "data-terminal-again": "", hidden: "" }, "Reconnect");
      var sr = false;
      try { sr = localStorage.getItem("folio-terminal-sr") === "1"; } catch (e) { /* no storage */ }
      srBtn = el("button", { type: "button", class: "button", "data-terminal-sr": "", "aria-pressed": String(sr) },
        "Screen reader mode");
      var hint = el("p", { class: "terminal-hint" },
        "Keys go to the terminal; Shift+Tab moves focus back out to these buttons.");
      notice = el("p", { class: "terminal-notice", "data-terminal-notice": "", "aria-live": "polite", hidden: "" });
      controls.appendChild(stopBtn);
      controls.appendChild(againBtn);
      controls.appendChild(srBtn);
      controls.appendChild(hint);
      section.insertBefore(controls, screen);
      section.insertBefore(notice, screen);
      stopBtn.addEventListener("click", function () {
        if (ws) {
          ws.folioStopped = true;
          ws.close(1000, "stopped");
        }
      });
      againBtn.addEventListener("click", connect);
      srBtn.addEventListener("click", function () {
        var on = srBtn.getAttribute("aria-pressed") !== "true";
        srBtn.setAttribute("aria-pressed", String(on));
        if (term) term.options.screenReaderMode = on;
        try { localStorage.setItem("folio-terminal-sr", on ? "1" : "0"); } catch (e) { /* fine */ }
      });
      return sr;
    }

    // Tells the page (demo.js: fall back to the recording) that this session is over:
    // reason "busy" | "rate-limited" | "down" | "lost" | "ended" | "error".
    function dispatchEnded(reason, retry, message) {
      var ev;
      try {
        ev = new CustomEvent("folio-terminal-ended", {
          detail: { reason: reason, retryAfter: retry == null ? null : retry, message: message },
        });
      } catch (e) { return; }
      section.dispatchEvent(ev);
    }

    function ended(state, text, againLabel, reason, retry) {
      say(state, text);
      dispatchEnded(reason || (state === "exited" ? "ended" : state === "lost" ? "lost" : "error"),
        retry, text);
      var hadFocus = section.contains(document.activeElement) && document.activeElement !== againBtn;
      stopBtn.hidden = true;
      againBtn.textContent = againLabel;
      againBtn.hidden = false;
      if (hadFocus) againBtn.focus();
    }

    function fit() {
      if (!fitAddon) return;
      try { fitAddon.fit(); } catch (e) { /* not laid out yet */ }
    }

    function open(lib) {
      var sr = buildControls();
      screen.hidden = false;
      term = new lib.Terminal({
        cursorBlink: true,
        convertEol: false,
        scrollback: 2000,
        screenReaderMode: sr,
        fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
        fontSize: 14,
      });
      fitAddon = new lib.FitAddon();
      term.loadAddon(fitAddon);
      // Shift+Tab is not sent to the program: it moves focus out of the terminal.
      term.attachCustomKeyEventHandler(function (e) {
        return !(e.key === "Tab" && e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey);
      });
      // xterm goes into a box that fills the screen's content area: the fit addon sizes the
      // terminal from its parent's computed height, which would count the screen's padding.
      var host = el("div", { class: "terminal-xterm" });
      host.style.height = "100%";
      host.style.width = "100%";
      screen.appendChild(host);
      var bg = getComputedStyle(screen).backgroundColor;
      if (bg && !/^(transparent|rgba\(0, 0, 0, 0\))$/.test(bg)) term.options.theme = { background: bg };
      term.open(host);
      fit();
      if (lib.WebLinksAddon) {
        // Links in the output open in a new tab that cannot reach back into this page.
        term.loadAddon(new lib.WebLinksAddon(function (ev, uri) {
          if (/^https?:\/\//i.test(uri)) window.open(uri, "_blank", "noopener,noreferrer");
        }));
      }
      var keys = keyBar(section, screen, term, function (data) {
        send(frame(0x00, encoder.encode(data)));
      });
      term.onData(function (data) { send(frame(0x00, encoder.encode(keys.apply(data)))); });
      term.onBinary(function (data) {
        var b = new Uint8Array(data.length);
        for (var i = 0; i < data.length; i++) b[i] = data.charCodeAt(i) & 255;
        send(frame(0x00, b));
      });
      term.onResize(function (size) {
        send(frame(0x01, encoder.encode(JSON.stringify({ cols: size.cols, rows: size.rows }))));
      });
      if (window.ResizeObserver) {
        var queued = false;
        new ResizeObserver(function () {
          if (queued) return;
          queued = true;
          requestAnimationFrame(function () { queued = false; fit(); });
        }).observe(screen);
      }
    }

    function send(bytes) {
      if (ws && ws.readyState === 1 && ws.folioHello) ws.send(bytes);
    }

    // === connection (wt-resume: connect / resume / message handling) ===================
    // A session survives a dropped connection: the origin keeps it for `grace` seconds and
    // gives this page a resume token (frame 0x03, refreshed while connected). On an abnormal
    // close the page reconnects by itself with backoff, to <endpoint>?resume=1 with the token
    // and the count of output bytes it already has in its hello; the origin replays the rest.
    // Every way a session ends for good dispatches `folio-terminal-ended` on the section:
    // detail { reason: busy|rate-limited|down|lost|ended|error, retryAfter: s|null, message }.
    var resumeToken = null;   // the last resume token the origin issued (spent on use)
    var graceSecs = 0;        // how long the origin keeps the session after a drop
    var received = 0;         // output bytes received on this session (all connections)
    var droppedAt = 0;        // when the connection dropped (0: connected)
    var attempt = 0;          // reconnect attempts since the drop

    function finish(reason, state, text, againLabel, retry) {
      resumeToken = null;
      droppedAt = 0;
      ended(state, text, againLabel, reason, retry);
    }

    // Closes that mean the network or a relay lost the connection (not an ending).
    function abnormal(code) {
      return code === 1001 || code === 1005 || code === 1006 || code === 1011 ||
        code === 1012 || code === 1013 || code === 1014;
    }

    function withResume(url) {
      var u = new URL(url);
      u.searchParams.set("resume", "1");
      return u.href;
    }

    function connect() {
      clearTimeout(retryTimer);
      if (ws && ws.readyState < 2) return;
      say("connecting", "Connecting to the demo\u2026");
      againBtn.hidden = true;
      stopBtn.hidden = false;
      notice.hidden = true;
      notice.textContent = "";
      term.reset();
      fit();
      resumeToken = null;
      received = 0;
      droppedAt = 0;
      attempt = 0;
      openSocket(false);
    }

    // Tries to resume after a drop: at once (0.1 s), then 0.5 s, 1 s, 2 s, 4 s (then every 4 s) while
    // the grace period lasts and the token has not been spent.
    function reconnect() {
      clearTimeout(retryTimer);
      var left = droppedAt + graceSecs * 1000 - Date.now();
      if (!resumeToken || left <= 0) {
        finish("lost", "lost", "The connection was lost and the session could not be resumed.",
          "Reconnect", null);
        return;
      }
      say("reconnecting", "Reconnecting\u2026");
      var delay = attempt === 0 ? 100 : Math.min(4000, 500 * Math.pow(2, attempt - 1));
      attempt++;
      retryTimer = setTimeout(function () {
        if (droppedAt) openSocket(true);
      }, Math.min(delay, Math.max(0, left - 250)));
    }

    function openSocket(resuming) {
      var sock = new WebSocket(resuming ? withResume(wsUrl(endpoint)) : wsUrl(endpoint));
      var token = resuming ? resumeToken : null;
      if (resuming) resumeToken = null; // single use: a failed attempt does not get it back
      ws = sock;
      sock.binaryType = "arraybuffer";
      var opened = false;
      var resumed = false;
      var exit = null;
      var pending = 0;
      var paused = false;
      // "Running" only once the demo speaks (or stays open a moment): a refusal is an accepted
      // socket closed at once with 4429/4502/4503, and must not flash "running" first.
      var runningTimer = null;
      function running() {
        clearTimeout(runningTimer);
        if (sock !== ws || resuming) return;
        if (section.getAttribute("data-terminal-state") === "running") return;
        say("running", "Running.");
        term.focus();
      }
      sock.onopen = function () {
        opened = true;
        fit();
        var hello = { cols: term.cols, rows: term.rows };
        if (resuming) {
          hello.resume = token;
          hello.received = received;
        }
        sock.send(JSON.stringify(hello));
        sock.folioHello = true;
        if (!resuming) runningTimer = setTimeout(running, 750);
      };
      sock.onmessage = function (ev) {
        running();
        if (typeof ev.data === "string") return;
        var bytes = new Uint8Array(ev.data);
        if (!bytes.length) return;
        var payload = bytes.subarray(1);
        if (bytes[0] === 0x00) {
          received += payload.length;
          pending += payload.length;
          term.write(payload, function () {
            pending -= payload.length;
            if (paused && pending < LOW && sock === ws) {
              paused = false;
              send(frame(0x03));
            }
          });
          if (!paused && pending > HIGH) {
            paused = true;
            send(frame(0x02));
          }
        } else if (bytes[0] === 0x01) {
          try { exit = JSON.parse(decoder.decode(payload)); } catch (e) { exit = {}; }
        } else if (bytes[0] === 0x02) {
          notice.textContent = decoder.decode(payload);
          notice.hidden = false;
        } else if (bytes[0] === 0x03) {
          var grant = null;
          try { grant = JSON.parse(decoder.decode(payload)); } catch (e) { /* ignore */ }
          if (grant && typeof grant.token === "string" && grant.token.length < 512) {
            resumeToken = grant.token;
            graceSecs = Math.max(0, Math.min(600, Number(grant.grace) || 0));
          }
          if (resuming && !resumed) {
            // The origin took the token: this is the same session again.
            resumed = true;
            droppedAt = 0;
            attempt = 0;
            say("running", "Reconnected \u2014 resumed.");
            if (section.contains(document.activeElement) || document.activeElement === document.body) {
              term.focus();
            }
          }
        }
      };
      sock.onclose = function (ev) {
        clearTimeout(runningTimer);
        if (sock !== ws) return;
        var why = END_REASONS[ev.reason] ? " (" + END_REASONS[ev.reason] + ")" : "";
        if (exit) {
          var how = typeof exit.signal === "number" ? "was ended by signal " + exit.signal
            : typeof exit.code === "number" ? "exited with status " + exit.code : "ended";
          finish("ended", "exited", "The demo " + how + why + ".", "Start again", null);
        } else if (sock.folioStopped) {
          finish("ended", "exited", "Stopped.", "Start again", null);
        } else if (ev.code === 4008) {
          finish("ended", "exited", "The session reached its time limit.", "Start again", null);
        } else if (ev.code === 4410 || ev.code === 4409) {
          // The resume was refused (session gone, grace over), or another tab took it over.
          finish("lost", "lost", ev.code === 4409
            ? "This session was resumed somewhere else."
            : "The connection was lost and the session could not be resumed.", "Reconnect", null);
        } else if (resuming && !resumed && ev.code === 4502) {
          // The origin itself is gone (killed, restarted): so is the session.
          finish("down", "lost", "The connection was lost and the terminal server is not reachable right now.",
            "Reconnect", null);
        } else if (resuming && !resumed) {
          // A reconnect attempt that did not get through (network still down, a relay's
          // refusal): the token was not spent unless the origin saw it, so try the one we
          // had while the grace lasts.
          resumeToken = token;
          reconnect();
        } else if ((opened || resuming) && resumeToken && abnormal(ev.code)) {
          if (!droppedAt) droppedAt = Date.now();
          attempt = 0;
          reconnect();
        } else if (ev.code === 4502) {
          finish("down", "lost", "The terminal server is not reachable right now.", "Reconnect", null);
        } else if (ev.code >= 4400 && ev.code < 4600) {
          // The Worker's refusals: 4000 + HTTP status, reason "<error>; retry_after=N".
          var code = (ev.reason || "").split(";")[0];
          var kind = code === "rate_limited" || code === "too_many_starts" ? "rate-limited"
            : code === "not_configured" ? "error" : "busy";
          refused(retryAfter(ev.reason) || DEFAULT_RETRY_SECS, REFUSALS[code] ||
            (ev.code === 4429 ? "Too many terminals are open right now."
              : "The terminal server is unavailable right now."), kind);
        } else if (!opened) {
          diagnose();
        } else {
          finish("lost", "lost", "The connection was lost" + (ev.reason ? " (" + ev.reason + ")" : "") +
            ".", "Reconnect", null);
        }
      };
    }

    function refused(secs, why, kind) {
      var text = why + " Try again in " + secs + " s.";
      finish(kind || "busy", "refused", text, "Try again", secs);
      retryTimer = setTimeout(function () {
        if (section.getAttribute("data-terminal-state") === "refused") {
          say("refused", why + " You can try again now.");
        }
      }, secs * 1000);
    }

    // The Worker sends its refusals as close codes (above); a handshake that fails outright
    // (an older Worker, a proxy, the network) says nothing, so /api/health tells "the
    // terminal server is up, so we were refused" from "it is down".
    function diagnose() {
      fetch(BASE + "api/health", { cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 429) {
            return refused(Number(r.headers.get("Retry-After")) || DEFAULT_RETRY_SECS,
              "Too many requests from you right now.", "rate-limited");
          }
          return r.json().then(function (h) {
            if (h && h.origin === "ok") {
              refused(DEFAULT_RETRY_SECS,
                "The terminal was refused: all sessions are in use, or you already have the most terminals one visitor may open.", "busy");
            } else {
              finish("down", "lost", "The terminal server is not reachable right now.", "Reconnect", null);
            }
          });
        })
        .catch(function () {
          finish("down", "lost", "Could not reach the site; check your connection.", "Reconnect", null);
        });
    }
    // === end of connection (wt-resume) ===============================================

    start.hidden = false;
    start.addEventListener("click", function () {
      start.disabled = true;
      say("loading", "Loading the terminal\u2026");
      loadXterm(section).then(function (lib) {
        shimStyles();
        if (!term) open(lib);
        start.hidden = true;
        connect();
      }, function () {
        start.disabled = false;
        say("lost", "The terminal could not be loaded. Try again.");
        dispatchEnded("error", null, "The terminal could not be loaded. Try again.");
      });
    });
  }

  for (var i = 0; i < sections.length; i++) setup(sections[i]);
})();
