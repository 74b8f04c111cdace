"""Schemathesis hooks for scripts/api-fuzz: every generated request that may carry
an access token gets a fresh one (the demo user's, from POST /login; an
administrator's for the admin API), so a case that logged its session out cannot
starve the ones after it of a live token."""
import json
import os
import urllib.request

import schemathesis

BASE = os.environ["LATCHKEY_FUZZ_URL"]
CREDENTIALS = {"email": "demo@example.com", "password": "correct horse battery staple"}
ADMIN = {"email": "fuzz-admin@example.com", "password": "fuzz admin passphrase"}


@schemathesis.auth(refresh_interval=None)
class FreshAccessToken:
    def get(self, case, context):
        credentials = ADMIN if case.path.startswith("/admin/") else CREDENTIALS
        request = urllib.request.Request(
            f"{BASE}/login",
            data=json.dumps(credentials).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["accessToken"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
