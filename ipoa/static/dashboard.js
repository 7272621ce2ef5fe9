// The supervisor's live dashboard: what only it needs on top of live.js (htmx settings, the "not updated"
// notice, answers that are not the fragment never swapped in), which is loaded before it. No inline
// handlers (hx-on evaluates strings as code, which the Content-Security-Policy forbids: ipoa/web/headers.py).
(function () {
  "use strict";
  if (!window.htmx) {
    return;
  }
  // A refresh replaces the whole live block: an open follow-up form, and the note typed in it, would be
  // lost every 2 seconds. While one is open or holds a note, the poll is skipped (and the page says so).
  function writingNote(live) {
    if (live.querySelector("details.follow-up[open]")) {
      return true;
    }
    return Array.prototype.some.call(live.querySelectorAll("details.follow-up textarea"), function (note) {
      return note.value.trim() !== "";
    });
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var live = document.getElementById("dashboard-live");
    if (!live || event.target !== live) {
      return;
    }
    var paused = document.getElementById("dashboard-paused");
    var writing = writingNote(live);
    if (paused) {
      paused.hidden = !writing;
    }
    if (writing) {
      event.preventDefault();
    }
  });
})();
