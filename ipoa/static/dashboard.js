// The supervisor's live dashboard: htmx settings and the "not updated" notice. Loaded after htmx (both
// deferred), so it runs before htmx starts on DOMContentLoaded. No inline handlers (hx-on evaluates
// strings as code, which the Content-Security-Policy forbids: ipoa/web/headers.py).
(function () {
  "use strict";
  if (!window.htmx) {
    return;
  }
  // No code from attributes, and no <style> element injected for request indicators (app.css has none
  // to need it): both would be refused by the policy.
  window.htmx.config.allowEval = false;
  window.htmx.config.includeIndicatorStyles = false;
  function showStale() {
    var stale = document.getElementById("dashboard-stale");
    if (stale) {
      stale.hidden = false;
    }
  }
  document.addEventListener("htmx:sendError", showStale);
  document.addEventListener("htmx:responseError", showStale);
})();
