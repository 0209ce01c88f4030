"""An integrator's client built on requests-oauthlib, driven by the API tests.

It listens for the activation POST on its own local port, then runs the OAuth 1.0a handshake
(request token, access token) and calls the REST API with signed GET, POST, PUT and DELETE
requests whose query strings and form bodies carry spaces, `+`, `~`, non-ASCII text and
repeated names. It prints one JSON line with the port it listens on, then one JSON line with
every step's status and answer, and exits 0 whatever the server answered (the test judges).

Usage: client.py SERVER_URL INTEGRATION_NAME
"""

import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1Session

SERVER, NAME = sys.argv[1].rstrip("/"), sys.argv[2]
received = {}
arrived = threading.Event()


class Activation(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8")
        received.update(dict(urllib.parse.parse_qsl(body, keep_blank_values=True)))
        received["_content_type"] = self.headers.get("Content-Type", "")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        arrived.set()

    def log_message(self, *args):
        pass


listener = HTTPServer(("127.0.0.1", 0), Activation)
threading.Thread(target=listener.serve_forever, daemon=True).start()
print(json.dumps({"listening": listener.server_address[1]}), flush=True)

if not arrived.wait(60):
    print(json.dumps({"error": "no activation POST within 60 s"}), flush=True)
    sys.exit(1)

steps = []


def record(name, response):
    try:
        body = response.json()
    except ValueError:
        body = response.text
    steps.append({"step": name, "status": response.status_code, "body": body})
    return body


session = OAuth1Session(
    received["oauth_consumer_key"],
    client_secret=received["oauth_consumer_secret"],
    signature_method=SIGNATURE_HMAC_SHA256,
    callback_uri="oob",
)
request_token = session.fetch_request_token(SERVER + "/oauth/token/request")
access_token = session.fetch_access_token(
    SERVER + "/oauth/token/access", verifier=received["oauth_verifier"]
)

api = SERVER + "/rest/V1/integrations"
# Query: spaces, non-ASCII, `+` and `~` in the name, and a repeated `status`.
record("list", session.get(api, params=[("name", NAME), ("status", "1"), ("status", "0")]))
# Form body: the same characters, and repeated `resources`.
created = record(
    "create",
    session.post(
        api,
        data=[
            ("name", "Créé par Python + ~ test"),
            ("email", "python@client.example"),
            ("resources", "Magento_Sales::cancel"),
            ("resources", "Magento_Catalog::products"),
        ],
    ),
)
new_id = created.get("id") if isinstance(created, dict) else None
record("get", session.get(f"{api}/{new_id}"))
record(
    "update",
    session.put(
        f"{api}/{new_id}",
        data=[("name", "Créé par Python + ~ test"), ("all_resources", "1")],
    ),
)
record("delete", session.delete(f"{api}/{new_id}"))
# Magento's search criteria: brackets in the names (requests percent-encodes them, oauthlib
# signs them decoded), a `%` and a non-ASCII letter in a value.
record(
    "search_criteria",
    session.get(
        api,
        params=[
            ("searchCriteria[filter_groups][0][filters][0][field]", "name"),
            ("searchCriteria[filter_groups][0][filters][0][value]", "café%"),
            ("searchCriteria[filter_groups][0][filters][0][condition_type]", "like"),
            ("searchCriteria[filter_groups][0][filters][1][field]", "name"),
            ("searchCriteria[filter_groups][0][filters][1][value]", "nobody"),
            ("searchCriteria[filter_groups][1][filters][0][field]", "status"),
            ("searchCriteria[filter_groups][1][filters][0][value]", "1,2"),
            ("searchCriteria[filter_groups][1][filters][0][condition_type]", "in"),
            ("searchCriteria[sort_orders][0][field]", "created_at"),
            ("searchCriteria[sort_orders][0][direction]", "DESC"),
            ("searchCriteria[pageSize]", "10"),
            ("searchCriteria[currentPage]", "1"),
        ],
    ),
)
# The same signed request sent twice: the second is a replay.
prepared = session.prepare_request(requests.Request("GET", api, params={"status": "1"}))
record("replay_first", session.send(prepared))
record("replay_second", session.send(prepared))

print(
    json.dumps(
        {
            "activation": {
                "content_type": received["_content_type"],
                "store_base_url": received.get("store_base_url"),
                "fields": sorted(k for k in received if not k.startswith("_")),
            },
            "request_token_length": len(request_token.get("oauth_token", "")),
            "callback_confirmed": request_token.get("oauth_callback_confirmed"),
            "access_token_length": len(access_token.get("oauth_token", "")),
            "steps": steps,
        }
    ),
    flush=True,
)
listener.shutdown()
