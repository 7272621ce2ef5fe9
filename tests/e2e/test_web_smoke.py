from tests.conftest import call_payload, csrf_token, sign_in


def test_handler_logs_triages_and_routes_a_call(client, users):
    assert sign_in(client, "handler").status_code == 302
    page = client.get("/queue")
    assert page.status_code == 200
    token = csrf_token(client, "/calls/new")
    body = call_payload()
    form = {"csrf_token": token, "caller_type": "carer", "caller_name": "Jo", "caller_phone": "07911123456",
            "nhs_number": body["subject"]["nhs_number"], "given_name": "Edith", "family_name": "Testperson",
            "date_of_birth-day": "2", "date_of_birth-month": "4",
            "date_of_birth-year": "1938", "postcode": "LE11 3AB", "need": "urgent_community_health",
            "urgency": "urgent", "summary": "Fell", "consent": "given"}
    resp = client.post("/calls/new", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    call_url = resp.headers["Location"]
    html = client.get(call_url).get_data(as_text=True)
    assert "Start triage" in html
    ref = call_url.rsplit("/", 1)[1]
    resp = client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "start_triage",
                                                     "expected_version": "1"})
    assert resp.status_code == 302
    html = client.get(call_url).get_data(as_text=True)
    assert "Recommended: refer to CRT" in html
    resp = client.post(f"/calls/{ref}/events", data={"csrf_token": token, "trigger": "refer",
                                                     "service": "CRT", "expected_version": "2"})
    assert resp.status_code == 302
    html = client.get(call_url).get_data(as_text=True)
    assert "referred" in html and "Clinical Response Team" in html
