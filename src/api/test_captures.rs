//! Signed requests captured from the official SDKs (copied from the spec's captures into
//! `tests/fixtures/captures/`, so the suite needs nothing outside the repository), loaded as the
//! signature tests of both dialects replay them.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::auth::decode_form;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures");
/// The key every capture was signed with (`_BADSIG` captures with another secret).
pub const CAPTURE_AK: &str = "LTAI5tCaptureTestKey";
pub const CAPTURE_SECRET: &str = "CaptureSecret~0123456789abcdef";

pub struct Capture {
    pub name: String,
    pub method: String,
    pub query: Vec<(String, String)>,
    pub body_params: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The capture's own account of the signature (`scheme`, `string_to_sign`, `ok`, ...).
    pub sig: serde_json::Value,
}

pub fn load_capture(path: &Path) -> Capture {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let req = &v["request"];
    let method = req["method"].as_str().expect("request.method").to_owned();
    let target = req["target"].as_str().expect("request.target");
    let query = match target.split_once('?') {
        Some((_, q)) => decode_form(q.as_bytes()),
        None => Vec::new(),
    };
    let mut headers = HeaderMap::new();
    for pair in req["headers"].as_array().expect("request.headers") {
        let name = pair[0].as_str().unwrap();
        let value = pair[1].as_str().unwrap();
        headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    let body = req["body"].as_str().unwrap_or("").as_bytes().to_vec();
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let body_params = if is_form { decode_form(&body) } else { Vec::new() };
    Capture {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        method,
        query,
        body_params,
        headers,
        body,
        sig: v["signature"].clone(),
    }
}

/// Every capture in `dirs` (each must hold some), in name order per directory.
pub fn capture_files(dirs: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(CAPTURES);
    let mut files = Vec::new();
    for dir in dirs {
        let d = root.join(dir);
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("capture dir {} unreadable: {e}", d.display()));
        let mut here: Vec<PathBuf> =
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        assert!(!here.is_empty(), "no captures in {}", d.display());
        here.sort();
        files.extend(here);
    }
    files
}
