//! The one error type every request can end in. It carries what the wire needs (HTTP status, `Code`,
//! `Message`); rendering it is `render`'s job.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into() }
    }
    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    // Gateway-level (POP) errors, shared by every action.

    pub fn missing_parameter(name: &str) -> Self {
        Self::bad_request(
            format!("Missing{name}"),
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        )
    }
    pub fn invalid_parameter(name: &str, why: impl fmt::Display) -> Self {
        Self::bad_request("InvalidParameter", format!("The specified parameter \"{name}\" is not valid: {why}"))
    }
    pub fn internal(what: impl fmt::Display) -> Self {
        tracing::error!("internal error: {what}");
        Self::internal_error()
    }
    fn internal_error() -> Self {
        Self::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    }
    /// The service cannot answer now (its database is unreachable or overloaded); a retry may.
    pub fn unavailable() -> Self {
        Self::new(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
    }
    pub fn throttled() -> Self {
        Self::bad_request("Throttling.User", "Request was denied due to user flow control.")
    }
    pub fn gateway_configuring() -> Self {
        Self::bad_request("VpnGateway.Configuring", "The specified service is configuring.")
    }
    pub fn customer_gateway_configuring() -> Self {
        Self::bad_request(
            "OperationDenied.VpnConfiguring",
            "The associated VPN gateway is being configured. You cannot update the attributes of the customer gateway.",
        )
    }

    /// The error the code base answers with `code`, for the codes whose status and message do
    /// not depend on the request (what a control-API fault may inject).
    pub fn documented(code: &str) -> Option<Self> {
        Some(match code {
            "InternalError" => Self::internal_error(),
            "ServiceUnavailable" => Self::unavailable(),
            "Throttling.User" => Self::throttled(),
            "VpnGateway.Configuring" => Self::gateway_configuring(),
            "OperationDenied.VpnConfiguring" => Self::customer_gateway_configuring(),
            _ => return None,
        })
    }
    /// The codes `documented` knows.
    pub const DOCUMENTED: &'static [&'static str] = &[
        "InternalError",
        "ServiceUnavailable",
        "Throttling.User",
        "VpnGateway.Configuring",
        "OperationDenied.VpnConfiguring",
    ];
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_are_the_code_bases_errors() {
        for code in ApiError::DOCUMENTED {
            assert_eq!(ApiError::documented(code).unwrap().code, *code);
        }
        assert_eq!(ApiError::documented("Throttling.User").unwrap().status, 400);
        assert_eq!(ApiError::documented("InternalError"), Some(ApiError::internal("test")));
        assert_eq!(ApiError::documented("NoSuchCode"), None);
    }
}
