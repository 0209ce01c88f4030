//! Protecting other services: the forward-auth endpoint (nginx `auth_request`, Traefik
//! `forwardAuth`, Envoy external authorization) and the reverse proxy for routes declared
//! with an `upstream`.
//!
//! Both find the original request's route in the table of other services (a request that
//! matches none is refused: deny by default), identify the caller as the REST API does, and
//! check the route's resources. A refused guest gets 401, an identified caller without the
//! resources 403, both in Magento's JSON shape. An allowed request carries the caller's
//! identity in `X-Auth-User-Type` (`guest`, `integration`, `admin`, `customer`),
//! `X-Auth-User-Id` and `X-Auth-User-Name` (percent-encoded UTF-8): forward-auth answers them
//! to the proxy, the built-in proxy adds them to the upstream request after removing any the
//! client sent.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};

use super::AppState;
use super::auth::{Incoming, client_address, identify, permits, refusal};
use super::error::RestError;
use crate::events::{AllowedRequest, Caller, Produced};
use crate::services::authorization::Principal;
use crate::webapi::Route;

const USER_TYPE: HeaderName = HeaderName::from_static("x-auth-user-type");
const USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const USER_NAME: HeaderName = HeaderName::from_static("x-auth-user-name");

/// Headers of one connection, never forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The identity headers of a caller.
fn identity(principal: &Principal) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = vec![(USER_TYPE, HeaderValue::from_static(principal.type_name()))];
    if let Some(id) = principal.user_id() {
        out.push((USER_ID, HeaderValue::from(id)));
    }
    if let Some(name) = principal.user_name() {
        let encoded = crate::oauth::percent_encode(name);
        if let Ok(v) = HeaderValue::from_str(&encoded) {
            out.push((USER_NAME, v));
        }
    }
    out
}

