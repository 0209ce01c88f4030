//! Activation: the permissions dialog, the tokens exchange (with the identity-link popup), the tokens dialog and the success callback.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::domain::IntegrationStatus;
use crate::services::ServiceError;
use crate::services::integration::Activation;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "admin/permissions.html")]
pub(super) struct PermissionsPage {
    page: Page,
    id: i64,
    name: String,
    reauthorize: bool,
    all_resources: bool,
    resources: Vec<String>,
    endpoint: Option<String>,
    has_identity_link: bool,
    insecure: bool,
}

#[derive(serde::Deserialize)]
pub(super) struct Reauthorize {
    #[serde(default)]
    reauthorize: Option<String>,
}

pub(super) async fn permissions_dialog(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Reauthorize>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, INTEGRATIONS).await);
    let i = or_answer!(load(&state, &path).await);
    let grants = or_answer!(
        state
            .integrations
            .selected_resources(i.id)
            .await
            .map_err(|e| failure(&e))
    );
    let tree = state.integrations.authorization().tree();
    let titles: Vec<String> = grants
        .to_rules()
        .iter()
        .map(|id| {
            tree.walk()
                .into_iter()
                .find(|(_, r)| r.id.as_str() == id)
                .map_or_else(|| id.clone(), |(_, r)| r.title.clone())
        })
        .collect();
    let t = PermissionsPage {
        page: page(&req, &state, &session, "integrations"),
        id: i.id,
        reauthorize: query.reauthorize.as_deref() == Some("1")
            || i.status == IntegrationStatus::Active,
        all_resources: matches!(grants, crate::acl::Grants::All),
        resources: titles,
        endpoint: Some(i.endpoint.clone())
            .filter(|e| !e.is_empty() && !i.identity_link_url.is_empty()),
        has_identity_link: !i.identity_link_url.is_empty(),
        insecure: insecure(&i),
        name: i.name,
    };
    show(&req, &state, &t)
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
pub(super) struct TokensPage {
    page: Page,
    name: String,
    consumer_key: String,
    consumer_secret: String,
    access_token: String,
    access_token_secret: String,
}

#[derive(Template)]
#[template(path = "admin/exchange.html")]
pub(super) struct ExchangePage {
    page: Page,
    name: String,
    identity_link: String,
}

pub(super) async fn tokens_exchange(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = or_answer!(post(&req, &body, &state, INTEGRATIONS).await);
    let i = or_answer!(load(&state, &path).await);
    let reauthorize = form.get("reauthorize") == Some("1") || i.status == IntegrationStatus::Active;
    match state.integrations.activate(i.id, reauthorize).await {
        Ok(Activation::IdentityLink(link)) => {
            let t = ExchangePage {
                page: page(&req, &state, &session, "integrations"),
                name: i.name,
                identity_link: link,
            };
            render(StatusCode::OK, &t)
        }
        Ok(Activation::Minted) => {
            let consumer = or_answer!(
                state
                    .oauth
                    .load_consumer(i.consumer_id)
                    .await
                    .map_err(|e| failure(&e))
            );
            let token = match state.oauth.get_access_token(i.consumer_id).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    return failure(&ServiceError::Invalid(
                        "no access token after minting".into(),
                    ));
                }
                Err(e) => return failure(&e),
            };
            let mut p = page(&req, &state, &session, "integrations");
            p.messages.push(Message {
                kind: "success",
                text: format!(
                    "The integration '{}' has been {}.",
                    i.name,
                    if reauthorize {
                        "reauthorized"
                    } else {
                        "activated"
                    }
                ),
            });
            let t = TokensPage {
                page: p,
                name: i.name,
                consumer_key: consumer.key,
                consumer_secret: consumer.secret,
                access_token: token.token,
                access_token_secret: token.secret,
            };
            render(StatusCode::OK, &t)
        }
        Err(ServiceError::Invalid(m) | ServiceError::Endpoint(m) | ServiceError::Refused(m)) => {
            redirect_with(&state, "/admin/integration/", "error", &m)
        }
        Err(e) => failure(&e),
    }
}

#[derive(Template)]
#[template(path = "admin/callback.html")]
pub(super) struct CallbackPage {
    message: String,
}

/// Where the integrator's identity link sends the popup when it is done: closes the popup and
/// reloads the grid. Changes nothing; it needs no session (a cross-site navigation carries no
/// `SameSite=Strict` cookie).
pub(super) async fn login_success_callback() -> HttpResponse {
    render(
        StatusCode::OK,
        &CallbackPage {
            message: "The integration is activated.".into(),
        },
    )
}
