//! What handlers read of the path and how they write their answers: the REST route the
//! dispatcher matched ([`RestPath`]: store code, `id`, pattern), JSON that no cache keeps, and
//! a resource that answers GET only (others get the REST shape's 405).

use actix_web::HttpMessage as _;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use serde::Serialize;

use super::error::RestError;

/// A JSON answer that no cache keeps.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    uncached(status).json(value)
}

/// An answer that no cache keeps (JSON with the API's data, and often a credential).
fn uncached(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut answer = HttpResponse::build(status);
    answer.insert_header((header::CACHE_CONTROL, "no-store"));
    answer
}

/// JSON answers kept with the shared value they were written from: while a cache hands out
/// the same `Arc` for a key (an integration read by id, a caller's principal), the answer is
/// the same bytes, so it is written once per cache entry, not per request (building and
/// serializing the view was about 4% of a signed read's server CPU). A rendering holds the
/// value only weakly and is written afresh once the cache hands out another `Arc` (after a
/// write, or its time to live). Cleared when it holds [`JsonMemo::CAPACITY`] keys.
#[derive(Debug)]
pub struct JsonMemo<T> {
    map: std::sync::Mutex<std::collections::HashMap<i64, (std::sync::Weak<T>, web::Bytes)>>,
}

impl<T> Default for JsonMemo<T> {
    fn default() -> Self {
        Self {
            map: Default::default(),
        }
    }
}

impl<T> JsonMemo<T> {
    /// Keys kept at most.
    pub const CAPACITY: usize = 10_000;

    /// A 200 answer with the JSON `write` makes of `value` (`serde_json::to_vec` of its view),
    /// written before for this very `value` or now; the headers are [`json`]'s.
    pub fn answer(
        &self,
        key: i64,
        value: &std::sync::Arc<T>,
        write: impl FnOnce(&T) -> serde_json::Result<Vec<u8>>,
    ) -> Result<HttpResponse, RestError> {
        let lock = || self.map.lock().unwrap_or_else(|e| e.into_inner());
        // The weak reference keeps the value's allocation, so its address is not reused.
        let kept = lock()
            .get(&key)
            .filter(|(of, _)| std::ptr::eq(of.as_ptr(), std::sync::Arc::as_ptr(value)))
            .map(|(_, body)| body.clone());
        let body = match kept {
            Some(body) => body,
            None => {
                let body =
                    web::Bytes::from(write(value).map_err(|e| RestError::Unexpected(e.into()))?);
                let mut map = lock();
                if map.len() >= Self::CAPACITY {
                    map.clear();
                }
                map.insert(key, (std::sync::Arc::downgrade(value), body.clone()));
                body
            }
        };
        Ok(uncached(StatusCode::OK)
            .content_type("application/json")
            .body(body))
    }
}

/// The `id` path parameter, or Magento's invalid-value error.
pub fn path_id(req: &HttpRequest) -> Result<i64, RestError> {
    let matched = req.extensions();
    let raw = matched
        .get::<RestPath>()
        .and_then(|m| m.get("id"))
        .unwrap_or("");
    raw.parse::<i64>().map_err(|_| {
        RestError::with_parameters(
            StatusCode::BAD_REQUEST,
            "Invalid value of \"%value\" provided for the %fieldName field.",
            &[("value", raw), ("fieldName", "id")],
        )
    })
}

/// A resource at `path` that answers GET with `handler` and any other method with 405.
pub fn get_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(|| async {
            RestError::method_not_allowed().error_response()
        }))
}

/// A request's whole body, as actix's `Bytes` extractor reads it (the limit, decompression and
/// their errors), but without its 8 KB buffer when the request carries no body at all, as
/// nearly every signed `GET` does.
pub struct Body(pub web::Bytes);

