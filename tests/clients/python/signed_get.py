"""One signed GET with credentials an integrator already holds, through requests-oauthlib
(HMAC-SHA256, as Magento 2.4.4+ requires), the way a client keeps calling after its store moved.

Usage: signed_get.py URL CONSUMER_KEY CONSUMER_SECRET ACCESS_TOKEN TOKEN_SECRET
Prints one JSON line: {"status": ..., "body": ...}; exits 0 whatever the server answered.
"""
import json
import sys

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1Session

url, key, secret, token, token_secret = sys.argv[1:6]
session = OAuth1Session(
    key,
    client_secret=secret,
    resource_owner_key=token,
    resource_owner_secret=token_secret,
    signature_method=SIGNATURE_HMAC_SHA256,
)
answer = session.get(url)
try:
    body = answer.json()
except ValueError:
    body = answer.text
print(json.dumps({"status": answer.status_code, "body": body}))
