"""The twilio client's HTTP layer (ipoa/adapters/twilio_http.py) without a socket: a form encoded exactly as
requests encodes it, requests to Twilio retargeted and nothing else, the proxy and certificates taken from
the environment once. What goes over the wire: tests/integration/test_twilio_http.py."""
from __future__ import annotations

import certifi
import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from requests.models import RequestEncodingMixin

from ipoa.adapters.twilio_http import TwilioHttp, form_encoded

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_value = st.one_of(st.none(), _text, st.integers(), st.lists(st.one_of(st.none(), _text, st.integers()), max_size=3))


@given(st.dictionaries(_text, _value, max_size=6))
def test_a_form_is_encoded_as_requests_encodes_it(data):
    assert form_encoded(data) == RequestEncodingMixin._encode_params(data)


def test_twilios_form_values_are_encoded_as_requests_encodes_them():
    data = {"To": "+447700900123", "From": "+441632960999", "Body": "Café & 50% — ACCEPT?",
            "StatusCallback": "https://ipoa.example/webhooks/twilio/sms/status?x=1&y=2",
            "MediaUrl": ["https://a.example/1", "https://a.example/2"], "SmartEncoded": "true",
            "ValidityPeriod": 60, "Unset": None}
    assert form_encoded(data) == RequestEncodingMixin._encode_params(data)
    assert "Unset" not in form_encoded(data) and form_encoded(data).count("MediaUrl=") == 2


@pytest.fixture
def no_proxy_environment(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_only_twilios_hosts_are_retargeted_with_path_and_query(no_proxy_environment):
    client = TwilioHttp("http://127.0.0.1:8099/", 5)
    assert client.retargeted("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=50") == \
        "http://127.0.0.1:8099/2010-04-01/Accounts/AC1/Messages.json?PageSize=50"
    assert client.retargeted("https://elsewhere.example/x") == "https://elsewhere.example/x"
    assert TwilioHttp(None, 5).retargeted("https://api.twilio.com/a?b=1") == "https://api.twilio.com/a?b=1"


def test_without_a_proxy_certificates_are_certifis_and_verified(no_proxy_environment):
    client = TwilioHttp(None, 5)
    assert client.proxy is None and not isinstance(client.pool, urllib3.ProxyManager)
    assert client.pool.connection_pool_kw["ca_certs"] == certifi.where()
    assert client.pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert client.pool.connection_pool_kw["retries"].total is False  # no retry: errors raised as they are


def test_a_ca_bundle_from_the_environment_is_used(no_proxy_environment, tmp_path):
    bundle = tmp_path / "trust.pem"
    bundle.write_text("")
    no_proxy_environment.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert TwilioHttp(None, 5).pool.connection_pool_kw["ca_certs"] == str(bundle)
    no_proxy_environment.setenv("REQUESTS_CA_BUNDLE", str(tmp_path))  # a directory of certificates
    assert TwilioHttp(None, 5).pool.connection_pool_kw["ca_cert_dir"] == str(tmp_path)


def test_the_environments_proxy_is_used_with_its_credentials(no_proxy_environment):
    no_proxy_environment.setenv("HTTPS_PROXY", "http://trust%40user:p%3Ass@proxy.nhs.example:3128")
    client = TwilioHttp(None, 5)
    assert isinstance(client.pool, urllib3.ProxyManager)
    assert client.pool.proxy.host == "proxy.nhs.example" and client.pool.proxy.port == 3128
    assert client.pool.proxy_headers == urllib3.util.make_headers(proxy_basic_auth="trust@user:p:ss")


def test_no_proxy_is_honoured(no_proxy_environment):
    no_proxy_environment.setenv("HTTPS_PROXY", "http://proxy.nhs.example:3128")
    no_proxy_environment.setenv("NO_PROXY", "twilio.com")
    client = TwilioHttp(None, 5)
    assert client.proxy is None and not isinstance(client.pool, urllib3.ProxyManager)
