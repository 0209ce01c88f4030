//! `/oauth/token/request` and `/oauth/token/access`: form-encoded answers, `oauth_problem`
//! errors, any HTTP method (as Magento accepts).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::oauth;
use crate::services::OauthError;
use crate::services::oauth::{SignedRequest, TokenPair};

/// The URL the client signed: scheme and host as the client addressed the server (from the
/// forwarding headers only when configured to trust them), path and query as received.
pub fn signed_url(req: &HttpRequest, trust_forwarded: bool) -> Option<oauth::SignedUrl> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if trust_forwarded {
        let info = req.connection_info();
        return oauth::SignedUrl::from_parts(info.scheme(), info.host(), path_and_query);
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match host {
        Some(host) => oauth::SignedUrl::from_parts("http", host, path_and_query),
        None => {
            let authority = req.uri().authority()?;
            oauth::SignedUrl::from_parts("http", authority.as_str(), path_and_query)
        }
    }
}

/// Reads a request's OAuth parameters, or answers the protocol's input error.
pub fn signed_request(
    req: &HttpRequest,
    body: &[u8],
    trust_forwarded: bool,
) -> Result<SignedRequest, OauthError> {
    let url = signed_url(req, trust_forwarded)
        .ok_or_else(|| OauthError::input("The request URL cannot be determined"))?;
    let authorization = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| OauthError::input("The Authorization header is not valid text"))?,
        ),
        None => None,
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let params = oauth::collect(&url, authorization, content_type, body)
        .map_err(|e| OauthError::input(e.to_string()))?;
    Ok(SignedRequest {
        method: req.method().as_str().to_owned(),
        url,
        params,
    })
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The status Magento answers an OAuth refusal with.
pub fn status_of(err: &OauthError) -> StatusCode {
    match err {
        OauthError::Input(_) | OauthError::Inputs(_) => StatusCode::BAD_REQUEST,
        OauthError::Refused(_) => StatusCode::UNAUTHORIZED,
        OauthError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        OauthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The `oauth_problem` answer of a refusal.
pub fn problem(err: &OauthError) -> HttpResponse {
    // Magento's `http_build_query(['oauth_problem' => …])`: the whole text encoded, the `&`
    // and `=` of `internal_error&message=…` too.
    let body = form(&[("oauth_problem", &err.to_string())]);
    let mut answer = HttpResponse::build(status_of(err));
    answer.content_type("application/x-www-form-urlencoded; charset=utf-8");
    if *err == OauthError::Unavailable {
        answer.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
    }
    answer.body(body)
}

fn tokens(pair: &TokenPair, confirmed: bool) -> HttpResponse {
    let mut pairs = vec![
        ("oauth_token", pair.token.as_str()),
        ("oauth_token_secret", pair.secret.as_str()),
    ];
    if confirmed {
        pairs.push(("oauth_callback_confirmed", "true"));
    }
    HttpResponse::Ok()
        .content_type("application/x-www-form-urlencoded; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(form(&pairs))
}

/// The two token exchanges, which differ only in the service call and the answer.
#[derive(Debug, Clone, Copy)]
enum Exchange {
    Request,
    Access,
}

async fn exchange(
    step: Exchange,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let trust = state.settings.oauth.trust_forwarded_headers;
    let signed = match signed_request(&req, &body, trust) {
        Ok(s) => s,
        Err(e) => return problem(&e),
    };
    let result = match step {
        Exchange::Request => state.oauth.request_token(&signed).await,
        Exchange::Access => state.oauth.access_token(&signed).await,
    };
    match result {
        Ok(pair) => tokens(&pair, matches!(step, Exchange::Request)),
        Err(e) => problem(&e),
    }
}

/// Any method on `/oauth/token/request`.
pub async fn request_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    exchange(Exchange::Request, req, body, state).await
}

/// Any method on `/oauth/token/access`.
pub async fn access_token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    exchange(Exchange::Access, req, body, state).await
}
