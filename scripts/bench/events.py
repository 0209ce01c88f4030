"""Keeps events happening while a benchmark scenario runs: revokes a customer's tokens through
the REST API (each revocation is a tokens_revoked event written to the outbox) at a steady rate,
until stopped.

    python events.py http://127.0.0.1:PORT ADMIN_BEARER CUSTOMER_ID RATE_PER_SECOND
"""
import http.client
import sys
import time
import urllib.parse


def main():
    base, bearer, customer, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    url = urllib.parse.urlsplit(base)
    path = f"/rest/V1/integration/customer/{customer}/revoke-tokens"
    headers = {"Authorization": f"Bearer {bearer}", "Content-Length": "0"}
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    step = 1 / rate
    due = time.monotonic()
    while True:
        try:
            conn.request("POST", path, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                sys.exit(f"revoking answered {answer.status}")
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        due += step
        time.sleep(max(0, due - time.monotonic()))


if __name__ == "__main__":
    main()
