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
    let (max_head, max_body) = state
        .as_ref()
        .map(|s| {
            (
                s.settings.server.max_header_bytes,
                s.settings.server.max_body_bytes,
            )
        })
        .unwrap_or((usize::MAX, usize::MAX));

    let declared_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let refusal = if head_size(&req) > max_head {
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
            let response = err.error_response();
            req.into_response(response).map_into_right_body()
        }
        None => crate::telemetry::with_request_id(id.clone(), next.call(req))
            .await?
            .map_into_left_body(),
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
