// Draws the workflow diagram with the vendored Mermaid. A file of its own, not an inline <script>: the
// Content-Security-Policy allows scripts from this server only (ipoa/web/headers.py).
(function () {
  "use strict";
  if (!window.mermaid) {
    return;
  }
  document.documentElement.classList.add("js");
  window.mermaid.initialize({startOnLoad: false, securityLevel: "strict", theme: "neutral"});
  window.mermaid.run({querySelector: "pre.mermaid"}).then(function () {
    document.getElementById("diagram").setAttribute("data-rendered", "true");
  });
})();