impl actix_web::FromRequest for Body {
    type Error = actix_web::Error;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<Body, actix_web::Error>>,
        futures_util::future::MapOk<
            <web::Bytes as actix_web::FromRequest>::Future,
            fn(web::Bytes) -> Body,
        >,
    >;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        use futures_util::TryFutureExt as _;
        use futures_util::future::Either;
        if matches!(payload, actix_web::dev::Payload::None) {
            return Either::Left(std::future::ready(Ok(Body(web::Bytes::new()))));
        }
        let wrap: fn(web::Bytes) -> Body = Body;
        Either::Right(web::Bytes::from_request(req, payload).map_ok(wrap))
    }
}

/// What the REST dispatcher matched, kept in the request's extensions for the handlers: the
/// store code of `/rest/<store>/V1/…`, the route's path parameters (`id`), and its pattern as
/// the access log and the metrics name it (`/rest/V1/integrations/{id}`).
#[derive(Debug, Clone, Default)]
pub struct RestPath {
    pub store: Option<String>,
    pub params: Vec<(String, String)>,
    pub pattern: String,
    /// The matched route, as its index in the table's own routes (none for the schema).
    pub route: Option<usize>,
}

impl RestPath {
    /// A path parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "store" => self.store.as_deref(),
            _ => self
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest as _;
    use actix_web::test::TestRequest;

    use super::Body;

    /// A request without a body reads as empty without a buffer; one with a body reads it whole,
    /// through actix's own extractor (its limit and decoding).
    #[actix_web::test]
    async fn a_body_is_read_whole_and_none_is_empty() {
        // As actix's HTTP/1 decoder hands over a request without a body.
        let req = TestRequest::default().to_http_request();
        let mut payload = actix_web::dev::Payload::None;
        let Body(empty) = Body::from_request(&req, &mut payload)
            .await
            .expect("a body");
        assert!(empty.is_empty());
        let (req, mut payload) = TestRequest::post()
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"name\":\"x\"}")
            .to_http_parts();
        let Body(body) = Body::from_request(&req, &mut payload)
            .await
            .expect("a body");
        assert_eq!(&body[..], b"{\"name\":\"x\"}");
        let (req, mut payload) = TestRequest::post()
            .app_data(actix_web::web::PayloadConfig::new(4))
            .set_payload("too long")
            .to_http_parts();
        assert!(Body::from_request(&req, &mut payload).await.is_err());
    }

    /// An answer is written once per shared value: again for the same `Arc`, afresh for
    /// another one under the same key (the cache read it again), with `json`'s headers.
    #[actix_web::test]
    async fn an_answer_is_written_once_per_shared_value() {
        use std::sync::Arc;

        use actix_web::body::MessageBody as _;

        let memo = super::JsonMemo::<String>::default();
        let written = std::cell::Cell::new(0);
        let answer = |value: &Arc<String>| {
            let response = memo
                .answer(7, value, |v| {
                    written.set(written.get() + 1);
                    serde_json::to_vec(&serde_json::json!({ "name": v }))
                })
                .expect("an answer");
            assert_eq!(
                response.headers().get("content-type").unwrap(),
                "application/json"
            );
            assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
            response.into_body().try_into_bytes().expect("a body")
        };
        let first = Arc::new("a".to_owned());
        let body = answer(&first);
        assert_eq!(&body[..], br#"{"name":"a"}"#);
        let again = answer(&first);
        assert_eq!(again.as_ptr(), body.as_ptr(), "the same bytes");
        assert_eq!(written.get(), 1);
        // Read again: another value, even if equal, and one that changed.
        assert_eq!(&answer(&Arc::new("a".to_owned()))[..], br#"{"name":"a"}"#);
        assert_eq!(&answer(&Arc::new("b".to_owned()))[..], br#"{"name":"b"}"#);
        assert_eq!(written.get(), 3);
        // The memo keeps its keys bounded.
        for key in 0..super::JsonMemo::<String>::CAPACITY as i64 + 1 {
            memo.answer(key, &first, serde_json::to_vec)
                .expect("an answer");
        }
        assert!(memo.map.lock().unwrap().len() <= super::JsonMemo::<String>::CAPACITY);
    }
}
