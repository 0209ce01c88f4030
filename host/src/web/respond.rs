//! How handlers write their answers: JSON that no cache keeps, the `id` of a path, and a
//! resource that answers GET only (others get the REST shape's 405).

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
    let raw = req.match_info().get("id").unwrap_or("");
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
