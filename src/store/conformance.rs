//! The store's conformance suite: what every engine must do, run against each one. SQLite always;
//! PostgreSQL when `GATEHOUSE_TEST_DATABASE_URL` names a database (each test in a schema of its
//! own, dropped after), and `GATEHOUSE_REQUIRE_POSTGRES=1` makes its absence a failure.

use std::sync::Arc;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::*;

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A database under test: `open` opens it (again, for a restart); dropping it removes it.
struct Engine {
    open: Box<dyn Fn() -> Arc<dyn Store> + Send + Sync>,
    remove: Option<Box<dyn FnOnce() + Send>>,
    /// PostgreSQL: the database's URL, and the application name its connections carry.
    postgres: Option<(String, String)>,
}

impl Engine {
    fn store(&self) -> Arc<dyn Store> {
        (self.open)()
    }

    fn sqlite() -> Engine {
        let dir = temp_dir();
        let at = dir.clone();
        Engine {
            open: Box::new(move || Arc::new(SqliteStore::open(&at).unwrap())),
            remove: Some(Box::new(move || drop(std::fs::remove_dir_all(dir)))),
            postgres: None,
        }
    }

    fn postgres() -> Option<Engine> {
        let Some(url) = std::env::var("GATEHOUSE_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            assert!(
                std::env::var("GATEHOUSE_REQUIRE_POSTGRES").is_err(),
                "GATEHOUSE_REQUIRE_POSTGRES is set but GATEHOUSE_TEST_DATABASE_URL is not"
            );
            eprintln!("PostgreSQL conformance skipped: GATEHOUSE_TEST_DATABASE_URL is not set");
            return None;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = move |sql: String, url: String| {
            // On a thread of its own: the synchronous client cannot run inside the test's runtime.
            std::thread::spawn(move || super::postgres::admin(&url, &sql).unwrap()).join().unwrap()
        };
        admin(format!("CREATE SCHEMA {schema}"), url.clone());
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.options(format!("-c search_path={schema}")).application_name(&schema);
        let (drop_url, drop_schema) = (url.clone(), schema.clone());
        Some(Engine {
            open: Box::new(move || Arc::new(PgStore::open_config(config.clone(), true).unwrap())),
            remove: Some(Box::new(move || admin(format!("DROP SCHEMA {drop_schema} CASCADE"), drop_url))),
            postgres: Some((url, schema)),
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(remove) = self.remove.take() {
            remove();
        }
    }
}

/// Runs each named test (`async fn name(e: &Engine)`) once per engine: `name::sqlite`,
/// `name::postgres`.
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(&super::Engine::sqlite()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(engine) = super::Engine::postgres() {
                    super::$name(&engine).await;
                }
            }
        }
    )*};
}

on_every_engine!(
    lists_find_records_by_their_refs,
    lists_page_newest_first_and_counts_follow_inserts_and_deletes,
    a_failed_write_rolls_back_alone,
    tags_filter_and_go_with_their_resource,
    nonces_addresses_tokens_and_tasks_survive_a_reopen,
    dropping_one_accounts_resources_keeps_the_others,
    a_task_is_leased_to_one_node_until_its_lease_runs_out,
    concurrent_checks_and_their_changes_stay_atomic,
    accounts_and_keys_are_kept,
    pages_carry_their_tags_and_total,
    a_hosts_tasks_go_to_it_alone,
    a_host_name_is_held_by_one_live_node,
);

fn rec(id: &str, region: &str, parent: &str, unique: Option<&str>) -> Record {
    Record {
        kind: "Thing",
        account_id: 1,
        region_id: region.into(),
        id: id.into(),
        parent_id: Some(parent.into()),
        unique_key: unique.map(str::to_string),
        status: "active".into(),
        name: id.into(),
        created_ms: 0,
        body: "{}".into(),
        refs: vec![format!("in:{parent}")],
    }
}

