//! Errors answered over HTTP, in the shape each client expects: Azure's
//! `{"error": {"code", "message", "innererror"?}}` for the query and ingestion APIs, Elasticsearch's
//! `{"error": {"type", "reason"}, "status"}` for `_bulk`, and OTLP's `Status` (`{"code",
//! "message"}`) for `/v1/logs`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::hub::HubError;

/// Which client family an error is answered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Flavor {
    /// Azure's query and ingestion APIs, and the server's own endpoints.
    #[default]
    Azure,
    /// Elasticsearch's bulk API.
    Elastic,
    /// OTLP/HTTP.
    Otlp,
}

/// An error answered to a request.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) inner: Option<Value>,
    pub(crate) headers: Vec<(HeaderName, String)>,
    pub(crate) flavor: Flavor,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            inner: None,
            headers: Vec::new(),
            flavor: Flavor::Azure,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadArgumentError", message)
    }

    pub(crate) fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            message,
        )
    }

    /// 429 or 503 with `Retry-After`: the client should come back.
    pub(crate) fn retry(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::new(status, code, message).with_header(header::RETRY_AFTER, "1")
    }

    pub(crate) fn with_inner(mut self, inner: Value) -> Self {
        self.inner = Some(inner);
        self
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// The body of the error in Azure's shape (also used inside `$batch` responses).
    pub(crate) fn azure_body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(inner) = &self.inner {
            error["innererror"] = inner.clone();
        }
        json!({ "error": error })
    }

    fn elastic_body(&self) -> Value {
        let kind = match self.status.as_u16() {
            401 => "security_exception",
            403 => "security_exception",
            413 => "content_too_long_exception",
            429 | 503 => "es_rejected_execution_exception",
            400 => "parse_exception",
            _ => "exception",
        };
        json!({
            "error": {
                "root_cause": [{ "type": kind, "reason": self.message }],
                "type": kind,
                "reason": self.message,
            },
            "status": self.status.as_u16(),
        })
    }

    fn otlp_body(&self) -> Value {
        // google.rpc.Status: the gRPC code closest to the HTTP status.
        let code = match self.status.as_u16() {
            400 | 413 => 3, // INVALID_ARGUMENT
            401 => 16,      // UNAUTHENTICATED
            403 => 7,       // PERMISSION_DENIED
            404 => 5,       // NOT_FOUND
            429 => 8,       // RESOURCE_EXHAUSTED
            503 => 14,      // UNAVAILABLE
            _ => 13,        // INTERNAL
        };
        json!({ "code": code, "message": self.message })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::Azure => self.azure_body(),
            Flavor::Elastic => self.elastic_body(),
            Flavor::Otlp => self.otlp_body(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if self.flavor == Flavor::Azure
            && let Ok(v) = HeaderValue::from_str(&self.code)
        {
            headers.insert(HeaderName::from_static("x-ms-error-code"), v);
        }
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), v);
            }
        }
        (self.status, headers, body.to_string()).into_response()
    }
}

impl ApiError {
    /// The answer to a refusal of the ingestion hub.
    pub(crate) fn from_hub(engine: &logvault::Engine, e: HubError) -> Self {
        match &e {
            HubError::WorkspaceBusy { .. } => ApiError::retry(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                e.to_string(),
            ),
            HubError::ServerBusy | HubError::Closed => ApiError::retry(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                e.to_string(),
            ),
            HubError::Engine(inner) => engine_error(engine, inner),
        }
    }
}

/// An engine error as an answer: refusals keep their code; a revoked key is 403 (not retried)
/// naming the workspace, cluster and key; a key that cannot be had now (the vault unreachable
/// and nothing cached) or a log held by another process is 503, retryable.
pub(crate) fn engine_error(engine: &logvault::Engine, e: &logvault::EngineError) -> ApiError {
    use logvault::EngineError as E;
    use logvault::keys::KeyStateError as K;
    let revoked = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "CustomerManagedKeyRevoked",
            e.to_string(),
        )
    };
    let unavailable = || {
        ApiError::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "CustomerManagedKeyUnavailable",
            e.to_string(),
        )
    };
    match e {
        E::Control(c) => {
            let status = StatusCode::from_u16(c.code()).unwrap_or(StatusCode::BAD_REQUEST);
            let code = match c.code() {
                404 => "ResourceNotFound",
                409 => "Conflict",
                _ => "BadRequest",
            };
            ApiError::new(status, code, e.to_string())
        }
        E::Key(K::Revoked { .. } | K::NotProvisioned { .. }) => revoked(),
        E::Key(K::Unavailable { .. }) => unavailable(),
        E::Query(logvault::query::QueryError::KeyUnavailable { account, .. }) => {
            let cluster = account.strip_prefix("cluster-").unwrap_or(account);
            let is_revoked = engine.key_states().is_ok_and(|states| {
                states.iter().any(|s| {
                    s.cluster == cluster && s.key_state == logvault::keys::KeyState::Revoked
                })
            });
            if is_revoked { revoked() } else { unavailable() }
        }
        E::Ingest(_) => ApiError::bad_request(e.to_string()),
        e if e.is_busy() => ApiError::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            e.to_string(),
        ),
        _ => ApiError::internal(e.to_string()),
    }
}