/// The headers after-interceptors add to an allowed request (`X-Auth-*` only, checked by the
/// plugin host); a fail-closed one that fails refuses the request.
async fn added_headers(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    route: &Route,
    method: &str,
    path: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, RestError> {
    if !state.events.wants_after("request_allowed") {
        return Ok(Vec::new());
    }
    let caller = match principal {
        Principal::Guest => Caller::Guest,
        Principal::Integration { id, name, .. } => Caller::Integration {
            id: *id,
            name: name.clone(),
        },
        Principal::Admin { id, username, .. } => Caller::Admin {
            id: *id,
            name: username.clone(),
        },
        Principal::Customer { id, email } => Caller::Customer {
            id: *id,
            name: email.clone(),
        },
    };
    let produced = Produced::RequestAllowed(AllowedRequest {
        caller,
        method: method.to_owned(),
        path: path.split('?').next().unwrap_or(path).to_owned(),
        resources: route.resources.clone(),
        client_address: client_address(req, state),
    });
    let added = state
        .events
        .after(&produced)
        .await
        .map_err(|refusal| RestError::new(StatusCode::FORBIDDEN, refusal.message))?;
    Ok(added
        .headers
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect())
}

/// Identifies the caller of an original request and checks its route.
async fn check(
    state: &AppState,
    req: &HttpRequest,
    route: &Route,
    incoming: &Incoming<'_>,
    path: &str,
) -> Result<Arc<Principal>, RestError> {
    let principal = identify(incoming, state).await?;
    if permits(
        state,
        req,
        &principal,
        &route.resources,
        incoming.method,
        path,
    )
    .await
    {
        Ok(principal)
    } else if matches!(*principal, Principal::Guest) {
        Err(refusal(StatusCode::UNAUTHORIZED, &route.resources))
    } else {
        Err(refusal(StatusCode::FORBIDDEN, &route.resources))
    }
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `https://host` of the original request: `X-Forwarded-Proto` and `X-Forwarded-Host` when
/// the proxy sends them, else this request's `Host`.
fn origin(req: &HttpRequest) -> Option<String> {
    let proto = header_str(req, "x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .unwrap_or("http");
    let host = header_str(req, "x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .map(str::trim)
        .or_else(|| header_str(req, "host"))?;
    Some(format!("{proto}://{host}"))
}

fn no_route() -> RestError {
    RestError::new(StatusCode::FORBIDDEN, "Request does not match any route.")
}

async fn answer(
    state: &AppState,
    req: &HttpRequest,
    method: &str,
    uri: &str,
) -> Result<HttpResponse, RestError> {
    if !uri.starts_with('/') {
        return Err(RestError::with_parameters(
            StatusCode::BAD_REQUEST,
            "The original URI \"%uri\" is not a path.",
            &[("uri", uri)],
        ));
    }
    let route = state
        .routes
        .find_external(method, uri)
        .ok_or_else(no_route)?;
    let authorization = header_str(req, "authorization");
    // Only an OAuth signature covers the URL.
    let url = match authorization.map(crate::oauth::Scheme::of) {
        Some(crate::oauth::Scheme::Bearer(_)) => None,
        _ => origin(req).and_then(|o| crate::oauth::SignedUrl::parse(&format!("{o}{uri}"))),
    };
    let incoming = Incoming {
        method,
        url,
        authorization,
        // auth_request and forwardAuth send no body: only header and query parameters count.
        content_type: None,
        body: &[],
    };
    let principal = check(state, req, route, &incoming, uri).await?;
    let added = added_headers(state, req, &principal, route, method, uri).await?;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    for h in added {
        res.insert_header(h);
    }
    for h in identity(&principal) {
        res.insert_header(h);
    }
    Ok(res.finish())
}

/// `/forward-auth`: the original method and URI come from `X-Original-Method` and
/// `X-Original-URI` (nginx) or `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik).
pub async fn forward_auth(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let method =
        header_str(&req, "x-original-method").or_else(|| header_str(&req, "x-forwarded-method"));
    let uri = header_str(&req, "x-original-uri").or_else(|| header_str(&req, "x-forwarded-uri"));
    let (Some(method), Some(uri)) = (method, uri) else {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "The original request is not described: send X-Original-Method and X-Original-URI \
             (nginx) or X-Forwarded-Method and X-Forwarded-Uri (Traefik).",
        ));
    };
    answer(&state, &req, &method.to_ascii_uppercase(), uri).await
}

/// `/forward-auth/envoy/…`: Envoy's HTTP external authorization sends the original method and
/// the original path after its `path_prefix`.
pub async fn forward_auth_envoy(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let tail = req
        .path()
        .strip_prefix("/forward-auth/envoy")
        .unwrap_or("/");
    let uri = match req.query_string() {
        "" => tail.to_owned(),
        q => format!("{tail}?{q}"),
    };
    let uri = if uri.starts_with('/') {
        uri
    } else {
        format!("/{uri}")
    };
    answer(&state, &req, req.method().as_str(), &uri).await
}

/// Every request no other route took: a proxied route of another service, or 404.
pub async fn fallback(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    match proxy(&req, &body, &state).await {
        Ok(res) => res,
        Err(e) => e.error_response(),
    }
}

async fn proxy(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<HttpResponse, RestError> {
    let Some(route) = state
        .routes
        .find_external(req.method().as_str(), req.path())
        .filter(|r| r.upstream.is_some())
    else {
        return Err(RestError::not_found_route());
    };
    let incoming = Incoming::from_request(req, body, state.settings.oauth.trust_forwarded_headers);
    let principal = check(state, req, route, &incoming, req.path()).await?;
    let added = added_headers(
        state,
        req,
        &principal,
        route,
        req.method().as_str(),
        req.path(),
    )
    .await?;
    let upstream = route.upstream.as_ref().expect("filtered on upstream");
    let mut target = upstream.clone();
    let base = upstream.path().trim_end_matches('/');
    target.set_path(&format!("{base}{}", req.path()));
    target.set_query(Some(req.query_string()).filter(|q| !q.is_empty()));

    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| RestError::Unexpected(anyhow::anyhow!("method: {e}")))?;
    let mut headers = reqwest::header::HeaderMap::new();
    let dropped = connection_listed(
        req.headers()
            .get_all(header::CONNECTION)
            .map(|v| v.as_bytes()),
    );
    for (name, value) in req.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || dropped.iter().any(|d| d == n)
            || n == "host"
            || n == "content-length"
            || n.starts_with("x-auth-")
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(n.as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    for (name, value) in added.into_iter().chain(identity(&principal)) {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).expect("valid"),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).expect("valid"),
        );
    }
    let (scheme, host) = {
        let info = req.connection_info();
        (info.scheme().to_owned(), info.host().to_owned())
    };
    let peer = req.peer_addr().map(|a| a.ip().to_string());
    if let Some(peer) = peer {
        let forwarded_for = match header_str(req, "x-forwarded-for") {
            Some(prior) if state.settings.oauth.trust_forwarded_headers => {
                format!("{prior}, {peer}")
            }
            _ => peer,
        };
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&forwarded_for) {
            headers.insert("x-forwarded-for", v);
        }
    }
    if let Ok(v) = reqwest::header::HeaderValue::from_str(&scheme) {
        headers.insert("x-forwarded-proto", v);
    }
    if let Ok(v) = reqwest::header::HeaderValue::from_str(&host) {
        headers.insert("x-forwarded-host", v);
    }

    let sent = state
        .proxy
        .request(method, target)
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await;
    let upstream_res = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(RestError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "The upstream service did not answer in time.",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, upstream = %upstream, "the upstream service could not be reached");
            return Err(RestError::new(
                StatusCode::BAD_GATEWAY,
                "The upstream service could not be reached.",
            ));
        }
    };
    let status =
        StatusCode::from_u16(upstream_res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut res = HttpResponse::build(status);
    let dropped = connection_listed(
        upstream_res
            .headers()
            .get_all("connection")
            .iter()
            .map(|v| v.as_bytes()),
    );
    for (name, value) in upstream_res.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || dropped.iter().any(|d| d == n) || n == "content-length" {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            res.append_header((name, value));
        }
    }
    let bytes = upstream_res.bytes().await.map_err(|e| {
        tracing::warn!(error = %e, "the upstream answer broke off");
        RestError::new(
            StatusCode::BAD_GATEWAY,
            "The upstream service could not be reached.",
        )
    })?;
    if req.method() == Method::HEAD {
        return Ok(res.finish());
    }
    Ok(res.body(bytes))
}

/// Header names the `Connection` header values list: they belong to this hop only.
fn connection_listed<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}
