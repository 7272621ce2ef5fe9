// Starts the vendored NHS.UK frontend components (error summary focus, header menu, skip link,
// notification banners). A module file, not an inline <script>: the Content-Security-Policy allows
// scripts from this server only (ipoa/web/headers.py). Module scripts run only in browsers the
// design system supports, so marking the body here stands in for its inline `nhsuk-frontend-supported`.
import { initAll } from "./vendor/nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();
