// folio default theme: replays a demo's recording (asciicast v2, the .cast at the section's
// data-recording) with xterm.js, in place of the poster. Loaded by demo.js on the first
// click of "Play the recording" only. Play / pause, speed 1x / 2x; pauses longer than
// IDLE_CAP seconds are shortened to it. xterm comes through terminal.js (window.folioXterm),
// which loads it under the strict CSP.
var IDLE_CAP = 1;
var SPEEDS = [1, 2];
// The poster's 16 colours (site.css), so playing and poster look the same.
var THEME = {
  background: "#0d0f11", foreground: "#e5e5e5", cursor: "#e5e5e5",
  black: "#8a8a8a", red: "#ff6b6b", green: "#5fd35f", yellow: "#e5c54b", blue: "#7aa5ff",
  magenta: "#e885e8", cyan: "#4fd6d6", white: "#d0d0d0", brightBlack: "#a0a0a0",
  brightRed: "#ff8a8a", brightGreen: "#7dff7d", brightYellow: "#ffff6b", brightBlue: "#9dbcff",
  brightMagenta: "#ff9cff", brightCyan: "#7fffff", brightWhite: "#ffffff",
};

function parseCast(text) {
  var lines = text.split("\n");
  var header = JSON.parse(lines[0]);
  var events = [];
  var prev = 0;
  var at = 0;
  for (var i = 1; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    var e = JSON.parse(lines[i]);
    if (e[1] !== "o" && e[1] !== "r") continue;
    // Idle gaps capped: the time this event plays at.
    at += Math.min(Math.max(e[0] - prev, 0), IDLE_CAP);
    prev = e[0];
    events.push({ at: at, code: e[1], data: e[2] });
  }
  return { cols: header.width, rows: header.height, events: events };
}

export async function createPlayer(section, buttons) {
  if (!window.folioXterm) throw new Error("terminal.js is not loaded");
  var url = new URL(section.getAttribute("data-recording"), location.href).href;
  var loaded = await Promise.all([
    window.folioXterm(section),
    fetch(url).then(function (r) {
      if (!r.ok) throw new Error("recording: HTTP " + r.status);
      return r.text();
    }),
  ]);
  var lib = loaded[0];
  var cast = parseCast(loaded[1]);
  var frame = section.querySelector("[data-cast-frame]");
  var poster = section.querySelector("[data-cast-poster]");
  var host = document.createElement("div");
  host.className = "cast-screen cast-player";
  host.setAttribute("data-cast-player", "");
  var term = new lib.Terminal({
    cols: cast.cols, rows: cast.rows, disableStdin: true, cursorBlink: false, scrollback: 0,
    fontSize: 13, lineHeight: 1, theme: THEME,
    fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace',
  });
  poster.hidden = true;
  frame.appendChild(host);
  term.open(host);

  var i = 0;       // next event
  var clock = 0;   // seconds of the (capped) recording played
  var startedAt = 0;
  var timer = 0;
  var speedIdx = 0;
  var state = "paused";

  function setState(s) {
    state = s;
    section.setAttribute("data-cast-state", s);
    buttons.play.textContent = s === "playing" ? "Pause" : s === "ended" ? "Replay" : "Play the recording";
  }
  function now() { return state === "playing" ? clock + (performance.now() - startedAt) / 1000 * SPEEDS[speedIdx] : clock; }
  function step() {
    timer = 0;
    var t = now();
    while (i < cast.events.length && cast.events[i].at <= t) {
      var e = cast.events[i++];
      if (e.code === "o") term.write(e.data);
      else {
        var m = /^(\d+)x(\d+)$/.exec(e.data);
        if (m) term.resize(Number(m[1]), Number(m[2]));
      }
    }
    if (i >= cast.events.length) {
      clock = t;
      setState("ended");
      return;
    }
    timer = setTimeout(step, Math.max(0, (cast.events[i].at - t) * 1000 / SPEEDS[speedIdx]));
  }
  function play() {
    if (state === "playing") return;
    if (state === "ended") {
      term.reset();
      i = 0;
      clock = 0;
    }
    startedAt = performance.now();
    setState("playing");
    step();
  }
  function pause() {
    if (state !== "playing") return;
    clock = now();
    clearTimeout(timer);
    timer = 0;
    setState("paused");
  }

  if (buttons.speed) {
    buttons.speed.hidden = false;
    buttons.speed.addEventListener("click", function () {
      var t = now();
      speedIdx = (speedIdx + 1) % SPEEDS.length;
      clock = t;
      startedAt = performance.now();
      buttons.speed.textContent = "Speed " + SPEEDS[speedIdx] + "\u00d7";
      if (state === "playing") {
        clearTimeout(timer);
        step();
      }
    });
  }
  setState("paused");
  return {
    toggle: function () { if (state === "playing") pause(); else play(); },
    pause: pause,
  };
}
