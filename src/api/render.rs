//! Turning answers into bytes: JSON (default) or XML, success or error envelope. Lists are
//! rendered the Alibaba way from one shape: a JSON array under key `Item` becomes repeated
//! `<Item>` elements in XML (`{"VpnGateways":{"VpnGateway":[..]}}` ↔
//! `<VpnGateways><VpnGateway>..</VpnGateway>..</VpnGateways>`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use serde_json::{Map, Value};

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `XML` in any case selects XML; anything else (JSON, json, None, absent) is JSON.
    pub fn from_param(v: Option<&str>) -> Self {
        match v {
            Some(v) if v.eq_ignore_ascii_case("xml") => Format::Xml,
            _ => Format::Json,
        }
    }
}

/// Where errors say they came from (`HostId`).
pub const HOST_ID: &str = "vpc.aliyuncs.com";

pub fn success(format: Format, action: &str, request_id: &str, body: Map<String, Value>) -> Response {
    let mut out = Map::with_capacity(body.len() + 1);
    out.insert("RequestId".into(), Value::String(request_id.to_string()));
    out.extend(body.into_iter().filter(|(k, _)| k != "RequestId"));
    match format {
        Format::Json => respond(StatusCode::OK, format, serde_json::to_vec(&out).expect("json")),
        Format::Xml => {
            let mut xml = String::from("<?xml version='1.0' encoding='UTF-8'?>");
            element(&mut xml, &format!("{action}Response"), &Value::Object(out));
            respond(StatusCode::OK, format, xml.into_bytes())
        }
    }
}

pub fn error(format: Format, request_id: &str, e: &ApiError) -> Response {
    let recommend = format!("https://api.aliyun.com/troubleshoot?q={}&product=Vpc&requestId={request_id}", e.code);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match format {
        Format::Json => {
            let body = serde_json::json!({
                "RequestId": request_id,
                "HostId": HOST_ID,
                "Code": e.code,
                "Message": e.message,
                "Recommend": recommend,
            });
            respond(status, format, serde_json::to_vec(&body).expect("json"))
        }
        Format::Xml => {
            let xml = format!(
                "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>{}</RequestId><HostId>{HOST_ID}</HostId>\
                 <Code>{}</Code><Message>{}</Message><Recommend><![CDATA[{recommend}]]></Recommend></Error>",
                escape(request_id),
                escape(&e.code),
                escape(&e.message)
            );
            respond(status, format, xml.into_bytes())
        }
    }
}

fn respond(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let ct = match format {
        // The Tea SDK parses an XML error only when the type is exactly this.
        Format::Xml => "text/xml;charset=utf-8",
        Format::Json => "application/json;charset=utf-8",
    };
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// Appends `<name>value</name>`; arrays repeat the element once per item.
fn element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            for (k, v) in map {
                element(out, k, v);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        scalar => {
            let text = match scalar {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push('<');
            out.push_str(name);
            out.push('>');
            out.push_str(&escape(text.as_str()));
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn xml_of(v: Value) -> String {
        let mut s = String::new();
        element(&mut s, "R", &v);
        s
    }

    #[test]
    fn lists_repeat_their_item_element() {
        let v = json!({"VpnGateways": {"VpnGateway": [{"Id": "a"}, {"Id": "b & c"}]}, "Empty": {"Tag": []}, "N": 5});
        assert_eq!(
            xml_of(v),
            "<R><Empty></Empty><N>5</N><VpnGateways><VpnGateway><Id>a</Id></VpnGateway>\
             <VpnGateway><Id>b &amp; c</Id></VpnGateway></VpnGateways></R>"
        );
    }

    #[test]
    fn format_parameter() {
        assert_eq!(Format::from_param(Some("xml")), Format::Xml);
        assert_eq!(Format::from_param(Some("JSON")), Format::Json);
        assert_eq!(Format::from_param(Some("None")), Format::Json);
        assert_eq!(Format::from_param(None), Format::Json);
    }
}
