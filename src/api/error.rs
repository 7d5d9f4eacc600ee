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
        Self::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
