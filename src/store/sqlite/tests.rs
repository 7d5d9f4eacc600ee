//! What only the embedded engine does (the rest is in `store::conformance`).

use super::*;

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
