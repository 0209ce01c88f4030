//! Admin and customer token routes: sign-in for a token, a customer revoking their own tokens,
//! an admin revoking anyone's. Answers in Magento's shapes: the token as a JSON string, `true`
//! for a revocation, the input-exception shape for missing fields.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::auth::authorize;
use super::error::{ErrorBody, RestError};
use crate::domain::{AccountKind, RevocationReason};
use crate::services::authorization::Principal;
use crate::services::tokens::{ClientInfo, NO_ROLE, SIGN_IN_FAILED, SignInError};

/// `{"username", "password"}`, each kept only when it is a string (Magento treats anything
/// else as missing).
fn credentials(body: &[u8]) -> Result<(Option<String>, Option<String>), RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(RestError::unreadable_body)?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Ok((field("username"), field("password")))
}

fn required(field: &str) -> ErrorBody {
    ErrorBody {
        message: "\"%fieldName\" is required. Enter and try again.".into(),
        parameters: Some(serde_json::json!({ "fieldName": field })),
        errors: None,
    }
}

fn sign_in_error(e: SignInError) -> RestError {
    match e {
        SignInError::Missing(fields) => {
            let body = if fields.len() == 1 {
                required(fields[0])
            } else {
                ErrorBody {
                    message: "One or more input exceptions have occurred.".into(),
                    parameters: None,
                    errors: Some(fields.iter().map(|f| required(f)).collect()),
                }
            };
            RestError::Client {
                status: StatusCode::BAD_REQUEST,
                body,
            }
        }
        SignInError::Refused => RestError::new(StatusCode::UNAUTHORIZED, SIGN_IN_FAILED),
        SignInError::NoRole => RestError::new(StatusCode::UNAUTHORIZED, NO_ROLE),
        SignInError::Vetoed(reason) => RestError::new(StatusCode::UNAUTHORIZED, reason),
        SignInError::Intercepted(message) => RestError::new(StatusCode::BAD_REQUEST, message),
        SignInError::Service(e) => e.into(),
    }
}

fn client_info(req: &HttpRequest, state: &AppState) -> ClientInfo {
    let address = super::auth::client_address(req, state);
    ClientInfo {
        address,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn json<T: serde::Serialize>(value: &T) -> HttpResponse {
    super::respond::json(StatusCode::OK, value)
}

async fn sign_in(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    kind: AccountKind,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let (username, password) = credentials(&body)?;
    let client = client_info(&req, &state);
    let tokens = &state.tokens;
    let token = match kind {
        AccountKind::Admin => {
            tokens
                .create_admin_access_token(username.as_deref(), password.as_deref(), client)
                .await
        }
        AccountKind::Customer => {
            tokens
                .create_customer_access_token(username.as_deref(), password.as_deref(), client)
                .await
        }
    }
    .map_err(sign_in_error)?;
    Ok(json(&token))
}

/// Sign in as an admin user for a bearer token.
#[utoipa::path(
    post, path = "/rest/V1/integration/admin/token", tag = "tokens",
    request_body(content = Object, content_type = "application/json",
        description = "`{\"username\": \"…\", \"password\": \"…\"}`"),
    responses(
        (status = 200, description = "The token, as a JSON string", body = String),
        (status = 400, description = "A missing field", body = ErrorBody),
        (status = 401, description = "Wrong credentials, an inactive account, or a lock", body = ErrorBody),
    )
)]
pub async fn admin_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    sign_in(req, body, state, AccountKind::Admin).await
}

/// Sign in as a customer for a bearer token; observers receive `customer_login`.
#[utoipa::path(
    post, path = "/rest/V1/integration/customer/token", tag = "tokens",
    request_body(content = Object, content_type = "application/json",
        description = "`{\"username\": \"email\", \"password\": \"…\"}`"),
    responses(
        (status = 200, description = "The token, as a JSON string", body = String),
        (status = 400, description = "A missing field", body = ErrorBody),
        (status = 401, description = "Wrong credentials, an inactive account, or a lock", body = ErrorBody),
    )
)]
pub async fn customer_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    sign_in(req, body, state, AccountKind::Customer).await
}

/// Revoke every token of the calling customer.
#[utoipa::path(
    post, path = "/rest/V1/integration/customer/revoke-customer-token", tag = "tokens",
    responses(
        (status = 200, description = "`true`", body = bool),
        (status = 401, description = "Not a customer", body = ErrorBody),
    )
)]
pub async fn revoke_self(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let principal = authorize(&req, &body, &state).await?;
    let Principal::Customer { id, .. } = &*principal else {
        return Err(super::auth::refusal(
            StatusCode::UNAUTHORIZED,
            &[crate::acl::SELF.to_owned()],
        ));
    };
    state
        .tokens
        .revoke(AccountKind::Customer, *id, RevocationReason::OwnRequest)
        .await?;
    Ok(json(&true))
}

async fn revoke_other(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    kind: AccountKind,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let id = super::respond::path_id(&req)?;
    if state
        .tokens
        .revoke(kind, id, RevocationReason::Admin)
        .await?
    {
        return Ok(json(&true));
    }
    let id = id.to_string();
    Err(match kind {
        AccountKind::Admin => RestError::with_parameters(
            StatusCode::NOT_FOUND,
            "The admin user with the \"%id\" ID doesn't exist.",
            &[("id", &id)],
        ),
        AccountKind::Customer => RestError::with_parameters(
            StatusCode::NOT_FOUND,
            "No such entity with %fieldName = %fieldValue",
            &[("fieldName", "customerId"), ("fieldValue", &id)],
        ),
    })
}

/// Revoke every token of an admin user.
#[utoipa::path(
    post, path = "/rest/V1/integration/admin/{id}/revoke-tokens", tag = "tokens",
    params(("id" = i64, Path, description = "Admin user id")),
    responses(
        (status = 200, description = "`true`", body = bool),
        (status = 401, description = "Not authorized (Magento_User::acl_users)", body = ErrorBody),
        (status = 404, description = "No such admin user", body = ErrorBody),
    )
)]
pub async fn revoke_admin(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    revoke_other(req, body, state, AccountKind::Admin).await
}

/// Revoke every token of a customer.
#[utoipa::path(
    post, path = "/rest/V1/integration/customer/{id}/revoke-tokens", tag = "tokens",
    params(("id" = i64, Path, description = "Customer id")),
    responses(
        (status = 200, description = "`true`", body = bool),
        (status = 401, description = "Not authorized (Magento_Customer::manage)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    )
)]
pub async fn revoke_customer(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    revoke_other(req, body, state, AccountKind::Customer).await
}
