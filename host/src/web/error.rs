//! The REST error shape, defined once: `{"message", "parameters"}` as Magento's Web API answers.
//!
//! Every REST route answers errors through [`RestError`]. Messages use Magento's `%name`
//! placeholders with the values in `parameters`, so existing clients that render them keep
//! working. Unexpected failures answer 500 with a report id and log the cause under that id;
//! the cause itself never reaches the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::services::{FieldError, Phrase, PhraseParameters, ServiceError};

/// The JSON body of an error answer: a message with `%name` placeholders and their values.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub errors: Option<Vec<ErrorBody>>,
}

/// An error answered in the REST error shape.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// A refusal the client should see as it is.
    #[error("{}", .body.message)]
    Client { status: StatusCode, body: ErrorBody },
    /// A failure of the server; the client gets a report id, the log gets the cause.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
    /// The database cannot be reached: 503 with `Retry-After`, so that a load balancer tries
    /// another node and a client retries.
    #[error("the database is unreachable")]
    Unavailable,
}

/// The message of a 503 answer.
pub const UNAVAILABLE: &str = "The service is temporarily unavailable. Try again shortly.";

/// Whether an unexpected failure is in fact the database being out of reach.
fn unavailable(cause: &anyhow::Error) -> bool {
    cause.chain().any(|e| {
        e.downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_unavailable)
            || e.downcast_ref::<ServiceError>()
                .is_some_and(ServiceError::is_unavailable)
    })
}

impl RestError {
    /// An error with a plain message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        RestError::Client {
            status,
            body: ErrorBody {
                message: message.into(),
                parameters: None,
                errors: None,
            },
        }
    }

    /// An error whose message has `%name` placeholders filled from `parameters`.
    pub fn with_parameters(
        status: StatusCode,
        message: impl Into<String>,
        parameters: &[(&str, &str)],
    ) -> Self {
        let map: Map<String, Value> = parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        RestError::Client {
            status,
            body: ErrorBody {
                message: message.into(),
                parameters: Some(Value::Object(map)),
                errors: None,
            },
        }
    }

    /// 400 `The request body could not be read: %reason`.
    pub fn unreadable_body(reason: impl std::fmt::Display) -> Self {
        Self::with_parameters(
            StatusCode::BAD_REQUEST,
            "The request body could not be read: %reason",
            &[("reason", &reason.to_string())],
        )
    }

    pub fn not_found_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Request does not match any route.")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The request method is not allowed for this route.",
        )
    }
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        match self {
            RestError::Client { status, .. } => *status,
            RestError::Unexpected(cause) if unavailable(cause) => StatusCode::SERVICE_UNAVAILABLE,
            RestError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            RestError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            RestError::Client { status, body } => HttpResponse::build(*status).json(body),
            RestError::Unavailable => unavailable_response(),
            RestError::Unexpected(cause) if unavailable(cause) => {
                tracing::warn!(error = %cause, "request failed: the database is unreachable");
                unavailable_response()
            }
            RestError::Unexpected(cause) => {
                let report = crate::crypto::random_string(12);
                tracing::error!(report_id = %report, error = ?cause, "unexpected error");
                HttpResponse::InternalServerError().json(ErrorBody {
                    message: format!(
                        "Internal Error. Details are available in the server log. Report ID: webapi-{report}"
                    ),
                    parameters: None,
                    errors: None,
                })
            }
        }
    }
}

/// 503 in the REST shape, with `Retry-After`.
pub fn unavailable_response() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
        .json(ErrorBody {
            message: UNAVAILABLE.to_owned(),
            parameters: None,
            errors: None,
        })
}

/// Whether a body extractor failed because the body did not arrive within
/// `server.body_timeout_ms` (the request observer ends a trickled body with this error).
pub fn body_timed_out(err: &actix_web::Error) -> bool {
    use actix_web::error::{JsonPayloadError, PayloadError, UrlencodedError};
    let payload = err.as_error::<PayloadError>().or_else(|| {
        match (
            err.as_error::<JsonPayloadError>(),
            err.as_error::<UrlencodedError>(),
        ) {
            (Some(JsonPayloadError::Payload(p)), _) | (_, Some(UrlencodedError::Payload(p))) => {
                Some(p)
            }
            _ => None,
        }
    });
    matches!(payload, Some(PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// The answer to a body that did not arrive in time.
pub fn body_timeout() -> RestError {
    RestError::new(
        StatusCode::REQUEST_TIMEOUT,
        "The request body did not arrive in time.",
    )
}

/// Maps body-extractor failures (JSON, form, raw payload) to the REST shape with clear 4xx codes.
pub fn payload_error(err: actix_web::error::Error, limit: usize) -> actix_web::Error {
    if body_timed_out(&err) {
        return body_timeout().into();
    }
    let status = err.as_response_error().status_code();
    let rest = match status {
        StatusCode::PAYLOAD_TOO_LARGE => RestError::with_parameters(
            status,
            "The request body is larger than %limit bytes.",
            &[("limit", &limit.to_string())],
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            RestError::new(status, "The request's Content-Type is not supported here.")
        }
        _ => RestError::unreadable_body(err),
    };
    rest.into()
}

impl From<ServiceError> for RestError {
    fn from(e: ServiceError) -> Self {
        service_error(e)
    }
}

/// A phrase as Magento's Web API answers it: the template, and its values in `parameters`.
pub(super) fn phrase_body(phrase: &Phrase) -> ErrorBody {
    let parameters = match &phrase.parameters {
        PhraseParameters::None => None,
        PhraseParameters::Positional(values) => Some(serde_json::Value::from(values.clone())),
        PhraseParameters::Named(values) => Some(serde_json::Value::Object(
            values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(v.clone())))
                .collect(),
        )),
    };
    ErrorBody {
        message: phrase.template.to_string(),
        parameters,
        errors: None,
    }
}

/// Maps a service failure to the REST shape, with Magento's input-error texts.
pub fn service_error(e: ServiceError) -> RestError {
    match e {
        ServiceError::Field(FieldError {
            field,
            value,
            reason,
        }) => match value {
            None => RestError::with_parameters(
                StatusCode::BAD_REQUEST,
                "\"%fieldName\" is required. Enter and try again.",
                &[("fieldName", field)],
            ),
            Some(value) => RestError::with_parameters(
                StatusCode::BAD_REQUEST,
                "Invalid value of \"%value\" provided for the %fieldName field.",
                &[("value", &value), ("fieldName", field), ("reason", &reason)],
            ),
        },
        ServiceError::Input(phrase) => RestError::Client {
            status: StatusCode::BAD_REQUEST,
            body: phrase_body(&phrase),
        },
        ServiceError::Invalid(m) | ServiceError::Conflict(m) | ServiceError::Refused(m) => {
            RestError::new(StatusCode::BAD_REQUEST, m)
        }
        ServiceError::NotFound(m) => RestError::new(StatusCode::NOT_FOUND, m),
        ServiceError::Endpoint(m) => RestError::new(StatusCode::BAD_GATEWAY, m),
        e if e.is_unavailable() => RestError::Unavailable,
        e @ (ServiceError::Store(_) | ServiceError::Crypto(_) | ServiceError::Password(_)) => {
            RestError::Unexpected(anyhow::Error::new(e))
        }
    }
}
