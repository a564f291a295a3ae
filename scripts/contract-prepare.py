#!/usr/bin/env python3
"""Prepares a dev server for scripts/contract: waits for it to listen, signs
the demo owner in (a session and a bearer access token), finds the demo
workspace, its collection and a record, adds a team and a second workspace
(the one the platform operations may suspend), and writes their ids to
WORK/env for the schemathesis run."""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

work, pid = sys.argv[1], int(sys.argv[2])
log_path = os.path.join(work, "server.log")


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            print(f.read()[-4000:], file=sys.stderr)
    except OSError:
        pass
    sys.exit(1)


# The server prints the demo password and logs its bound address.
deadline = time.monotonic() + 120
url = password = None
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        fail("the dev server exited before it listened")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(r'"message":"listening","addr":"[^"]+","url":"([^"]+)"', text)
    p = re.search(r"Password\s+(\S+)", text)
    if m and p:
        url, password = m.group(1), p.group(1)
        break
    time.sleep(0.2)
if not url:
    fail("the dev server did not listen within 120 s")

EMAIL = "demo@aura.localhost"


def call(method, path, body=None, token=None, cookie=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/api/v1{path}", data=data, method=method)
    req.add_header("Origin", url)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        fail(f"{method} {path}: {e.code} {e.read()[:500]!r}")


def session():
    resp, _ = call("POST", "/auth/login", {"email": EMAIL, "password": password})
    return resp.headers["Set-Cookie"].split(";", 1)[0]


def access_token():
    _, tokens = call("POST", "/auth/token", {"email": EMAIL, "password": password})
    return tokens["access_token"]


# `POST /auth/logout` ends the credential it is sent with, and
# `DELETE /me/sessions/{id}` the sign-in it names: each gets its own.
cookie, logout_cookie, spare_cookie = session(), session(), session()
token, logout_token = access_token(), access_token()
_, spare = call("GET", "/me/sessions", cookie=spare_cookie)
spare_session = next(s["id"] for s in spare["items"] if s["current"])

_, me = call("GET", "/me", token=token)
workspace = me["workspaces"][0]["id"]
_, colls = call("GET", f"/workspaces/{workspace}/collections", token=token)
collection = colls["items"][0]["id"]
_, recs = call(
    "GET", f"/workspaces/{workspace}/collections/{collection}/records", token=token
)
record = recs["items"][0]["id"]
# Role changes and removals act on a member of its own, never on the owner
# whose credentials the run uses (another owner may demote them).
_, member = call(
    "POST",
    f"/workspaces/{workspace}/service-accounts",
    {"name": "Contract member", "role": "member"},
    token=token,
)
_, team = call("POST", f"/workspaces/{workspace}/teams", {"name": "Contract team"}, token=token)
_, spare_ws = call(
    "POST",
    "/platform/workspaces",
    {"name": "Suspendable", "owner_email": EMAIL},
    token=token,
)

# A few more things to act on, so fewer operations only meet 404s.
ws_path = f"/workspaces/{workspace}"
_, secret = call(
    "POST",
    f"{ws_path}/integrations/secrets",
    {"name": "Contract secret", "value": "contract-secret-value"},
    token=token,
)
_, inbound = call(
    "POST",
    f"{ws_path}/integrations/inbound",
    {"name": "Contract inbound", "mode": "token"},
    token=token,
)
_, api_token = call(
    "POST", f"{ws_path}/tokens", {"name": "Contract token", "scope": "viewer"}, token=token
)
_, invitation = call(
    "POST",
    f"{ws_path}/invitations",
    {"email": "invitee@example.com", "role": "member"},
    token=token,
)
_, export = call("POST", f"{ws_path}/exports", {}, token=token)

env = {
    "CONTRACT_URL": url,
    "CONTRACT_ACCESS_TOKEN": token,
    "CONTRACT_SESSION_COOKIE": cookie,
    "CONTRACT_LOGOUT_TOKEN": logout_token,
    "CONTRACT_LOGOUT_COOKIE": logout_cookie,
    "CONTRACT_WORKSPACE": workspace,
    "CONTRACT_COLLECTION": collection,
    "CONTRACT_RECORD": record,
    "CONTRACT_TEAM": team["id"],
    "CONTRACT_USER": member["id"],
    "CONTRACT_SPARE_WORKSPACE": spare_ws["id"],
    "CONTRACT_SPARE_SESSION": spare_session,
    "CONTRACT_SECRET": secret["id"],
    "CONTRACT_INBOUND": inbound["id"],
    "CONTRACT_API_TOKEN": api_token["id"],
    "CONTRACT_INVITATION": invitation["id"],
    "CONTRACT_EXPORT": export["id"],
}
with open(os.path.join(work, "env"), "w", encoding="utf-8") as f:
    for k, v in env.items():
        f.write(f"export {k}='{v}'\n")
print(
    f"prepared {url}: workspace {workspace}, collection {collection}, "
    f"record {record}, team {team['id']}, spare workspace {spare_ws['id']}"
)
