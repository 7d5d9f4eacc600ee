//! Parameter values: literal, templated (`{n}`, `{ip}`) or from a file; and the duration forms
//! the command line takes.

use super::*;

/// One piece of a `--param-template` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(String),
    /// `{n}`: the request counter.
    N,
    /// `{ip}`: a distinct IPv4 address derived from the counter.
    Ip,
}

/// Where a parameter's value for request `n` comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// `--param`: the same every time.
    Literal(String),
    /// `--param-template`: expanded with `n`.
    Template(Vec<Seg>),
    /// `--param-file`: entry `n mod len` (never empty).
    List(Vec<String>),
}

impl Value {
    pub(crate) fn at(&self, n: u64) -> String {
        match self {
            Value::Literal(v) => v.clone(),
            Value::Template(segs) => expand(segs, n),
            Value::List(values) => values[(n % values.len() as u64) as usize].clone(),
        }
    }

    /// Whether requests from different residue classes mod `c` (different connections under
    /// `--wait-active`) never get the same value.
    pub(crate) fn splits_between(&self, c: u64) -> bool {
        match self {
            Value::Literal(_) => c == 1,
            Value::Template(segs) => c == 1 || segs.iter().any(|s| !matches!(s, Seg::Lit(_))),
            Value::List(values) => (values.len() as u64).is_multiple_of(c),
        }
    }
}

pub(crate) fn split_param(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    let (name, value) = split_param(s)?;
    Ok((name.to_owned(), value.to_owned()))
}

pub(crate) fn parse_template_param(s: &str) -> Result<(String, Vec<Seg>), String> {
    let (name, value) = split_param(s)?;
    Ok((name.to_owned(), parse_template(value)?))
}

/// Splits a template into literal text, `{n}` and `{ip}`; `{{` and `}}` are literal braces.
pub(crate) fn parse_template(t: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            lit.push('{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            lit.push('}');
            rest = after;
        } else if c == '{' {
            let end = rest.find('}').ok_or_else(|| format!("unclosed '{{' in template {t:?}"))?;
            let seg = match &rest[1..end] {
                "n" => Seg::N,
                "ip" => Seg::Ip,
                other => return Err(format!("unknown placeholder {{{other}}} in {t:?} (use {{n}} or {{ip}})")),
            };
            if !lit.is_empty() {
                segs.push(Seg::Lit(std::mem::take(&mut lit)));
            }
            segs.push(seg);
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err(format!("unmatched '}}' in template {t:?} (write '}}}}' for a literal brace)"));
        } else {
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() {
        segs.push(Seg::Lit(lit));
    }
    Ok(segs)
}

/// The values of a `--param-file`: one per line (without its line ending), blank lines skipped.
pub(crate) fn parse_value_list(text: &str) -> Result<Vec<String>, String> {
    let values: Vec<String> =
        text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    if values.is_empty() {
        return Err("it has no values (one per line)".into());
    }
    Ok(values)
}

/// A distinct address for every `n` below 254·65536 (then it wraps): 11.x.y.z with z in 1..=254.
pub(crate) fn ip_for(n: u64) -> Ipv4Addr {
    let z = (n % 254) as u8 + 1;
    let rest = n / 254;
    Ipv4Addr::new(11, ((rest >> 8) & 0xff) as u8, (rest & 0xff) as u8, z)
}

pub(crate) fn expand(segs: &[Seg], n: u64) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Lit(s) => out.push_str(s),
            Seg::N => out.push_str(&n.to_string()),
            Seg::Ip => out.push_str(&ip_for(n).to_string()),
        }
    }
    out
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = num.parse().map_err(|_| format!("invalid duration {s:?} (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}

pub(crate) fn parse_bench_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!("duration must be > 0 and at most {}s", MAX_DURATION.as_secs()));
    }
    Ok(d)
}

pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("timeout must be > 0".into());
    }
    Ok(d)
}
