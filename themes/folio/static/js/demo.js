// folio default theme: a demo with a recording ([data-terminal][data-recording], page.html).
// The poster (the recording's screen, rendered by the build) is already on the page; this
// script adds what needs JavaScript:
// - "Play the recording": loads player.js (hashed URL in data-player-js) on the first click
//   only, then play / pause / speed;
// - "Run it live" (terminal.js's start button) switches the element to the live terminal;
//   when terminal.js reports the session over for good (the DOM event folio-terminal-ended,
//   reason busy / rate-limited / down / lost / error), the element shows the recording
//   again with one line saying why and when to retry;
// - the demo's state before the click: GET /api/terminal/status says whether live sessions
//   are available ("live" or "recording"); when it is missing or fails nothing is said.
(function () {
  "use strict";
  var sections = document.querySelectorAll("[data-terminal][data-recording]");
  if (!sections.length) return;

  var FALLBACK = {
    busy: "All live sessions are in use",
    "rate-limited": "You started several live sessions in a short time",
    down: "The live demo's server is not reachable right now",
    lost: "The connection to the live session was lost",
    error: "The live terminal could not start",
  };

  function whyText(d) {
    var head = FALLBACK[d.reason] || FALLBACK.error;
    var when = typeof d.retryAfter === "number" && d.retryAfter > 0
      ? "try again in " + Math.ceil(d.retryAfter) + " s"
      : d.reason === "lost" ? "you can start a new session" : "try again in a few minutes";
    return head + ": showing the recording instead; " + when + ".";
  }

  function setup(section) {
    var play = section.querySelector("[data-cast-play]");
    var speed = section.querySelector("[data-cast-speed]");
    var why = section.querySelector("[data-cast-why]");
    var stateBadge = section.querySelector("[data-demo-state]");
    var player = null;

    function live() {
      section.setAttribute("data-demo-view", "live");
      if (why) why.hidden = true;
      if (player) player.then(function (p) { p.pause(); }, function () {});
    }

    if (play) {
      play.hidden = false;
      play.addEventListener("click", function () {
        if (!player) {
          play.disabled = true;
          var url = new URL(section.getAttribute("data-player-js"), location.href).href;
          player = import(url).then(function (m) {
            return m.createPlayer(section, { play: play, speed: speed });
          });
          player.then(function (p) {
            play.disabled = false;
            p.toggle();
          }, function () {
            player = null;
            play.disabled = false;
            if (why) {
              why.textContent = "The player could not be loaded; the picture above is the recording's last screen.";
              why.hidden = false;
            }
          });
        } else {
          player.then(function (p) { p.toggle(); }, function () {});
        }
      });
    }

    section.addEventListener("click", function (e) {
      var t = e.target && e.target.closest ? e.target.closest("[data-terminal-start], [data-terminal-again]") : null;
      if (t) live();
    });

    section.addEventListener("folio-terminal-ended", function (e) {
      var d = e.detail || {};
      // A session that ran and ended stays on screen; anything else falls back.
      if (d.reason === "ended") return;
      section.setAttribute("data-demo-view", "recording");
      if (why) {
        why.textContent = whyText(d);
        why.hidden = false;
      }
    });

    if (stateBadge && window.fetch) {
      fetch((document.querySelector('meta[name="folio-base"]') || { content: "/" }).content + "api/terminal/status", { headers: { Accept: "application/json" } })
        .then(function (r) {
        // The body is read even for an error: unread, it keeps the request open.
        return r.text().then(function (t) { return r.ok ? JSON.parse(t) : null; });
      })
        .then(function (s) {
          if (!s || typeof s.live !== "boolean") return;
          stateBadge.textContent = s.live ? "live now" : "recording only right now";
          stateBadge.setAttribute("data-live", String(s.live));
          stateBadge.hidden = false;
        })
        .catch(function () { /* progressive enhancement: say nothing */ });
    }
  }

  for (var i = 0; i < sections.length; i++) setup(sections[i]);
})();
