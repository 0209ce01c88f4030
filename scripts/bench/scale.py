"""Loads a production-sized database for the benchmark's `scale` scenario, with bulk
statements (not the API): TOKENS handshake tokens of a filler integration (request tokens, as
integrators leave them behind, created over the last two days) and NONCES nonces of the
benchmark's own consumer (used over the last 30 hours, all older than the timestamp window, as a
busy integration leaves them). Prints how long it took and the database's size.

    python3 scripts/bench/scale.py sqlite PATH INTEGRATION FILLER_INTEGRATION TOKENS NONCES
    python3 scripts/bench/scale.py postgres URL INTEGRATION FILLER_INTEGRATION TOKENS NONCES

INTEGRATION and FILLER_INTEGRATION are integration names; their consumers get the rows.
"""

import os
import sqlite3
import subprocess
import sys
import time

kind, where, bench_name, filler_name, tokens, nonces = sys.argv[1:7]
tokens, nonces = int(tokens), int(nonces)
now = int(time.time())
started = time.time()

if kind == "sqlite":
    db = sqlite3.connect(where, timeout=60)
    db.execute("PRAGMA busy_timeout = 60000")
    consumer_of = lambda name: db.execute(
        "SELECT consumer_id FROM integration WHERE name = ?", (name,)).fetchone()[0]
    consumer, filler = consumer_of(bench_name), consumer_of(filler_name)
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        """WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
        INSERT INTO oauth_token (consumer_id, type, token_hash, token, secret, callback_url,
                                 user_type, created_at)
        SELECT ?, 'request', randomblob(32), randomblob(48), randomblob(48), 'oob', 1,
               ? - 60 - (x % 172800)
        FROM c""",
        (tokens, filler, now),
    )
    # The nonce log is in arrival order, the oldest first, numbered as the server numbers it
    # (store/nonces/sqlite.rs `next_seq`): by the microsecond of arrival, here the timestamp's
    # second and the row's place within the load.
    db.execute(
        """WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?),
        t(x, ts) AS (SELECT x, ? - 108000 + (x * 100800 / ?) FROM c)
        INSERT INTO oauth_nonce (seq, nonce, timestamp, consumer_id)
        SELECT ts * 1000000 + x, lower(hex(randomblob(16))), ts, ?
        FROM t""",
        (nonces, now, nonces, consumer),
    )
    db.execute("COMMIT")
    # The load went through the write-ahead log: move it into the database file before the
    # runs (the server's idle connections may make a checkpoint wait; try again), so that no
    # scenario pays for checkpointing a gigabyte the benchmark wrote.
    deadline = time.time() + 120
    while db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
        if time.time() > deadline:
            sys.exit("the write-ahead log could not be checkpointed within 2 minutes")
        time.sleep(0.2)
    db.close()
    size = sum(
        os.path.getsize(p) for p in (where, where + "-wal") if os.path.exists(p)
    )
elif kind == "postgres":
    quoted = lambda name: "'" + name.replace("'", "''") + "'"
    consumer = f"(SELECT consumer_id FROM integration WHERE name = {quoted(bench_name)})"
    filler = f"(SELECT consumer_id FROM integration WHERE name = {quoted(filler_name)})"
    sql = f"""
    INSERT INTO oauth_token (consumer_id, type, token_hash, token, secret, callback_url,
                             user_type, created_at)
    SELECT {filler}, 'request', sha256(('scale-token-' || x)::bytea),
           sha256(('scale-value-' || x)::bytea), sha256(('scale-secret-' || x)::bytea), 'oob', 1,
           {now} - 60 - (x % 172800)
    FROM generate_series(1, {tokens}) AS x;
    INSERT INTO oauth_nonce (nonce, timestamp, consumer_id)
    SELECT md5('scale-nonce-' || x), {now} - 108000 + (x::bigint * 100800 / {nonces}), {consumer}
    FROM generate_series(1, {nonces}) AS x;
    ANALYZE oauth_token;
    ANALYZE oauth_nonce;
    """
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", where, "-c", sql], check=True)
    size = int(
        subprocess.run(
            ["psql", "-tA", where, "-c", "SELECT pg_database_size(current_database())"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
else:
    sys.exit(f"unknown database kind {kind}")

print(f"{tokens} tokens and {nonces} nonces loaded in {time.time() - started:.0f} s; "
      f"database {size / 2**20:.0f} MiB")
