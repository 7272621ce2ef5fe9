"""The twilio client's HTTP layer (the SMS and Voice gateways'): requests to *.twilio.com optionally sent to
another base URL (the tests' emulator, a staging proxy), path and query kept; always with a time-out.

Built on urllib3, the library requests itself sends through, not on twilio's own `TwilioHttpClient`
(requests' Session): for each request a Session merges the session's and the request's headers, hooks,
cookies and environment settings and re-encodes what it was given. Without it a text's send takes half the
CPU (0.6 ms rather than 1.2-1.3 on the machine measured; docs/performance.md, "Texts at the client's rate,
seventh step").
twilio documents `http_client` as the place for such a client (twilio.http.HttpClient). What requests
did that matters here is done the same way, once:
- the body: a form encoded exactly as requests encodes it (`form_encoded`; tests/unit/test_twilio_http.py
  compares the two), or JSON when twilio asks for it by its Content-Type;
- the proxy for the target from the environment (HTTPS_PROXY, NO_PROXY, ...), looked up once, with its
  credentials sent as Proxy-Authorization;
- the certificates: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when set, else certifi's (requests' default);
- no retries and no redirects (requests' defaults for twilio's calls), a connect and a read time-out.

Errors are urllib3's: anything that failed between here and Twilio is a `urllib3.exceptions.HTTPError`
(the gateways' `TRANSPORT_ERRORS`). Nothing is logged: the form holds phone numbers."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response

TWILIO_API = "https://api.twilio.com"
JSON_TYPES = ("application/json", "application/scim+json")
FORM_TYPE = "application/x-www-form-urlencoded"
# What went wrong on the way to Twilio or back: no answer, a time-out, a dropped connection, TLS, a proxy.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError,)


def form_encoded(data: Mapping[str, Any]) -> str:
    """`data` as requests encodes a dict body: a value that is a list (or any iterable but text) gives one
    pair per item, None is left out, anything else is written by str() (twilio serialises its booleans and
    dates before this)."""
    pairs: list[tuple[str, Any]] = []
    for key, values in data.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = (values,)
        pairs.extend((key, value) for value in values if value is not None)
    return urlencode(pairs)


class TwilioHttp(HttpClient):
    def __init__(self, base_url: str | None, timeout: float, *, max_connections: int = 4):
        super().__init__(logging.getLogger("twilio.http_client"), False, timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        target = self.base_url or TWILIO_API
        self.proxy = _environment_proxy(target)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or _certifi()
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        tls["ca_cert_dir" if os.path.isdir(ca_bundle) else "ca_certs"] = ca_bundle
        self._auth: tuple[tuple[str, str] | None, str] = (None, "")
        options: dict[str, Any] = {"maxsize": max_connections, "retries": False, **tls}
        if self.proxy:
            proxy = urllib3.util.parse_url(self.proxy)
            headers = urllib3.util.make_headers(proxy_basic_auth=_unquoted(proxy.auth)) if proxy.auth else None
            self.pool: urllib3.PoolManager = urllib3.ProxyManager(self.proxy, proxy_headers=headers, **options)
        else:
            self.pool = urllib3.PoolManager(**options)

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        url = self.retargeted(url)
        if params:
            url += ("&" if urlsplit(url).query else "?") + form_encoded(params)
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = self._basic(auth)
        body: bytes | None = None
        if headers.get("Content-Type") in JSON_TYPES:
            body = json.dumps(data).encode() if data is not None else None
        elif isinstance(data, (str, bytes)):
            body = data.encode() if isinstance(data, str) else data
        elif data:
            body = form_encoded(data).encode()
            headers.setdefault("Content-Type", FORM_TYPE)
        answer = self.pool.request(method.upper(), url, body=body, headers=headers, redirect=allow_redirects,
                                   timeout=urllib3.Timeout(connect=timeout, read=timeout))
        return Response(answer.status, answer.data.decode("utf-8", "replace"), answer.headers)

    def _basic(self, auth: tuple[str, str]) -> str:
        """The Authorization header for (username, password), made once (every send carries the same)."""
        made, header = self._auth
        if made != auth:
            header = urllib3.util.make_headers(basic_auth=f"{auth[0]}:{auth[1]}")["authorization"]
            self._auth = (auth, header)
        return header

    def retargeted(self, url: str) -> str:
        if not self.base_url:
            return url
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            return self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return url


def _environment_proxy(target: str) -> str | None:
    """The proxy the environment names for `target` (NO_PROXY honoured), as requests would choose it."""
    import requests.utils  # (twilio's own dependency; its lookups, not its Session)

    return requests.utils.select_proxy(target, requests.utils.get_environ_proxies(target))


def _certifi() -> str:
    import certifi

    return certifi.where()


def _unquoted(userinfo: str) -> str:
    user, _, password = userinfo.partition(":")
    return f"{unquote(user)}:{unquote(password)}"
