//! The request observer every request passes: its id (`X-Request-Id`), one access-log line,
//! the metrics, and the limits on the head and the declared body.

use std::sync::Arc;
use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};

use super::AppState;
use super::error::RestError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Size of the request head as received: request line and headers.
fn head_size(req: &ServiceRequest) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    req.headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
}

/// Headers that decide who asks or what is asked for: sent twice, a proxy in front may have
/// acted on the other one, so the request is refused rather than decided on either.
const DECIDING: &[&str] = &[
    "Authorization",
    "Host",
    "Content-Type",
    "Content-Encoding",
    "X-Original-URI",
    "X-Original-Method",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
];

/// The forwarding headers that decide the client's address and the signed URL when
/// `oauth.trust_forwarded_headers` is on.
const FORWARDED: &[&str] = &[
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
];

/// The first deciding header the request carries more than once.
fn ambiguous_header(req: &ServiceRequest, trust_forwarded: bool) -> Option<&'static str> {
    let headers = req.headers();
    let twice = |name: &&&str| headers.get_all(**name).nth(1).is_some();
    DECIDING
        .iter()
        .find(twice)
        .or_else(|| FORWARDED.iter().filter(|_| trust_forwarded).find(twice))
        .copied()
}

/// A `Content-Encoding` the server cannot decode (it decodes gzip and deflate).
fn unsupported_encoding(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_ENCODING)?;
    let text = value.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" | "gzip" | "x-gzip" | "deflate" => None,
        _ => Some(text),
    }
}

/// Whether every percent-escape of a query string decodes to UTF-8 (and the rest is).
fn query_is_utf8(query: &str) -> bool {
    if !query.contains('%') {
        return true;
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(query).collect();
    std::str::from_utf8(&decoded).is_ok()
}

/// Whether the request announces a body (a length above zero, or chunks).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The body, ended with a timeout error when it has not all arrived within `limit` of now: a
/// client trickling it never holds a worker's request for longer.
fn timed_payload(
    payload: actix_web::dev::Payload,
    limit: std::time::Duration,
) -> actix_web::dev::Payload {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + limit;
    let stream = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(actix_web::error::PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the body did not arrive in time",
                ))),
                None,
            )),
        }
    });
    actix_web::dev::Payload::Stream {
        payload: Box::pin(stream),
    }
}

/// An error answer in the shape of the path's protocol: OAuth's form-encoded `oauth_problem`
/// under `/oauth/`, the REST error shape everywhere else.
fn in_protocol_shape(path: &str, err: RestError) -> actix_web::HttpResponse {
    if path.starts_with("/oauth/") {
        let problem = match &err {
            RestError::Client { body, .. } => fill(&body.message, body.parameters.as_ref()),
            other => other.to_string(),
        };
        actix_web::HttpResponse::build(err.status_code())
            .content_type("application/x-www-form-urlencoded; charset=utf-8")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("oauth_problem", &problem)
                    .finish(),
            )
    } else {
        err.error_response()
    }
}

/// A message with its `%name` placeholders filled in.
fn fill(message: &str, parameters: Option<&serde_json::Value>) -> String {
    let mut out = message.to_owned();
    if let Some(serde_json::Value::Object(map)) = parameters {
        for (k, v) in map {
            out = out.replace(&format!("%{k}"), v.as_str().unwrap_or_default());
        }
    }
    out
}

