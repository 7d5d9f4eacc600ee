//! The schema, one versioned step at a time: a step, once released, never changes.

/// Versioned schema steps, applied in order, each once. Plain, portable SQL.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: accounts, keys, resources, tags, tasks, idempotency, replay protection, address pools.
    "CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE access_keys (
        id TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        sealed_secret TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE resources (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        account_id INTEGER NOT NULL,
        region_id TEXT NOT NULL,
        id TEXT NOT NULL,
        parent_id TEXT,
        unique_key TEXT,
        status TEXT NOT NULL,
        name TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (kind, account_id, id)
    );
    CREATE INDEX resources_by_region ON resources (account_id, kind, region_id, seq);
    CREATE INDEX resources_by_parent ON resources (account_id, kind, parent_id);
    CREATE UNIQUE INDEX resources_by_unique_key ON resources (account_id, kind, region_id, unique_key);
    CREATE TABLE tags (
        account_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, resource_id, key)
    );
    CREATE INDEX tags_by_key ON tags (account_id, kind, key, value);
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        op TEXT NOT NULL,
        step INTEGER NOT NULL,
        due_ms BIGINT NOT NULL
    );
    CREATE INDEX tasks_by_due ON tasks (due_ms);
    CREATE TABLE client_tokens (
        account_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        token TEXT NOT NULL,
        params_hash TEXT NOT NULL,
        response TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (account_id, action, token)
    );
    CREATE INDEX client_tokens_by_age ON client_tokens (created_ms);
    CREATE TABLE nonces (
        access_key_id TEXT NOT NULL,
        nonce TEXT NOT NULL,
        expires_ms BIGINT NOT NULL,
        PRIMARY KEY (access_key_id, nonce)
    );
    CREATE INDEX nonces_by_expiry ON nonces (expires_ms);
    CREATE TABLE address_pools (
        pool TEXT PRIMARY KEY,
        next_idx BIGINT NOT NULL
    );
    CREATE TABLE address_leases (
        pool TEXT NOT NULL,
        idx BIGINT NOT NULL,
        owner TEXT NOT NULL,
        PRIMARY KEY (pool, idx)
    );
    CREATE INDEX address_leases_by_owner ON address_leases (owner);
    CREATE TABLE address_free (
        pool TEXT NOT NULL,
        idx BIGINT NOT NULL,
        PRIMARY KEY (pool, idx)
    );",
    // 2: live resources per account, kind and region, kept with every insert and delete so that
    // quota checks and unfiltered list totals do not count rows.
    "CREATE TABLE resource_counts (
        account_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        region_id TEXT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (account_id, kind, region_id)
    );
    INSERT INTO resource_counts (account_id, kind, region_id, n)
        SELECT account_id, kind, region_id, COUNT(*) FROM resources GROUP BY account_id, kind, region_id;",
    // 3: the keys lists find a resource by besides its columns (`Record::refs`); the kinds whose
    // stored records must have theirs computed are queued for `Tx::take_reindex`. Children by
    // status (a gateway's connections still to apply) without reading the others.
    "CREATE TABLE resource_refs (
        account_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, ref, id)
    );
    CREATE INDEX resource_refs_by_id ON resource_refs (account_id, kind, id, ref);
    CREATE INDEX resources_by_parent_status ON resources (account_id, kind, parent_id, status);
    CREATE TABLE reindex (kind TEXT PRIMARY KEY);
    INSERT INTO reindex (kind) VALUES ('VpnConnection');",
    // 4: tasks an operator asked to complete now (the control API): every step due at once.
    "ALTER TABLE tasks ADD COLUMN expedited INTEGER NOT NULL DEFAULT 0;",
    // 5: a task's lease (`Tx::claim_tasks`): the node running its step, and until when.
    "ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
     ALTER TABLE tasks ADD COLUMN lease_until_ms BIGINT;",
    // 6: gateway hosts (`Tx::host_heartbeat`); a task's host, the only one that may claim it.
    "ALTER TABLE tasks ADD COLUMN host TEXT NOT NULL DEFAULT '';
     CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        heartbeat_ms BIGINT NOT NULL,
        down_ms BIGINT
     );",
];
