//! SQL that both engines share: the queries built at run time (a list's filter, its page), with
//! arguments kept engine-neutral and placeholders in each engine's spelling.

use super::ListQuery;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// `?1`, `?2`, …
    Sqlite,
    /// `$1`, `$2`, …
    Postgres,
}

/// One bound argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

/// A statement under construction: its text and the arguments its placeholders name, in order.
pub(super) struct Sql {
    dialect: Dialect,
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(dialect: Dialect, text: &str) -> Self {
        Sql { dialect, text: text.to_string(), args: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn arg(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        match self.dialect {
            Dialect::Sqlite => self.text.push_str(&format!("?{n}")),
            Dialect::Postgres => self.text.push_str(&format!("${n}")),
        }
        self
    }

    pub fn text_arg(&mut self, s: &str) -> &mut Self {
        self.arg(Arg::Text(s.to_string()))
    }

    /// Appends `(p1, p2, …)` bound to `items`.
    pub fn list(&mut self, items: &[String]) -> &mut Self {
        self.push("(");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text_arg(item);
        }
        self.push(")")
    }
}

/// The columns a `Record` is read from, in `record_from_row` order.
pub(super) const RECORD_COLUMNS: &str =
    "kind, account_id, region_id, id, parent_id, unique_key, status, name, created_ms, body";

/// Appends the `WHERE` condition of a `ListQuery` over `resources r`.
pub(super) fn list_filter(sql: &mut Sql, q: &ListQuery) {
    sql.push("r.account_id = ").arg(Arg::Int(q.account_id)).push(" AND r.kind = ").text_arg(q.kind);
    // With refs, the few ids they name drive the query: on SQLite (which has no statistics
    // here) a `+` keeps the planner from walking every row of a region, gateway or status.
    let col = if q.refers_to.is_empty() || sql.dialect == Dialect::Postgres { "r." } else { "+r." };
    let columns = [
        ("region_id", &q.region_id),
        ("parent_id", &q.parent_id),
        ("unique_key", &q.unique_key),
        ("status", &q.status),
    ];
    for (column, value) in columns {
        if let Some(v) = value {
            sql.push(&format!(" AND {col}{column} = ")).text_arg(v);
        }
    }
    if !q.ids.is_empty() {
        sql.push(" AND r.id IN ").list(&q.ids);
    }
    if !q.refers_to.is_empty() {
        // Not correlated: the ids come from the index, then each row by its unique key.
        sql.push(" AND r.id IN (SELECT x.id FROM resource_refs x WHERE x.account_id = ")
            .arg(Arg::Int(q.account_id))
            .push(" AND x.kind = ")
            .text_arg(q.kind)
            .push(" AND x.ref IN ")
            .list(&q.refers_to)
            .push(")");
    }
    for (key, value) in &q.tags {
        sql.push(
            " AND EXISTS (SELECT 1 FROM tags t WHERE t.account_id = r.account_id AND t.kind = r.kind \
             AND t.resource_id = r.id AND t.key = ",
        )
        .text_arg(key);
        if let Some(v) = value {
            sql.push(" AND t.value = ").text_arg(v);
        }
        sql.push(")");
    }
}

/// The records a `ListQuery` selects, newest first: with a limit, the page is found through the
/// index alone and only its rows are read. `with_tags` adds a column (PostgreSQL only): each
/// record's tags as a JSON array of `[key, value]`, by key. `with_total` adds one before it: how
/// many records the query selects in all (computed once), so that a page and its total take one
/// statement.
pub(super) fn list_query(dialect: Dialect, q: &ListQuery, with_total: bool, with_tags: bool) -> Sql {
    let mut sql = Sql::new(dialect, "");
    // A page is its rows' `seq`s first, then those rows. On PostgreSQL as an array: that plan
    // stays good when planned once for any values (see `PgTx::page`), where `IN` then hashes
    // the whole table.
    let (table, from) = match (q.limit, dialect) {
        (Some(_), Dialect::Postgres) => {
            ("resources", "FROM resources WHERE seq = ANY(ARRAY(SELECT r.seq FROM resources r WHERE ")
        }
        (Some(_), Dialect::Sqlite) => {
            ("resources", "FROM resources WHERE seq IN (SELECT r.seq FROM resources r WHERE ")
        }
        (None, _) => ("r", "FROM resources r WHERE "),
    };
    sql.push(&format!("SELECT {RECORD_COLUMNS}"));
    if with_total {
        sql.push(", ");
        push_count(&mut sql, q);
    }
    if with_tags {
        sql.push(&format!(
            ", (SELECT COALESCE(json_agg(json_build_array(t.key, t.value) ORDER BY t.key), '[]')::text FROM tags t \
             WHERE t.account_id = {table}.account_id AND t.kind = {table}.kind AND t.resource_id = {table}.id)"
        ));
    }
    sql.push(" ").push(from);
    list_filter(&mut sql, q);
    match q.limit {
        Some(limit) => {
            // The engines' numbers are i64: anything beyond is past every list anyway.
            sql.push(" ORDER BY r.seq DESC LIMIT ")
                .arg(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)))
                .push(" OFFSET ")
                .arg(Arg::Int(i64::try_from(q.offset).unwrap_or(i64::MAX)))
                .push(if dialect == Dialect::Postgres { ")) ORDER BY seq DESC" } else { ") ORDER BY seq DESC" });
        }
        None => {
            sql.push(" ORDER BY r.seq DESC");
        }
    }
    sql
}

