//! PostgreSQL's schema, one versioned step at a time (a step, once released, never changes). It
//! holds what SQLite's steps hold; the steps themselves are this engine's own.

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: accounts, keys, resources (with their refs and live counts), tags, tasks (with leases),
    // idempotency, replay protection, address pools.
    "CREATE TABLE accounts (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE access_keys (
        id TEXT PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id),
        sealed_secret TEXT NOT NULL,
        enabled BOOLEAN NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE resources (
        seq BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        account_id BIGINT NOT NULL,
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
    CREATE INDEX resources_by_parent_status ON resources (account_id, kind, parent_id, status);
    CREATE UNIQUE INDEX resources_by_unique_key ON resources (account_id, kind, region_id, unique_key);
    CREATE TABLE resource_counts (
        account_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        region_id TEXT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (account_id, kind, region_id)
    );
    CREATE TABLE resource_refs (
        account_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        ref TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, ref, id)
    );
    CREATE INDEX resource_refs_by_id ON resource_refs (account_id, kind, id, ref);
    CREATE TABLE reindex (kind TEXT PRIMARY KEY);
    CREATE TABLE tags (
        account_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, resource_id, key)
    );
    CREATE INDEX tags_by_key ON tags (account_id, kind, key, value);
    CREATE TABLE tasks (
        id BIGSERIAL PRIMARY KEY,
        account_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        op TEXT NOT NULL,
        step BIGINT NOT NULL,
        due_ms BIGINT NOT NULL,
        expedited BOOLEAN NOT NULL DEFAULT FALSE,
        lease_owner TEXT,
        lease_until_ms BIGINT
    );
    CREATE INDEX tasks_by_due ON tasks (due_ms);
    CREATE TABLE client_tokens (
        account_id BIGINT NOT NULL,
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
    // 2: gateway hosts (`Tx::host_heartbeat`); a task's host, the only one that may claim it.
    "ALTER TABLE tasks ADD COLUMN host TEXT NOT NULL DEFAULT '';
     CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        heartbeat_ms BIGINT NOT NULL,
        down_ms BIGINT
     );",
];
