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
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
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
}
