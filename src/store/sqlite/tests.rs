//! Unit tests of the SQLite store.

use super::*;
use std::sync::Arc;

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gh-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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

#[tokio::test]
async fn lists_find_records_by_their_refs() {
    let dir = temp_dir();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
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
    std::fs::remove_dir_all(dir).unwrap();
}

fn q(region: &str) -> ListQuery {
    ListQuery { kind: "Thing", account_id: 1, region_id: Some(region.into()), ..Default::default() }
}

#[tokio::test]
async fn lists_page_newest_first_and_counts_follow_inserts_and_deletes() {
    let dir = temp_dir();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
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
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_failed_write_rolls_back_alone() {
    let dir = temp_dir();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
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
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn tags_filter_and_go_with_their_resource() {
    let dir = temp_dir();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
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
        let tags = tags.into_iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect();
        store.read(|tx| tx.list(&ListQuery { tags, ..q("r1") })).unwrap().into_iter().map(|r| r.id).collect()
    };
    assert_eq!(tagged(vec![("env", None)]), vec!["b", "a"]);
    assert_eq!(tagged(vec![("env", Some("prod")), ("team", Some("y"))]), vec!["a"]);
    assert!(tagged(vec![("env", Some("prod")), ("team", Some("x"))]).is_empty());
    store.write(|tx| tx.delete("Thing", 1, "a")).await.unwrap();
    let left = store.read(|tx| tx.tags_of("Thing", 1, &["a".into(), "b".into()])).unwrap();
    assert_eq!(left.get("a"), None);
    assert_eq!(left["b"], vec![("env".to_string(), "dev".to_string())]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn nonces_addresses_tokens_and_tasks_survive_a_reopen() {
    let dir = temp_dir();
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
        assert!(store.write(|tx| tx.use_nonce("k", "n1", 1_000)).await.unwrap());
        assert!(!store.write(|tx| tx.use_nonce("k", "n1", 1_000)).await.unwrap());
        assert!(store.write(|tx| tx.use_nonce("other-key", "n1", 1_000)).await.unwrap());
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
        store.write(|tx| tx.add_task(1, "Thing", "a", "create", 5)).await.unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
    assert!(!store.write(|tx| tx.use_nonce("k", "n1", 1_000)).await.unwrap());
    assert_eq!(store.read(|tx| tx.idempotent_answer(1, "Create", "tok")).unwrap().unwrap().params_hash, "h");
    let tasks = store.read(|tx| tx.due_tasks(10, 10)).unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(store.read(|tx| tx.due_tasks(4, 10)).unwrap().is_empty());
    let id = tasks[0].id;
    store.write(move |tx| tx.advance_task(id, 1, 20)).await.unwrap();
    assert_eq!(store.read(|tx| tx.next_due_ms()).unwrap(), Some(20));
    store.write(move |tx| tx.finish_task(id)).await.unwrap();
    assert_eq!(store.read(|tx| tx.next_due_ms()).unwrap(), None);
    // Expired nonces and old tokens go; the nonce can then be used again.
    store.write(|tx| tx.purge_expired(i64::MAX / 2, 0)).await.unwrap();
    assert!(store.write(|tx| tx.use_nonce("k", "n1", 0)).await.unwrap());
    assert!(store.read(|tx| tx.idempotent_answer(1, "Create", "tok")).unwrap().is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_data_directory_and_database_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("gh-modes-{}", uuid::Uuid::new_v4())).join("data");
    // A lax umask for this thread's process would not matter: the modes are set, not masked.
    let store = SqliteStore::open(&dir).unwrap();
    drop(store);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("gatehouse.db")), 0o600);
    for f in ["gatehouse.db-wal", "gatehouse.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    // An existing, too open directory and database are tightened.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("gatehouse.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteStore::open(&dir).unwrap());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("gatehouse.db")), 0o600);
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn dropping_one_accounts_resources_keeps_the_others() {
    let dir = temp_dir();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
    let other = |r: Record| Record { account_id: 2, ..r };
    store
        .write(move |tx| {
            tx.insert(&rec("a", "r1", "p", None))?;
            tx.insert(&other(rec("b", "r1", "p", None)))?;
            tx.set_tag(
                &TagBinding { kind: "Thing".into(), resource_id: "a".into(), key: "k".into(), value: "v".into() },
                1,
            )?;
            tx.add_task(1, "Thing", "a", "create", 10)?;
            tx.add_task(2, "Thing", "b", "create", 10)
        })
        .await
        .unwrap();
    let dropped = store.write(|tx| tx.drop_resources(Some(1))).await.unwrap();
    assert_eq!(dropped, [Dropped { account_id: 1, kind: "Thing".into(), id: "a".into() }]);
    let left = |account_id| ListQuery { kind: "Thing", account_id, ..Default::default() };
    assert_eq!(store.read(|tx| tx.count(&left(1))).unwrap(), 0, "the account's count follows");
    assert_eq!(store.read(|tx| tx.count(&left(2))).unwrap(), 1);
    assert!(store.read(|tx| tx.tags_of("Thing", 1, &["a".into()])).unwrap().is_empty());
    let tasks = store.read(|tx| tx.due_tasks(100, 10)).unwrap();
    assert_eq!(tasks.iter().map(|t| t.account_id).collect::<Vec<_>>(), [2]);
    // Expediting makes the rest due now and marks them.
    store.write(|tx| tx.add_task(2, "Thing", "c", "create", i64::MAX / 2)).await.unwrap();
    assert_eq!(store.write(|tx| tx.expedite_tasks(Some(2), 50)).await.unwrap(), 2);
    let tasks = store.read(|tx| tx.due_tasks(50, 10)).unwrap();
    assert!(tasks.len() == 2 && tasks.iter().all(|t| t.expedited && t.due_ms <= 50));
    let stats = store.read(|tx| tx.task_stats(50)).unwrap();
    assert_eq!(stats, TaskStats { queued: 2, due: 2, oldest_due_ms: Some(10) });
    assert_eq!(store.read(|tx| tx.resource_statuses()).unwrap(), [("Thing".to_string(), "active".to_string(), 1)]);
    assert_eq!(store.write(|tx| tx.drop_resources(None)).await.unwrap().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}
