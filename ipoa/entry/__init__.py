"""What the entry points share, app-wide: the web pages (ipoa/web) and the JSON API (ipoa/api) import from
here and never from each other (tests/unit/test_import_rules.py).

- request_context.py: the services object for the request, the acting user (current, actor)
- role_check.py: `requires`, the route decorator checking the user's role
- json_input.py: the depth-checked JSON decoding (the app's JSON provider) and the API's body reader
- json_errors.py: the one shape of a JSON error answer, and whether a request is the API's
"""
