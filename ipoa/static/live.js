// The live pages: the queue and the call page (templates/_queue_live.html, templates/_call_live.html,
// web/live_pages.py) and the supervisor's dashboard (templates/_dashboard_live.html, with dashboard.js):
// htmx settings, the "not updated" notices, clocks counted down each second from the server's time, the
// notices in live regions swapped only when what they say changes, and the queue's optional alert tone.
// Loaded after htmx (both deferred), so it runs before htmx starts on DOMContentLoaded. No inline handlers
// (hx-on evaluates strings as code, which the Content-Security-Policy forbids: ipoa/web/headers.py).
(function () {
  "use strict";
  if (!window.htmx) {
    return;
  }
  window.htmx.config.allowEval = false;
  window.htmx.config.includeIndicatorStyles = false;

  // -- not updated ----------------------------------------------------------------------------------------
  // The polling element's "<id>-stale" notice; a successful poll replaces the element, notice and all.
  function showStale(elt) {
    var note = elt && elt.id ? document.getElementById(elt.id + "-stale") : null;
    if (note) {
      note.hidden = false;
    }
  }
  document.addEventListener("htmx:sendError", function (evt) { showStale(evt.detail.elt); });
  document.addEventListener("htmx:responseError", function (evt) { showStale(evt.detail.elt); });
  // An answer that is not the fragment asked for (signed out: the sign-in page) is never swapped in.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    var body = evt.detail.serverResponse || "";
    if (target && target.id && body.indexOf('id="' + target.id + '"') < 0) {
      evt.detail.shouldSwap = false;
      showStale(target);
    }
  });

  // -- live regions: announce a notice when it changes, not at every poll ----------------------------------
  function keyOf(root) {
    var el = root && root.querySelector ? root.querySelector("[data-key]") : null;
    return el ? el.getAttribute("data-key") : "";
  }
  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var target = evt.detail.target;
    if (target && target.hasAttribute("data-live-notice") && keyOf(target) === keyOf(evt.detail.fragment)) {
      evt.detail.shouldSwap = false;
    }
  });

  // -- countdown clocks -----------------------------------------------------------------------------------
  // Each <time datetime data-countdown> is when a clock falls due. The server's now comes with every
  // fragment (data-server-now): the difference from this browser's clock is kept, so a browser whose clock
  // is wrong still counts down to the server's due time. Only the words change: no live region reads them.
  var offset = 0;

  function readServerNow() {
    var el = document.querySelector("[data-server-now]");
    var at = el ? Date.parse(el.getAttribute("data-server-now")) : NaN;
    if (!isNaN(at)) {
      offset = at - Date.now();
    }
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  // "due in 4 min 12 s", "overdue by 1 min 3 s", "due in 1 h 5 min", "due now" (as ipoa/domain/sla.py's
  // describe_remaining words it, with seconds under the hour).
  function words(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    if (s === 0) {
      return "due now";
    }
    var days = Math.floor(s / 86400);
    var hours = Math.floor((s % 86400) / 3600);
    var mins = Math.floor((s % 3600) / 60);
    var secs = s % 60;
    var text;
    if (days) {
      text = plural(days, "day", "days") + (hours ? " " + hours + " h" : "");
    } else if (hours) {
      text = hours + " h" + (mins ? " " + mins + " min" : "");
    } else if (mins) {
      text = mins + " min " + secs + " s";
    } else {
      text = secs + " s";
    }
    return ms > 0 ? "due in " + text : "overdue by " + text;
  }

  function tick() {
    var now = Date.now() + offset;
    var clocks = document.querySelectorAll("time[data-countdown]");
    for (var i = 0; i < clocks.length; i++) {
      var due = Date.parse(clocks[i].getAttribute("datetime"));
      if (!isNaN(due)) {
        var text = words(due - now);
        if (clocks[i].textContent !== text) {
          clocks[i].textContent = text;
        }
      }
    }
  }

  // -- the queue's alert tone (Web Audio), off unless chosen ---------------------------------------------
  var SOUND_KEY = "ipoa.queue.sound";
  var box = document.getElementById("queue-sound-on");
  var audio = null;
  var known = null; // the refs of the calls whose clock had run out at the last refresh

  function remembered() {
    try {
      return window.localStorage.getItem(SOUND_KEY) === "on";
    } catch (e) {
      return false;
    }
  }

  function remember(on) {
    try {
      window.localStorage.setItem(SOUND_KEY, on ? "on" : "off");
    } catch (e) {
      // Storage refused (a private window): the choice lasts as long as the page.
    }
  }

  // Browsers start sound only after the person has used the page: ticking the box is such a use, and so is
  // any click or key press on a page opened with the sound already chosen.
  function audioContext() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      return null;
    }
    if (!audio) {
      audio = new Ctx();
    }
    if (audio.state === "suspended") {
      audio.resume();
    }
    return audio;
  }

  function tone() {
    var ctx = audioContext();
    if (!ctx) {
      return;
    }
    [0, 0.4].forEach(function (start) {
      var at = ctx.currentTime + start;
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.32);
    });
    // How many alerts sounded on this page, for anyone checking that it works (and the browser tests).
    box.setAttribute("data-alerts", String(Number(box.getAttribute("data-alerts") || "0") + 1));
  }

  function breachedRefs() {
    var rows = document.querySelectorAll("#queue-live [data-breached-ref]");
    var refs = {};
    for (var i = 0; i < rows.length; i++) {
      refs[rows[i].getAttribute("data-breached-ref")] = true;
    }
    return refs;
  }

  // Sounds once when a call's clock runs out after a refresh: not for those already out when the page
  // opened, nor again while the same calls stay out.
  function checkBreaches() {
    if (!box) {
      return;
    }
    var now = breachedRefs();
    var fresh = known !== null && Object.keys(now).some(function (ref) { return !known[ref]; });
    known = now;
    if (fresh && box.checked) {
      tone();
    }
  }

  if (box) {
    document.getElementById("queue-sound").hidden = false;
    box.checked = remembered();
    box.addEventListener("change", function () {
      remember(box.checked);
      if (box.checked) {
        audioContext();
      }
    });
    ["click", "keydown"].forEach(function (kind) {
      document.addEventListener(kind, function () {
        if (box.checked && (!audio || audio.state === "suspended")) {
          audioContext();
        }
      });
    });
  }

  function refreshed() {
    readServerNow();
    tick();
    checkBreaches();
  }

  document.addEventListener("htmx:afterSettle", refreshed);
  document.addEventListener("DOMContentLoaded", refreshed);
  window.setInterval(tick, 1000);
})();
