// folio default theme: a copy button on every code block (.code-block). It copies the code as
// written: no line numbers or diff markers (they are CSS ::before content, not text), no
// hidden lines (not in the page at all), and for a diff-LANG block the code after the change
// (its removed lines left out). A polite live region says "Copied" to screen readers.
(function () {
  "use strict";
  var blocks = document.querySelectorAll(".code-block");
  if (!blocks.length || !navigator.clipboard) return;
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  document.body.appendChild(status);

  function text(code) {
    var lines = code.querySelectorAll(".line");
    if (!lines.length) return code.textContent;
    var diff = code.parentNode.classList.contains("diff");
    var out = "";
    for (var i = 0; i < lines.length; i++) {
      if (diff && lines[i].classList.contains("del")) continue;
      out += lines[i].textContent;
    }
    return out;
  }

  function say(button, word) {
    button.textContent = word;
    status.textContent = word;
    clearTimeout(button._folioTimer);
    button._folioTimer = setTimeout(function () {
      button.textContent = "Copy";
      status.textContent = "";
    }, 2500);
  }

  Array.prototype.forEach.call(blocks, function (block) {
    var code = block.querySelector("pre > code");
    if (!code) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.textContent = "Copy";
    var name = block.querySelector(".code-name");
    button.setAttribute("aria-label", "Copy code" + (name ? " of " + name.textContent : ""));
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(text(code)).then(
        function () { say(button, "Copied"); },
        function () { say(button, "Copy failed"); }
      );
    });
    block.appendChild(button);
  });
})();