/// Whether `q` selects a kind's every resource in a region (or in every region), unfiltered.
pub(super) fn whole_region(q: &ListQuery) -> bool {
    q.ids.is_empty()
        && q.parent_id.is_none()
        && q.unique_key.is_none()
        && q.status.is_none()
        && q.refers_to.is_empty()
        && q.tags.is_empty()
}

/// Counts what a `ListQuery` selects.
pub(super) fn count_query(dialect: Dialect, q: &ListQuery) -> Sql {
    let mut sql = Sql::new(dialect, "SELECT ");
    push_count(&mut sql, q);
    sql
}

/// Appends an expression counting what a `ListQuery` selects: the kept per-region count when it
/// answers the query.
fn push_count(sql: &mut Sql, q: &ListQuery) {
    match (&q.region_id, whole_region(q)) {
        (Some(region), true) => {
            sql.push("COALESCE((SELECT n FROM resource_counts WHERE account_id = ").arg(Arg::Int(q.account_id));
            sql.push(" AND kind = ").text_arg(q.kind).push(" AND region_id = ").text_arg(region).push("), 0)");
        }
        _ => {
            // Its own alias: it may sit inside a list's query.
            sql.push("(SELECT COUNT(*) FROM resources r WHERE ");
            list_filter(sql, q);
            sql.push(")");
        }
    }
}

/// The tags of several resources of one kind.
pub(super) fn tags_query(dialect: Dialect, kind: &str, account_id: i64, ids: &[String]) -> Sql {
    let mut sql = Sql::new(dialect, "SELECT resource_id, key, value FROM tags WHERE account_id = ");
    sql.arg(Arg::Int(account_id)).push(" AND kind = ").text_arg(kind).push(" AND resource_id IN ").list(ids);
    sql.push(" ORDER BY resource_id, key");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_each_engines_spelling() {
        let q = ListQuery {
            kind: "Thing",
            account_id: 7,
            region_id: Some("r".into()),
            refers_to: vec!["a".into()],
            ..Default::default()
        };
        let lite = list_query(Dialect::Sqlite, &q, false, false);
        let pg = list_query(Dialect::Postgres, &q, false, false);
        assert!(lite.text.contains("r.account_id = ?1 AND r.kind = ?2 AND +r.region_id = ?3"), "{}", lite.text);
        assert!(pg.text.contains("r.account_id = $1 AND r.kind = $2 AND r.region_id = $3"), "{}", pg.text);
        assert_eq!(lite.args, pg.args);
        assert_eq!(lite.args.len(), 6);
        let whole_region = count_query(Dialect::Sqlite, &ListQuery { refers_to: vec![], ..q.clone() });
        assert!(whole_region.text.contains("FROM resource_counts"), "{}", whole_region.text);
        assert!(count_query(Dialect::Postgres, &q).text.starts_with("SELECT (SELECT COUNT(*) FROM resources r WHERE"));
        // With its total, a page's count is numbered after the columns' own placeholders.
        let with_total = list_query(Dialect::Postgres, &q, true, false);
        assert!(
            with_total.text.contains("SELECT COUNT(*) FROM resources r WHERE r.account_id = $1"),
            "{}",
            with_total.text
        );
        assert!(with_total.text.contains("r.account_id = $7 AND r.kind = $8"), "{}", with_total.text);
        assert_eq!(with_total.args.len(), 12);
    }
}
