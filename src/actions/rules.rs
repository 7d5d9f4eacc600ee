//! Validation rules shared across resource families, and resource identifiers.

use rand::Rng;
use serde_json::{json, Value};

use crate::api::error::{ApiError, ApiResult};
use crate::api::params::{Page, TokenPage};
use crate::app::Body;

/// A new resource ID: `<prefix>-` and 21 lower-case alphanumerics, as the real service mints them.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..21).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}-{tail}")
}

fn is_chinese(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

/// The documented rule for names and descriptions: `min..=max` characters, starting with a letter
/// or a Chinese character, then letters, Chinese characters, digits, `_` and `-`.
pub fn valid_label(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    let mut chars = s.chars();
    (min..=max).contains(&n)
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || is_chinese(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || is_chinese(c) || c == '_' || c == '-')
}

pub fn check_name(name: &str, max: usize) -> ApiResult<()> {
    if valid_label(name, 2, max) {
        Ok(())
    } else {
        Err(ApiError::bad_request("InvalidName", "The name is not valid"))
    }
}

/// The SSL-VPN rule for names: as `check_name`, periods allowed after the first character.
pub fn check_dotted_name(name: &str, max: usize) -> ApiResult<()> {
    check_name(&name.replace('.', "_"), max)
}

/// Descriptions follow the same documented rule as names.
pub fn check_description(description: &str, max: usize) -> ApiResult<()> {
    if valid_label(description, 2, max) {
        Ok(())
    } else {
        Err(ApiError::bad_request("InvalidDescription", "The description is not valid"))
    }
}

/// The fields of a `json!({...})` object literal, as an answer body.
pub fn object(v: Value) -> Body {
    match v {
        Value::Object(map) => map,
        other => unreachable!("object() takes an object literal, got {other}"),
    }
}

/// One page of a `PageNumber`/`PageSize` list: `{"TotalCount", "PageNumber", "PageSize",
/// "<List>": {"<Item>": [...]}}`.
pub fn page_body(total: u64, page: Page, list: &str, item: &str, items: Vec<Value>) -> Body {
    let mut body = Body::new();
    body.insert("TotalCount".into(), json!(total));
    body.insert("PageNumber".into(), json!(page.number));
    body.insert("PageSize".into(), json!(page.size));
    body.insert(list.into(), wrapped(item, items));
    body
}

/// `{"<item>": [items]}`, the wire's wrapping of a list. Built, not `json!`: that would copy
/// every item.
pub fn wrapped(item: &str, items: Vec<Value>) -> Value {
    Value::Object([(item.to_string(), Value::Array(items))].into_iter().collect())
}

/// One page of a `NextToken`/`MaxResults` list: `{"TotalCount", "MaxResults", "NextToken",
/// "<List>": [...]}` (a flat list). `NextToken` is empty on the last page.
pub fn token_body(total: usize, page: TokenPage, list: &str, items: Vec<Value>) -> Body {
    let next = page.offset + items.len();
    let mut body = Body::new();
    body.insert("TotalCount".into(), json!(total));
    body.insert("MaxResults".into(), json!(page.max));
    body.insert("NextToken".into(), json!(if next < total { TokenPage::token(next) } else { String::new() }));
    body.insert(list.into(), Value::Array(items));
    body
}

/// A time as the newer actions show it: ISO 8601 in UTC to the second (`2021-02-22T03:24:28Z`).
pub fn iso_time(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&fmt)
        .unwrap_or_default()
}

/// User tags as the wire shows them: `{"Tag": [{"Key", "Value"}]}`.
pub fn tags_json(tags: Option<&Vec<(String, String)>>) -> Value {
    let list: Vec<Value> = tags.into_iter().flatten().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    json!({ "Tag": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_the_real_ones() {
        let id = new_id("vpn");
        assert_eq!(id.len(), 25);
        assert!(id.starts_with("vpn-"));
        assert!(id[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(id, new_id("vpn"));
    }

    #[test]
    fn labels() {
        assert!(valid_label("MYVPN", 2, 100));
        assert!(valid_label("网关-1_a", 2, 100));
        assert!(!valid_label("1abc", 2, 100));
        assert!(!valid_label("a", 2, 100));
        assert!(!valid_label(&"a".repeat(101), 2, 100));
        assert!(!valid_label("ab cd", 2, 100));
        assert!(!valid_label("ab.c", 2, 100));
        assert!(check_description("http://x", 100).is_err());
        assert!(check_description("has space", 100).is_err());
        assert!(check_description("Office_link-2", 100).is_ok());
        assert_eq!(check_name("-x", 100).unwrap_err().code, "InvalidName");
        assert!(check_dotted_name("ssl.server_1", 128).is_ok());
        assert!(check_dotted_name(".ssl", 128).is_err());
        assert!(check_dotted_name("https://x", 128).is_err());
    }
}
