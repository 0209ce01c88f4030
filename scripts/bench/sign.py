"""Pre-signs GET requests with fresh nonces for the benchmark, as whole HTTP requests (the URL's
query, if any, signed with them).

Usage: sign.py URL CONSUMER_KEY CONSUMER_SECRET TOKEN TOKEN_SECRET COUNT OUT THREADS

Signing inside wrk is not possible (its Lua has no HMAC), so the requests are signed here,
before the run: every request carries its own random nonce, made the way oauthlib makes them
(64 random bits in digits, then the timestamp: real clients' nonces are random, and a nonce
store must not be measured on friendlier ones), all share one timestamp. Request i goes to
`OUT.<i mod THREADS>`, one file per wrk thread. A file's first line is the length of each of its
records; every record is one whole request of exactly that length (an `X-Pad` header evens out
the percent-encoded signatures), so wrk reads the next request with one buffered read and needs
no set-up time (wrk starts a thread's load before it sets up the next thread, and counts those
requests in a run whose clock starts after the last set-up). The first signature is checked
against requests-oauthlib's own (oauthlib), so the fast path here cannot drift from a real
client.
"""

import base64
import hashlib
import hmac
import random
import sys
import time
import urllib.parse

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client

url, key, secret, token, token_secret, count, out = sys.argv[1:8]
count = int(count)
ts = str(int(time.time()))


def enc(s):
    return urllib.parse.quote(s, safe="-._~")


# The URL's query is signed with the OAuth parameters (RFC 5849 3.4.1.3); the base URL without it.
split = urllib.parse.urlsplit(url)
base_url = urllib.parse.urlunsplit((split.scheme, split.netloc, split.path, "", ""))
query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)


def base_string(nonce):
    params = [
        ("oauth_consumer_key", key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA256"),
        ("oauth_timestamp", ts),
        ("oauth_token", token),
        ("oauth_version", "1.0"),
    ] + query
    normalized = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in params))
    return "&".join(["GET", enc(base_url), enc(normalized)])


signing_key = f"{enc(secret)}&{enc(token_secret)}".encode()


def sign(nonce):
    digest = hmac.new(signing_key, base_string(nonce).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# Cross-check one signature with oauthlib.
check = Client(
    key,
    client_secret=secret,
    resource_owner_key=token,
    resource_owner_secret=token_secret,
    signature_method=SIGNATURE_HMAC_SHA256,
    nonce="crosscheck0000000000000000000000",
    timestamp=ts,
)
_, headers, _ = check.sign(url)
expected = dict(
    (k.strip(), urllib.parse.unquote(v.strip('"')))
    for k, v in (p.split("=", 1) for p in headers["Authorization"][len("OAuth "):].split(","))
)["oauth_signature"]
if sign("crosscheck0000000000000000000000") != expected:
    sys.exit("the benchmark signer disagrees with oauthlib")

threads = int(sys.argv[8])
parts = urllib.parse.urlsplit(url)
prefix = (
    f'OAuth oauth_consumer_key="{key}", oauth_token="{token}", '
    f'oauth_signature_method="HMAC-SHA256", oauth_timestamp="{ts}", oauth_version="1.0", '
)


def request(i):
    # Zero-padded: every request of a file has the same length.
    nonce = f"{random.getrandbits(64):020d}{ts}"
    authorization = prefix + f'oauth_nonce="{nonce}", oauth_signature="{enc(sign(nonce))}"'
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: {authorization}\r\n")


# The padding header and the blank line that ends a request.
PAD, END = "X-Pad: ", "\r\n\r\n"
# A signature encodes to at most 3 × 44 characters, 2 × 44 more than request(0) may hold.
size = len(request(0)) + 2 * 44 + len(PAD + END)
files = [open(f"{out}.{t}", "w", newline="") for t in range(threads)]
for f in files:
    f.write(f"{size}\n")
for i in range(count):
    head = request(i)
    files[i % threads].write(head + PAD + "p" * (size - len(head) - len(PAD + END)) + END)
for f in files:
    f.close()