/// An error answer that actix itself wrote (an extractor's refusal, a body that does not
/// decode) in plain text, rewritten in the protocol's shape with a message for a client
/// developer; `None` for every answer the server wrote itself.
fn reshaped(
    res: &ServiceResponse<impl MessageBody>,
    path: &str,
    max_body: usize,
) -> Option<actix_web::HttpResponse> {
    let error = res.response().error()?;
    let ours = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json")
                || ct.starts_with("application/x-www-form-urlencoded")
        });
    if ours
        || !(path.starts_with("/rest/")
            || path.starts_with("/oauth/")
            || path.starts_with("/forward-auth"))
    {
        return None;
    }
    let status = res.status();
    let encoding = res
        .request()
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity");
    let err = match (error.as_error::<actix_web::error::PayloadError>(), encoding) {
        _ if super::error::body_timed_out(error) => super::error::body_timeout(),
        (Some(actix_web::error::PayloadError::Overflow), _) => RestError::with_parameters(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than %limit bytes.",
            &[("limit", &max_body.to_string())],
        ),
        (Some(_), Some(encoding)) => RestError::with_parameters(
            StatusCode::BAD_REQUEST,
            "The request body is not valid %encoding data.",
            &[("encoding", &encoding)],
        ),
        (Some(_), None) => RestError::new(
            StatusCode::BAD_REQUEST,
            "The request body could not be read completely.",
        ),
        (None, _) if status.is_server_error() => RestError::new(status, "Internal Error."),
        (None, _) => RestError::with_parameters(
            status,
            "The request could not be read: %reason",
            &[("reason", &error.to_string())],
        ),
    };
    Some(in_protocol_shape(path, err))
}

fn request_id(req: &ServiceRequest) -> Arc<str> {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(Arc::from)
        .unwrap_or_else(|| crate::crypto::random_string(20).into())
}

/// Request ids, one log line per request, metrics, and the head and declared-body limits.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.path().to_owned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (max_head, max_body, body_timeout) = state
        .as_ref()
        .map(|s| {
            (
                s.settings.server.max_header_bytes,
                s.settings.server.max_body_bytes,
                s.settings.server.body_timeout_ms,
            )
        })
        .unwrap_or((usize::MAX, usize::MAX, 0));

    let declared_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let trust_forwarded = state
        .as_ref()
        .is_some_and(|s| s.settings.oauth.trust_forwarded_headers);
    let refusal = if let Some(name) = ambiguous_header(&req, trust_forwarded) {
        Some(RestError::with_parameters(
            StatusCode::BAD_REQUEST,
            "The request has more than one %header header.",
            &[("header", name)],
        ))
    } else if let Some(encoding) = unsupported_encoding(&req) {
        Some(RestError::with_parameters(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request's Content-Encoding %encoding is not supported: send gzip, deflate or none.",
            &[("encoding", &encoding)],
        ))
    } else if !query_is_utf8(req.query_string()) {
        Some(RestError::new(
            StatusCode::BAD_REQUEST,
            "The query string is not valid UTF-8 once percent-decoded.",
        ))
    } else if head_size(&req) > max_head {
        Some(RestError::with_parameters(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request headers are larger than %limit bytes.",
            &[("limit", &max_head.to_string())],
        ))
    } else if declared_body.is_some_and(|n| n > max_body as u64) {
        Some(RestError::with_parameters(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than %limit bytes.",
            &[("limit", &max_body.to_string())],
        ))
    } else {
        None
    };

    let mut res = match refusal {
        Some(err) => {
            let response = in_protocol_shape(&path, err);
            req.into_response(response).map_into_right_body()
        }
        None => {
            let mut req = req;
            if body_timeout > 0 && has_body(&req) {
                let payload = req.take_payload();
                req.set_payload(timed_payload(
                    payload,
                    std::time::Duration::from_millis(body_timeout),
                ));
            }
            let res = crate::telemetry::with_request_id(id.clone(), next.call(req)).await?;
            match reshaped(&res, &path, max_body) {
                Some(response) => res.into_response(response).map_into_right_body(),
                None => res.map_into_left_body(),
            }
        }
    };

    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    // REST routes are matched by the route table (`routes::dispatch`), which names the pattern.
    let rest = res
        .request()
        .extensions()
        .get::<super::respond::RestPath>()
        .map(|m| m.pattern.clone());
    let route = rest
        .or_else(|| res.request().match_pattern())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    crate::telemetry::access(&crate::telemetry::Access {
        request_id: &id,
        method: method.as_str(),
        path: &path,
        status,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
        route: &route,
    });
    if let Some(state) = &state {
        state
            .metrics
            .record(method.as_str(), route, status, elapsed.as_secs_f64());
    }
    Ok(res)
}
