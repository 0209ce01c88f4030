"""Loads many integrations for the benchmark's `signed_list` scenario, with bulk statements (not
the API): COUNT integrations named `Listed 00000`, `Listed 00001`, … (five digits at least),
each with its own consumer and an ACL role granting Magento_Sales::sales (and its ancestor), all
inactive, created a second apart over the last COUNT seconds. Prints how long it took.

    python3 scripts/bench/integrations.py sqlite PATH COUNT
    python3 scripts/bench/integrations.py postgres URL COUNT
"""

import sqlite3
import subprocess
import sys
import time

kind, where, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = int(time.time())
started = time.time()
digits = max(5, len(str(count - 1)))

if kind == "sqlite":
    db = sqlite3.connect(where, timeout=60)
    db.execute("PRAGMA busy_timeout = 60000")
    db.execute("BEGIN IMMEDIATE")
    series = "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ? - 1)"
    name = f"'Listed ' || printf('%0{digits}d', x)"
    db.execute(
        f"""{series}
        INSERT INTO oauth_consumer (name, "key", secret, callback_url, rejected_callback_url,
                                    created_at, updated_at)
        SELECT 'Integration ' || {name}, printf('listed%026d', x), randomblob(48), NULL, '',
               ? - ? + x, ? - ? + x
        FROM c""",
        (count, now, count, now, count),
    )
    db.execute(
        f"""{series}
        INSERT INTO integration (name, email, endpoint, identity_link_url, status, consumer_id,
                                 setup_type, config_hash, created_at, updated_at)
        SELECT {name}, 'listed' || x || '@bench.example', '', '', 0,
               (SELECT id FROM oauth_consumer WHERE "key" = printf('listed%026d', x)), 0, '',
               ? - ? + x, ? - ? + x
        FROM c""",
        (count, now, count, now, count),
    )
    db.execute(
        """INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
        SELECT NULL, 'U', id, 1, CAST(id AS TEXT) FROM integration WHERE name LIKE 'Listed %'"""
    )
    for resource in ("Magento_Backend::admin", "Magento_Sales::sales"):
        db.execute(
            """INSERT INTO authorization_rule (role_id, resource_id, permission)
            SELECT r.id, ?, 'allow' FROM authorization_role r
            JOIN integration i ON i.id = r.user_id AND r.user_type = 1
            WHERE i.name LIKE 'Listed %'""",
            (resource,),
        )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    deadline = time.time() + 120
    while db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0:
        if time.time() > deadline:
            sys.exit("the write-ahead log could not be checkpointed within 2 minutes")
        time.sleep(0.2)
    db.close()
elif kind == "postgres":
    name = f"'Listed ' || lpad(x::text, {digits}, '0')"
    sql = f"""
    INSERT INTO oauth_consumer (name, "key", secret, callback_url, rejected_callback_url,
                                created_at, updated_at)
    SELECT 'Integration ' || {name}, 'listed' || lpad(x::text, 26, '0'), sha256(('listed-' || x)::bytea),
           NULL, '', {now} - {count} + x, {now} - {count} + x
    FROM generate_series(0, {count} - 1) AS x;
    INSERT INTO integration (name, email, endpoint, identity_link_url, status, consumer_id,
                             setup_type, config_hash, created_at, updated_at)
    SELECT {name}, 'listed' || x || '@bench.example', '', '', 0, c.id, 0, '',
           {now} - {count} + x, {now} - {count} + x
    FROM generate_series(0, {count} - 1) AS x
    JOIN oauth_consumer c ON c."key" = 'listed' || lpad(x::text, 26, '0');
    INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
    SELECT NULL, 'U', id, 1, id::text FROM integration WHERE name LIKE 'Listed %';
    INSERT INTO authorization_rule (role_id, resource_id, permission)
    SELECT r.id, v.resource, 'allow'
    FROM authorization_role r
    JOIN integration i ON i.id = r.user_id AND r.user_type = 1
    CROSS JOIN (VALUES ('Magento_Backend::admin'), ('Magento_Sales::sales')) AS v(resource)
    WHERE i.name LIKE 'Listed %';
    ANALYZE oauth_consumer;
    ANALYZE integration;
    ANALYZE authorization_role;
    ANALYZE authorization_rule;
    """
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", where, "-c", sql], check=True)
else:
    sys.exit(f"unknown database kind {kind}")

print(f"{count} integrations loaded in {time.time() - started:.1f} s")