/// Accounts 1 and 2 (`a1`, `a2`), and keys of account 1 (id, enabled).
async fn keys(store: &Arc<dyn Store>, keys: &[(&str, bool)]) {
    let keys: Vec<(String, bool)> = keys.iter().map(|(k, e)| (k.to_string(), *e)).collect();
    store
        .write(move |tx| {
            let a = tx.create_account("a1", 0)?;
            tx.create_account("a2", 0)?;
            for (id, enabled) in &keys {
                tx.insert_key(&AccessKeyRow {
                    id: id.clone(),
                    account_id: a.id,
                    account_name: a.name.clone(),
                    sealed_secret: String::new(),
                    enabled: *enabled,
                    created_ms: 0,
                })?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Spends a nonce the way a request does.
async fn spend(store: &Arc<dyn Store>, key: &str, nonce: &str) -> NonceSpend {
    store.spend_nonce(Nonce { access_key_id: key.into(), nonce: nonce.into(), expires_ms: 1_000 }).await.unwrap()
}

fn q(region: &str) -> ListQuery {
    ListQuery { kind: "Thing", account_id: 1, region_id: Some(region.into()), ..Default::default() }
}

async fn lists_find_records_by_their_refs(e: &Engine) {
    let store = e.store();
    store
        .write(|tx| {
            tx.insert(&rec("a", "r1", "p", None))?;
            tx.insert(&rec("b", "r1", "q", None))?;
            tx.insert(&Record { refs: vec!["in:p".into(), "in:q".into()], ..rec("c", "r1", "x", None) })
        })
        .await
        .unwrap();
    let ids = |store: &Arc<dyn Store>, r: &str| -> Vec<String> {
        let query = ListQuery { refers_to: vec![r.into()], ..q("r1") };
        let mut ids: Vec<String> = store.read(|tx| tx.list(&query)).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(store.read(|tx| tx.count(&query)).unwrap(), ids.len() as u64);
        ids.sort();
        ids
    };
    assert_eq!(ids(&store, "in:p"), ["a", "c"]);
    assert_eq!(ids(&store, "in:q"), ["b", "c"]);
    let any = ListQuery { refers_to: vec!["in:p".into(), "in:q".into()], ..q("r1") };
    assert_eq!(store.read(|tx| tx.count(&any)).unwrap(), 3, "any of several refs, each record once");
    // An update replaces the refs; a delete drops them.
    store.write(|tx| tx.update(&Record { refs: vec!["in:z".into()], ..rec("c", "r1", "x", None) })).await.unwrap();
    assert_eq!(ids(&store, "in:p"), ["a"]);
    assert_eq!(ids(&store, "in:z"), ["c"]);
    store.write(|tx| tx.delete("Thing", 1, "c")).await.unwrap();
    assert!(ids(&store, "in:z").is_empty());
}

async fn lists_page_newest_first_and_counts_follow_inserts_and_deletes(e: &Engine) {
    let store = e.store();
    store
        .write(|tx| {
            for i in 0..25 {
                tx.insert(&rec(&format!("t{i:02}"), "r1", if i % 2 == 0 { "even" } else { "odd" }, None))?;
            }
            tx.insert(&rec("other", "r2", "even", None))
        })
        .await
        .unwrap();
    let page: Vec<String> = store
        .read(|tx| tx.list(&ListQuery { offset: 10, limit: Some(10), ..q("r1") }))
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page, (5..15).rev().map(|i| format!("t{i:02}")).collect::<Vec<_>>());
    assert_eq!(store.read(|tx| tx.count(&q("r1"))).unwrap(), 25);
    assert_eq!(store.read(|tx| tx.count(&ListQuery { parent_id: Some("even".into()), ..q("r1") })).unwrap(), 13);
    store.write(|tx| tx.delete("Thing", 1, "t00")).await.unwrap();
    assert_eq!(store.read(|tx| tx.count(&q("r1"))).unwrap(), 24);
    assert_eq!(store.read(|tx| tx.count(&q("r2"))).unwrap(), 1);
    // Another account sees nothing.
    assert_eq!(store.read(|tx| tx.count(&ListQuery { account_id: 2, ..q("r1") })).unwrap(), 0);
    assert!(store.read(|tx| tx.get("Thing", 2, "t01")).unwrap().is_none());
}

async fn a_failed_write_rolls_back_alone(e: &Engine) {
    let store = e.store();
    // Queue both before awaiting either, so they share one group commit.
    let good = store.write(|tx| tx.insert(&rec("a", "r1", "p", None)));
    let bad = store.write(|tx| {
        tx.insert(&rec("b", "r1", "p", None))?;
        Err::<(), _>(ApiError::bad_request("Nope", "refused after writing"))
    });
    let panics = store.write(|tx| -> ApiResult<()> {
        tx.insert(&rec("c", "r1", "p", None))?;
        panic!("a bug in a write");
    });
    assert!(good.await.is_ok());
    assert_eq!(bad.await.unwrap_err().code, "Nope");
    assert_eq!(panics.await.unwrap_err().code, "InternalError");
    let ids: Vec<String> = store.read(|tx| tx.list(&q("r1"))).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["a"]);
    assert_eq!(store.read(|tx| tx.count(&q("r1"))).unwrap(), 1);
}

async fn tags_filter_and_go_with_their_resource(e: &Engine) {
    let store = e.store();
    store
        .write(|tx| {
            tx.insert(&rec("a", "r1", "p", None))?;
            tx.insert(&rec("b", "r1", "p", None))?;
            for (id, k, v) in [("a", "env", "prod"), ("a", "team", "x"), ("b", "env", "dev")] {
                let b = TagBinding { kind: "Thing".into(), resource_id: id.into(), key: k.into(), value: v.into() };
                tx.set_tag(&b, 1)?;
            }
            // Re-binding a key overwrites its value.
            let b = TagBinding { kind: "Thing".into(), resource_id: "a".into(), key: "team".into(), value: "y".into() };
            tx.set_tag(&b, 1)
        })
        .await
        .unwrap();
    let tagged = |tags: Vec<(&str, Option<&str>)>| -> Vec<String> {
        let tags: Vec<_> = tags.into_iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect();
        store
            .read(|tx| tx.list(&ListQuery { tags: tags.clone(), ..q("r1") }))
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(tagged(vec![("env", None)]), vec!["b", "a"]);
    assert_eq!(tagged(vec![("env", Some("prod")), ("team", Some("y"))]), vec!["a"]);
    assert!(tagged(vec![("env", Some("prod")), ("team", Some("x"))]).is_empty());
    store.write(|tx| tx.delete("Thing", 1, "a")).await.unwrap();
    let left = store.read(|tx| tx.tags_of("Thing", 1, &["a".into(), "b".into()])).unwrap();
    assert_eq!(left.get("a"), None);
    assert_eq!(left["b"], vec![("env".to_string(), "dev".to_string())]);
}

async fn nonces_addresses_tokens_and_tasks_survive_a_reopen(e: &Engine) {
    {
        let store = e.store();
        keys(&store, &[("k", true), ("other-key", true), ("off", false)]).await;
        assert_eq!(spend(&store, "k", "n1").await, NonceSpend::Spent);
        assert_eq!(spend(&store, "k", "n1").await, NonceSpend::Replayed);
        assert_eq!(spend(&store, "other-key", "n1").await, NonceSpend::Spent);
        assert_eq!(spend(&store, "off", "n2").await, NonceSpend::KeyDisabled);
        assert_eq!(spend(&store, "unknown", "n2").await, NonceSpend::KeyDisabled);
        // Inside a write, as part of a transaction: the same nonces.
        let in_write = store
            .write_with(Durability::Process, |tx| {
                Ok((tx.spend_nonce("k", "n1", 1_000)?, tx.spend_nonce("k", "n3", 1_000)?))
            })
            .await
            .unwrap();
        assert_eq!(in_write, (NonceSpend::Replayed, NonceSpend::Spent));
        assert_eq!(spend(&store, "k", "n3").await, NonceSpend::Replayed);
        // The same nonce many times at once (an engine may carry them together): spent once.
        let at_once = futures_util::future::join_all((0..20).map(|_| spend(&store, "k", "n4"))).await;
        assert_eq!(at_once.iter().filter(|s| **s == NonceSpend::Spent).count(), 1, "{at_once:?}");
        assert!(at_once.iter().all(|s| matches!(s, NonceSpend::Spent | NonceSpend::Replayed)));
        let got = store
            .write(|tx| {
                let a = tx.allocate_address("pool", 3, "x")?;
                let b = tx.allocate_address("pool", 3, "y")?;
                let c = tx.allocate_address("pool", 3, "y")?;
                let full = tx.allocate_address("pool", 3, "z")?;
                tx.release_addresses("x")?;
                let reused = tx.allocate_address("pool", 3, "z")?;
                Ok((a, b, c, full, reused))
            })
            .await
            .unwrap();
        assert_eq!(got, (Some(0), Some(1), Some(2), None, Some(0)));
        let answer = IdempotentAnswer { params_hash: "h".into(), response: "{}".into() };
        store.write(move |tx| tx.remember_answer(1, "Create", "tok", &answer, now_ms())).await.unwrap();
        store.write(|tx| tx.add_task(1, "Thing", "a", "create", 5, "")).await.unwrap();
    }
    let store = e.store();
    assert_eq!(spend(&store, "k", "n1").await, NonceSpend::Replayed);
    assert_eq!(store.read(|tx| tx.idempotent_answer(1, "Create", "tok")).unwrap().unwrap().params_hash, "h");
    assert!(store.write(|tx| tx.claim_tasks("n", "", 4, 100, 10)).await.unwrap().is_empty(), "not due yet");
    let tasks = store.write(|tx| tx.claim_tasks("n", "", 10, 100, 10)).await.unwrap();
    assert_eq!(tasks.len(), 1);
    let task = tasks[0].clone();
    store.write(move |tx| tx.advance_task(&task, 1, 20)).await.unwrap();
    assert_eq!(store.read(|tx| tx.next_due_ms("")).unwrap(), Some(20));
    let task = store.write(|tx| tx.claim_tasks("n", "", 20, 100, 10)).await.unwrap().remove(0);
    assert_eq!(task.step, 1);
    store.write(move |tx| tx.finish_task(&task)).await.unwrap();
    assert_eq!(store.read(|tx| tx.next_due_ms("")).unwrap(), None);
    // Expired nonces and old tokens go; the nonce can then be used again.
    store.write(|tx| tx.purge_expired(i64::MAX / 2, 0)).await.unwrap();
    assert_eq!(spend(&store, "k", "n1").await, NonceSpend::Spent);
    assert!(store.read(|tx| tx.idempotent_answer(1, "Create", "tok")).unwrap().is_none());
}

async fn dropping_one_accounts_resources_keeps_the_others(e: &Engine) {
    let store = e.store();
    let other = |r: Record| Record { account_id: 2, ..r };
    store
        .write(move |tx| {
            tx.insert(&rec("a", "r1", "p", None))?;
            tx.insert(&other(rec("b", "r1", "p", None)))?;
            tx.set_tag(
                &TagBinding { kind: "Thing".into(), resource_id: "a".into(), key: "k".into(), value: "v".into() },
                1,
            )?;
            tx.add_task(1, "Thing", "a", "create", 10, "")?;
            tx.add_task(2, "Thing", "b", "create", 10, "")
        })
        .await
        .unwrap();
    let dropped = store.write(|tx| tx.drop_resources(Some(1))).await.unwrap();
    assert_eq!(dropped, [Dropped { account_id: 1, kind: "Thing".into(), id: "a".into() }]);
    let left = |account_id| ListQuery { kind: "Thing", account_id, ..Default::default() };
    assert_eq!(store.read(|tx| tx.count(&left(1))).unwrap(), 0, "the account's count follows");
    assert_eq!(store.read(|tx| tx.count(&left(2))).unwrap(), 1);
    assert!(store.read(|tx| tx.tags_of("Thing", 1, &["a".into()])).unwrap().is_empty());
    let tasks = store.write(|tx| tx.claim_tasks("n", "", 100, 100, 10)).await.unwrap();
    assert_eq!(tasks.iter().map(|t| t.account_id).collect::<Vec<_>>(), [2]);
    store.write(|tx| tx.release_leases()).await.unwrap();
    // Expediting makes the rest due now and marks them.
    store.write(|tx| tx.add_task(2, "Thing", "c", "create", i64::MAX / 2, "")).await.unwrap();
    assert_eq!(store.write(|tx| tx.expedite_tasks(Some(2), 50)).await.unwrap(), 2);
    let stats = store.read(|tx| tx.task_stats(50)).unwrap();
    assert_eq!(stats, TaskStats { queued: 2, due: 2, oldest_due_ms: Some(10) });
    let tasks = store.write(|tx| tx.claim_tasks("n", "", 50, 100, 10)).await.unwrap();
    assert!(tasks.len() == 2 && tasks.iter().all(|t| t.expedited && t.due_ms <= 50));
    assert_eq!(store.read(|tx| tx.resource_statuses()).unwrap(), [("Thing".to_string(), "active".to_string(), 1)]);
    assert_eq!(store.write(|tx| tx.drop_resources(None)).await.unwrap().len(), 1);
}

async fn a_task_is_leased_to_one_node_until_its_lease_runs_out(e: &Engine) {
    let store = e.store();
    store.write(|tx| tx.add_task(1, "Thing", "a", "create", 10, "")).await.unwrap();
    let a = store.write(|tx| tx.claim_tasks("a", "", 10, 1_000, 10)).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(store.write(|tx| tx.claim_tasks("b", "", 500, 1_500, 10)).await.unwrap().is_empty(), "held by a");
    assert_eq!(store.read(|tx| tx.next_due_ms("")).unwrap(), Some(1_000), "claimable when the lease ends");
    // a's lease ran out (its node presumed dead): b takes the task over...
    let b = store.write(|tx| tx.claim_tasks("b", "", 1_001, 2_000, 10)).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].node, "b");
    // ...and a's late step is refused and rolled back, while b's goes through.
    let (late, task) = (a[0].clone(), b[0].clone());
    let refused = store
        .write(move |tx| {
            tx.insert(&rec("x", "r1", "p", None))?;
            tx.advance_task(&late, 1, 5)
        })
        .await;
    assert_eq!(refused.unwrap_err().code, "ServiceUnavailable");
    assert!(store.read(|tx| tx.get("Thing", 1, "x")).unwrap().is_none(), "the late step's change was rolled back");
    store.write(move |tx| tx.finish_task(&task)).await.unwrap();
    assert_eq!(store.read(|tx| tx.next_due_ms("")).unwrap(), None);
}

/// A check and the change it guards, from many writers on two stores (two nodes) at once: the
/// quota holds exactly.
async fn concurrent_checks_and_their_changes_stay_atomic(e: &Engine) {
    const QUOTA: u64 = 5;
    let nodes = [e.store(), e.store()];
    let writes: Vec<_> = (0..40)
        .map(|i| {
            let store = nodes[i % 2].clone();
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        if tx.count(&q("r1"))? >= QUOTA {
                            return Err(ApiError::bad_request("QuotaFull", "full"));
                        }
                        tx.insert(&rec(&format!("t{i}"), "r1", "p", None))
                    })
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for w in writes {
        match w.await.unwrap() {
            Ok(()) => created += 1,
            Err(e) => assert_eq!(e.code, "QuotaFull", "{e}"),
        }
    }
    assert_eq!(created, QUOTA);
    for store in &nodes {
        assert_eq!(store.read(|tx| tx.count(&q("r1"))).unwrap(), QUOTA);
        assert_eq!(store.read(|tx| tx.list(&q("r1"))).unwrap().len() as u64, QUOTA);
    }
}

async fn accounts_and_keys_are_kept(e: &Engine) {
    let store = e.store();
    let acct = store.write(|tx| tx.create_account("alice", 7)).await.unwrap();
    assert_eq!(store.read(|tx| tx.account_by_name("alice")).unwrap(), Some(acct.clone()));
    let key = AccessKeyRow {
        id: "LTAIkey".into(),
        account_id: acct.id,
        account_name: "alice".into(),
        sealed_secret: "sealed".into(),
        enabled: true,
        created_ms: 8,
    };
    let k = key.clone();
    store.write(move |tx| tx.insert_key(&k)).await.unwrap();
    assert_eq!(store.read(|tx| tx.key("LTAIkey")).unwrap(), Some(key.clone()));
    assert!(store.write(|tx| tx.set_key_enabled("LTAIkey", false)).await.unwrap());
    assert!(!store.write(|tx| tx.set_key_enabled("nope", false)).await.unwrap());
    assert_eq!(store.read(|tx| tx.keys()).unwrap(), [AccessKeyRow { enabled: false, ..key }]);
    // A second account of the same name is refused by the database itself.
    assert!(store.write(|tx| tx.create_account("alice", 9)).await.is_err());
    assert_eq!(store.read(|tx| tx.accounts()).unwrap(), [acct]);
}

async fn pages_carry_their_tags_and_total(e: &Engine) {
    let store = e.store();
    store
        .write(|tx| {
            for id in ["a", "b", "c"] {
                tx.insert(&rec(id, "r1", "p", None))?;
            }
            for (id, k, v) in [("c", "z", "1"), ("c", "env", "prod"), ("a", "env", "dev")] {
                let b = TagBinding { kind: "Thing".into(), resource_id: id.into(), key: k.into(), value: v.into() };
                tx.set_tag(&b, 1)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let page = |offset, tags, filter: Option<&str>| {
        let q = ListQuery { offset, limit: Some(2), parent_id: filter.map(str::to_string), ..q("r1") };
        store.read(|tx| tx.page(&q, tags)).unwrap()
    };
    let first = page(0, true, None);
    assert_eq!(first.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["c", "b"]);
    assert_eq!(first.total, 3);
    let by_key = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(first.tags["c"], by_key(&[("env", "prod"), ("z", "1")]), "by key");
    assert!(!first.tags.contains_key("b"), "no tags, no entry");
    let second = page(2, true, Some("p"));
    assert_eq!((second.records.len(), second.total), (1, 3));
    assert_eq!(second.tags["a"], by_key(&[("env", "dev")]));
    assert!(page(0, false, None).tags.is_empty(), "tags only when asked");
    let none = page(0, true, Some("elsewhere"));
    assert_eq!((none.records.len(), none.total), (0, 0));
    // Past the end: no records, the total all the same.
    assert_eq!((page(4, true, None).records.len(), page(4, true, None).total), (0, 3));
    assert_eq!((page(4, false, Some("p")).records.len(), page(4, false, Some("p")).total), (0, 3));
    // A read goes on after a page with other statements.
    let (total, listed) = store
        .read(|tx| {
            let page = tx.page(&ListQuery { limit: Some(1), ..q("r1") }, true)?;
            Ok((page.total, tx.list(&ListQuery { parent_id: Some("p".into()), ..q("r1") })?.len()))
        })
        .unwrap();
    assert_eq!((total, listed), (3, 3));
}

/// PostgreSQL: a read's COMMIT goes out with the connection's next statement, and an idle
/// connection's soon after: no read's snapshot is held for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_read_connection_holds_no_snapshot() {
    let Some(engine) = Engine::postgres() else { return };
    let (url, app) = engine.postgres.clone().unwrap();
    let store = engine.store();
    store.read(|tx| tx.list(&q("r1"))).unwrap();
    let held = || {
        let (url, app) = (url.clone(), app.clone());
        let check = format!(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '{app}' \
             AND state = 'idle in transaction') THEN RAISE EXCEPTION 'held'; END IF; END $$"
        );
        std::thread::spawn(move || super::postgres::admin(&url, &check).is_err()).join().unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while held() {
        assert!(std::time::Instant::now() < deadline, "an idle read connection still holds its transaction");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn a_hosts_tasks_go_to_it_alone(e: &Engine) {
    let store = e.store();
    store
        .write(|tx| {
            tx.add_task(1, "Thing", "a", "create", 10, "h1")?;
            tx.add_task(1, "Thing", "b", "create", 20, "h2")?;
            tx.add_task(1, "Thing", "c", "create", 30, "")
        })
        .await
        .unwrap();
    assert_eq!(store.read(|tx| tx.next_due_ms("h2")).unwrap(), Some(20), "h1's task is not h2's");
    assert_eq!(store.read(|tx| tx.next_due_ms("")).unwrap(), Some(30), "a node of no host sees host-less tasks");
    let ids = |tasks: Vec<Task>| tasks.into_iter().map(|t| t.resource_id).collect::<Vec<_>>();
    let h2 = store.write(|tx| tx.claim_tasks("n2", "h2", 100, 1_000, 10)).await.unwrap();
    assert_eq!(ids(h2), ["b", "c"]);
    // Moving a's task to h2 hands it over.
    store.write(|tx| tx.move_tasks(&["a".to_string()], "h2")).await.unwrap();
    assert!(store.write(|tx| tx.claim_tasks("n1", "h1", 100, 1_000, 10)).await.unwrap().is_empty());
    assert_eq!(ids(store.write(|tx| tx.claim_tasks("n2", "h2", 100, 1_000, 10)).await.unwrap()), ["a"]);
}

async fn a_host_name_is_held_by_one_live_node(e: &Engine) {
    let store = e.store();
    let beat = |node: &'static str, now: i64| {
        let store = store.clone();
        async move { store.write(move |tx| tx.host_heartbeat("h", node, now, now - 100)).await.unwrap() }
    };
    assert_eq!(beat("n1", 1_000).await, Heartbeat::Renewed);
    assert_eq!(beat("n1", 1_050).await, Heartbeat::Renewed);
    assert_eq!(beat("n2", 1_100).await, Heartbeat::Taken, "n1 is live");
    // Silent past the lease: down, once; n2 then takes the name over, and n1's next beat finds
    // the name taken.
    assert!(!store.write(|tx| tx.mark_host_down("h", 1_000, 1_100)).await.unwrap(), "not stale yet");
    assert!(store.write(|tx| tx.mark_host_down("h", 1_100, 1_200)).await.unwrap());
    assert!(!store.write(|tx| tx.mark_host_down("h", 1_100, 1_300)).await.unwrap(), "marked once");
    let hosts = store.read(|tx| tx.hosts()).unwrap();
    assert_eq!(hosts, [HostRow { name: "h".into(), node: "n1".into(), heartbeat_ms: 1_050, down_ms: Some(1_200) }]);
    assert_eq!(beat("n2", 1_300).await, Heartbeat::Revived, "the name comes back up, marked down before");
    assert_eq!(beat("n1", 1_350).await, Heartbeat::Taken);
    assert_eq!(store.read(|tx| tx.hosts()).unwrap()[0].down_ms, None);
}
