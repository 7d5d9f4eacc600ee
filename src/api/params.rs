//! Request parameters as the wire sends them — a flat map of strings (`Tag.1.Key=...`) — and the
//! typed getters every action decodes them with. A getter names the parameter, so the error it
//! returns names it too: `Missing<Name>` when required and absent, `InvalidParameter` when
//! malformed or out of range.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

use super::error::{ApiError, ApiResult};

/// Common parameters: consumed by the protocol layer, never by an action, and left out of the
/// ClientToken fingerprint.
pub const COMMON: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
    "ClientToken",
    "callerUid",
    "RequestId",
];

#[derive(Debug, Clone, Default)]
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    /// Query parameters first, then the form body's, which win on a clash.
    pub fn merged(query: &[(String, String)], body: &[(String, String)]) -> Self {
        Params { map: query.iter().chain(body).cloned().collect() }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Params { map: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The raw value; an empty value counts as absent (SDKs send `Name=` for unset fields).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Whether any parameter has exactly this value (a call naming a resource, whatever the
    /// parameter's name).
    pub fn has_value(&self, value: &str) -> bool {
        self.map.values().any(|v| v == value)
    }

    pub fn str(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    pub fn required(&self, name: &str) -> ApiResult<String> {
        self.str(name).ok_or_else(|| ApiError::missing_parameter(name))
    }

    /// A value parsed with `FromStr` (numbers).
    pub fn parse<T: FromStr>(&self, name: &str) -> ApiResult<Option<T>>
    where
        T::Err: Display,
    {
        self.get(name)
            .map(|v| v.trim().parse::<T>().map_err(|e| ApiError::invalid_parameter(name, format!("{v:?}: {e}"))))
            .transpose()
    }

    pub fn required_parse<T: FromStr>(&self, name: &str) -> ApiResult<T>
    where
        T::Err: Display,
    {
        self.parse(name)?.ok_or_else(|| ApiError::missing_parameter(name))
    }

    /// `true`/`false` in any case: the Python SDKs send `True`/`False`.
    pub fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::invalid_parameter(name, format!("{v:?} is not true or false"))),
            })
            .transpose()
    }

    /// A value that must be one of `allowed` (compared exactly).
    pub fn one_of<T: FromStr + PartialEq + Display + Copy>(&self, name: &str, allowed: &[T]) -> ApiResult<Option<T>>
    where
        T::Err: Display,
    {
        match self.parse::<T>(name)? {
            Some(v) if !allowed.contains(&v) => Err(ApiError::invalid_parameter(
                name,
                format!("{v} is not one of {}", allowed.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")),
            )),
            other => Ok(other),
        }
    }

    /// A string enumeration, matched case-insensitively; returns the canonical spelling.
    pub fn enumeration(&self, name: &str, allowed: &[&'static str]) -> ApiResult<Option<&'static str>> {
        self.get(name)
            .map(|v| {
                allowed.iter().find(|a| a.eq_ignore_ascii_case(v)).copied().ok_or_else(|| {
                    ApiError::invalid_parameter(name, format!("{v:?} is not one of {}", allowed.join(", ")))
                })
            })
            .transpose()
    }

    /// The 1-based repeated list `Name.1`, `Name.2`, ... in index order; `max` bounds N.
    pub fn list(&self, name: &str, max: usize) -> ApiResult<Vec<String>> {
        self.list_in(name, 1..=max)
    }

    /// The repeated list `Name.N` for N in `indexes` (Tencent's lists start at 0), in index order.
    pub fn list_in(&self, name: &str, indexes: RangeInclusive<usize>) -> ApiResult<Vec<String>> {
        let mut items = self.indexed(name, &indexes)?;
        items.sort_by_key(|(n, _)| *n);
        Ok(items.into_iter().filter(|(_, v)| !v.is_empty()).map(|(_, v)| v).collect())
    }

    /// The names of every parameter starting with `prefix`.
    pub fn names_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.map.keys().map(String::as_str).filter(move |k| k.starts_with(prefix))
    }

    /// Key/value pairs `Prefix.N.Key` / `Prefix.N.Value` (N = 1..max), in index order. A pair
    /// without a key is `MissingPrefix.N.Key`; an empty key is returned for the caller's rules
    /// to judge; a value that is not sent is `None`.
    pub fn tags(&self, prefix: &str, max: usize) -> ApiResult<Vec<(String, Option<String>)>> {
        let mut entries: std::collections::BTreeMap<usize, (Option<String>, Option<String>)> = Default::default();
        for (k, v) in &self.map {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            let entry = entries.entry(index(k, n, &(1..=max))?).or_default();
            match field {
                "Key" => entry.0 = Some(v.clone()),
                "Value" => entry.1 = Some(v.clone()),
                _ => {}
            }
        }
        entries
            .into_iter()
            .map(|(n, (key, value))| match key {
                Some(key) => Ok((key, value)),
                None => Err(ApiError::missing_parameter(&format!("{prefix}.{n}.Key"))),
            })
            .collect()
    }

    fn indexed(&self, name: &str, indexes: &RangeInclusive<usize>) -> ApiResult<Vec<(usize, String)>> {
        let mut out = Vec::new();
        for (k, v) in &self.map {
            if let Some(n) = k.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
                if n.bytes().all(|b| b.is_ascii_digit()) {
                    out.push((index(k, n, indexes)?, v.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Every action parameter (common ones left out), sorted: what a ClientToken fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut pairs: Vec<_> = self.map.iter().filter(|(k, _)| !COMMON.contains(&k.as_str())).collect();
        pairs.sort();
        pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
}

fn index(param: &str, n: &str, indexes: &RangeInclusive<usize>) -> ApiResult<usize> {
    match n.parse::<usize>() {
        Ok(i) if indexes.contains(&i) => Ok(i),
        _ => Err(ApiError::invalid_parameter(
            param,
            format!("the index must be between {} and {}", indexes.start(), indexes.end()),
        )),
    }
}

/// Page selection for `PageNumber`/`PageSize` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub size: u64,
}

impl Page {
    /// Where the page starts. Client numbers can be anything up to u64::MAX: past the end of any
    /// list it saturates (an empty page), never wraps round to another page.
    pub fn offset(&self) -> u64 {
        (self.number - 1).saturating_mul(self.size)
    }
}

/// A page of a `NextToken`/`MaxResults` list: where it starts and how long it is at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPage {
    pub offset: usize,
    pub max: usize,
}

impl TokenPage {
    /// The opaque token of the page starting at `offset`.
    pub fn token(offset: usize) -> String {
        format!("{offset:016x}")
    }
}

impl Params {
    /// `NextToken` (a token an earlier page gave, or none for the first page) and `MaxResults`
    /// (default 10, 1..=max).
    pub fn token_page(&self, max: usize) -> ApiResult<TokenPage> {
        let offset = match self.get("NextToken") {
            None | Some("") => 0,
            Some(t) => usize::from_str_radix(t, 16)
                .ok()
                .filter(|_| t.len() == 16)
                .ok_or_else(|| ApiError::bad_request("InvalidNextToken", "The specified NextToken is invalid."))?,
        };
        let size = self.parse::<usize>("MaxResults")?.unwrap_or(10);
        if !(1..=max).contains(&size) {
            return Err(ApiError::invalid_parameter("MaxResults", format!("it must be between 1 and {max}")));
        }
        Ok(TokenPage { offset, max: size })
    }

    /// `PageNumber` (default 1, ≥ 1) and `PageSize` (default 10, 1..=max).
    pub fn page(&self, max_size: u64) -> ApiResult<Page> {
        let number = self.parse::<u64>("PageNumber")?.unwrap_or(1);
        if number < 1 {
            return Err(ApiError::invalid_parameter("PageNumber", "it must be at least 1"));
        }
        let size = self.parse::<u64>("PageSize")?.unwrap_or(10);
        if !(1..=max_size).contains(&size) {
            return Err(ApiError::invalid_parameter("PageSize", format!("it must be between 1 and {max_size}")));
        }
        Ok(Page { number, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn required_and_empty() {
        let ps = p(&[("VpcId", ""), ("Name", "x")]);
        assert_eq!(ps.required("VpcId").unwrap_err().code, "MissingVpcId");
        assert_eq!(ps.required("Name").unwrap(), "x");
    }

    #[test]
    fn numbers_bools_enums() {
        let ps = p(&[("Bandwidth", "7"), ("B", "abc"), ("T", "True"), ("F", "false"), ("X", "yes"), ("E", "normal")]);
        assert_eq!(ps.one_of("Bandwidth", &[5u32, 10]).unwrap_err().code, "InvalidParameter");
        assert_eq!(ps.parse::<u32>("B").unwrap_err().code, "InvalidParameter");
        assert_eq!(ps.bool("T").unwrap(), Some(true));
        assert_eq!(ps.bool("F").unwrap(), Some(false));
        assert!(ps.bool("X").is_err());
        assert_eq!(ps.bool("Missing").unwrap(), None);
        assert_eq!(ps.enumeration("E", &["Normal", "NationalStandard"]).unwrap(), Some("Normal"));
    }

    #[test]
    fn lists_and_tags_in_index_order() {
        let ps = p(&[
            ("ResourceId.2", "b"),
            ("ResourceId.1", "a"),
            ("Tag.2.Key", "k2"),
            ("Tag.1.Key", "k1"),
            ("Tag.1.Value", "v1"),
        ]);
        assert_eq!(ps.list("ResourceId", 50).unwrap(), vec!["a", "b"]);
        let zero_based = p(&[("userGwCidrBlock.1", "b"), ("userGwCidrBlock.0", "a")]);
        assert_eq!(zero_based.list_in("userGwCidrBlock", 0..=9).unwrap(), vec!["a", "b"]);
        assert_eq!(zero_based.list("userGwCidrBlock", 9).unwrap_err().code, "InvalidParameter");
        assert_eq!(
            ps.tags("Tag", 20).unwrap(),
            vec![("k1".to_string(), Some("v1".to_string())), ("k2".to_string(), None)]
        );
        assert!(p(&[("Tag.21.Key", "k")]).tags("Tag", 20).is_err());
        assert_eq!(p(&[("Tag.1.Value", "v")]).tags("Tag", 20).unwrap_err().code, "MissingTag.1.Key");
        assert_eq!(p(&[("Tag.1.Key", "")]).tags("Tag", 20).unwrap(), vec![(String::new(), None)]);
    }

    #[test]
    fn pages() {
        assert_eq!(p(&[]).page(50).unwrap(), Page { number: 1, size: 10 });
        assert_eq!(p(&[("PageNumber", "3"), ("PageSize", "50")]).page(50).unwrap().offset(), 100);
        assert!(p(&[("PageSize", "51")]).page(50).is_err());
        assert!(p(&[("PageNumber", "0")]).page(50).is_err());
        // Huge page numbers are past the end, not another page.
        assert_eq!(p(&[("PageNumber", "4611686018427387905"), ("PageSize", "4")]).page(50).unwrap().offset(), u64::MAX);
        assert_eq!(p(&[("PageNumber", "9223372036854775807")]).page(50).unwrap().offset(), u64::MAX);
    }

    #[test]
    fn token_pages() {
        assert_eq!(p(&[]).token_page(20).unwrap(), TokenPage { offset: 0, max: 10 });
        let next = TokenPage::token(40);
        assert_eq!(
            p(&[("NextToken", &next), ("MaxResults", "20")]).token_page(20).unwrap(),
            TokenPage { offset: 40, max: 20 }
        );
        assert_eq!(p(&[("NextToken", "zz")]).token_page(20).unwrap_err().code, "InvalidNextToken");
        assert_eq!(p(&[("MaxResults", "21")]).token_page(20).unwrap_err().code, "InvalidParameter");
        assert_eq!(p(&[("MaxResults", "0")]).token_page(20).unwrap_err().code, "InvalidParameter");
    }

    #[test]
    fn fingerprint_ignores_common_parameters() {
        let a = p(&[("VpcId", "v"), ("SignatureNonce", "1"), ("ClientToken", "t")]);
        let b = p(&[("VpcId", "v"), ("SignatureNonce", "2")]);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), p(&[("VpcId", "w")]).fingerprint());
    }
}
