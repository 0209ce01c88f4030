//! Who sent a request, and whether the route table lets them through: the one authentication
//! path of the REST handlers, the forward-auth endpoint and the proxy.
//!
//! As Magento's Web API does it: `Authorization: Bearer` with an admin or customer token (a
//! JWT or an opaque token), or with an integration access token when
//! `oauth.allow_integration_bearer` is set; OAuth 1.0a parameters (header, query or form body)
//! signed with an integration's access token; anything else, including a bearer token that
//! names no one, is a guest. A signed request whose signature, token or nonce fails is refused
//! outright with the OAuth problem. The route's resources then decide; a refusal answers
//! `The consumer isn't authorized to access %resources.`

use std::sync::Arc;

use actix_web::HttpMessage as _;
use actix_web::HttpRequest;
use actix_web::http::{StatusCode, header};

use super::AppState;
use super::error::{ErrorBody, RestError, phrase_body};
use crate::oauth::{self, Scheme};
use crate::services::OauthError;
use crate::services::authorization::{self, Principal, RequestFacts};
use crate::services::oauth::SignedRequest;

/// The parts of a request that authentication reads, wherever they come from (the request
/// itself, or the headers a proxy forwarded to `/forward-auth`).
#[derive(Debug)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The URL as the client addressed it: what an OAuth signature covers.
    pub url: Option<oauth::SignedUrl>,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// The request as this server received it.
    pub fn from_request(req: &'a HttpRequest, body: &'a [u8], trust_forwarded: bool) -> Self {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Self {
            method: req.method().as_str(),
            // Only an OAuth signature covers the URL.
            url: match authorization.map(Scheme::of) {
                Some(Scheme::Bearer(_)) => None,
                _ => super::oauth::signed_url(req, trust_forwarded),
            },
            authorization,
            content_type: req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            body,
        }
    }
}

/// A phrase in the REST error shape: positional values as a list, named ones as an object.
fn oauth_refusal(e: OauthError) -> RestError {
    match e {
        OauthError::Internal => {
            RestError::Unexpected(anyhow::anyhow!("authentication failed: {e}"))
        }
        OauthError::Unavailable => RestError::Unavailable,
        // Magento's Web API answers the phrase's template with its parameters; several input
        // errors under its aggregate message.
        OauthError::Input(ref phrase) | OauthError::Refused(ref phrase) => RestError::Client {
            status: super::oauth::status_of(&e),
            body: phrase_body(phrase),
        },
        OauthError::Inputs(ref phrases) => RestError::Client {
            status: super::oauth::status_of(&e),
            body: ErrorBody {
                message: "One or more input exceptions have occurred.".into(),
                parameters: None,
                errors: Some(phrases.iter().map(phrase_body).collect()),
            },
        },
    }
}

/// Who sent the request.
pub async fn identify(
    incoming: &Incoming<'_>,
    state: &AppState,
) -> Result<Arc<Principal>, RestError> {
    if let Some(Scheme::Bearer(token)) = incoming.authorization.map(Scheme::of) {
        let token = token.trim();
        if let Some(user) = state.tokens.bearer_principal(token).await? {
            return Ok(user);
        }
        if state.oauth.allows_integration_bearer()
            && let Some(consumer) = state.oauth.bearer_consumer(token).await?
        {
            return Ok(state.integrations.principal(consumer).await?);
        }
        return Ok(Arc::new(Principal::Guest));
    }
    let url = incoming.url.clone().ok_or_else(|| {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "The request URL cannot be determined",
        )
    })?;
    let params = oauth::collect(
        &url,
        incoming.authorization,
        incoming.content_type,
        incoming.body,
    )
    .map_err(|e| oauth_refusal(OauthError::input(e.to_string())))?;
    if !params.is_oauth() {
        return Ok(Arc::new(Principal::Guest));
    }
    let signed = SignedRequest {
        method: incoming.method.to_owned(),
        url,
        params,
    };
    let consumer = state
        .oauth
        .authenticate(&signed)
        .await
        .map_err(oauth_refusal)?;
    Ok(state.integrations.principal(consumer).await?)
}

/// Magento's refusal of a caller who lacks a route's resources, with the status to answer.
pub fn refusal(status: StatusCode, resources: &[String]) -> RestError {
    RestError::with_parameters(
        status,
        "The consumer isn't authorized to access %resources.",
        &[("resources", &resources.join(", "))],
    )
}

/// A store code in the path must be the configured one or `all`.
pub fn check_store(req: &HttpRequest, state: &AppState) -> Result<(), RestError> {
    let matched = req.extensions();
    match matched
        .get::<super::respond::RestPath>()
        .and_then(|m| m.store.as_deref())
    {
        Some(code) if code != state.settings.server.store_code && code != "all" => {
            Err(RestError::with_parameters(
                StatusCode::BAD_REQUEST,
                "The store that was requested wasn't found. Verify the store and try again.",
                &[("store", code)],
            ))
        }
        _ => Ok(()),
    }
}

/// Authenticates a REST request and requires the resources its route declares.
pub async fn authorize(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<Arc<Principal>, RestError> {
    check_store(req, state)?;
    // The route the dispatcher matched (`routes::dispatch`), not matched again.
    let matched = req
        .extensions()
        .get::<super::respond::RestPath>()
        .and_then(|m| m.route);
    let route = matched
        .and_then(|i| state.routes.own().get(i))
        .ok_or_else(|| {
            RestError::Unexpected(anyhow::anyhow!(
                "no route table entry for {} {}",
                req.method(),
                req.path()
            ))
        })?;
    let incoming = Incoming::from_request(req, body, state.settings.oauth.trust_forwarded_headers);
    let principal = identify(&incoming, state).await?;
    if permits(
        state,
        req,
        &principal,
        &route.resources,
        req.method().as_str(),
        req.path(),
    )
    .await
    {
        Ok(principal)
    } else {
        Err(refusal(StatusCode::UNAUTHORIZED, &route.resources))
    }
}

/// The client's address: the forwarded one when `oauth.trust_forwarded_headers` is set,
/// otherwise the peer's.
pub fn client_address(req: &HttpRequest, state: &AppState) -> Option<String> {
    if state.settings.oauth.trust_forwarded_headers {
        req.connection_info()
            .realip_remote_addr()
            .map(str::to_owned)
    } else {
        req.peer_addr().map(|a| ip_text(a.ip()))
    }
}

/// An address as text, IPv4 written directly: the standard formatter, built for widths and
/// padding, cost a permission-resolver call more than building the rest of its request.
fn ip_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            text
        }
        v6 => v6.to_string(),
    }
}

/// Whether `principal` may call a route that requires `resources` (the rule lives in
/// [`crate::services::authorization::permits`]). `method` and `path` are the request's as the
/// client sent it (the original request's for forward-auth).
pub async fn permits(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    resources: &[String],
    method: &str,
    path: &str,
) -> bool {
    authorization::permits(&state.plugins, principal, resources, || RequestFacts {
        method,
        path: path.split('?').next().unwrap_or(path),
        client_address: client_address(req, state),
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Every octet value in every position, and IPv6, as the standard formatter writes them.
    #[test]
    fn addresses_read_as_the_standard_formatter_writes_them() {
        for octet in 0..=255u8 {
            for position in 0..4 {
                let mut octets = [1, 20, 255, 0];
                octets[position] = octet;
                let ip = IpAddr::V4(Ipv4Addr::from(octets));
                assert_eq!(super::ip_text(ip), ip.to_string());
            }
        }
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(super::ip_text(v6), "::1");
    }
}
