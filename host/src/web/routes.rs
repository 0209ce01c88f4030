//! The REST Web API's routes: every built-in route of the route table registered (also under
//! `/rest/<store>/V1/…`) with the handler it names, and the OpenAPI document at `/rest/schema`,
//! derived from the handlers' own annotations and the types they answer.

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, web};
use utoipa::OpenApi;

use super::AppState;
use super::auth::check_store;
use super::error::{ErrorBody, RestError};
use super::integrations::{
    self, ActivationView, Credentials, IntegrationBody, IntegrationList, IntegrationView, SelfView,
};
use super::respond::RestPath;
use crate::webapi::RouteTable;

/// Runs the handler a built-in route table entry names.
async fn run(
    name: &str,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    use super::{plugins, roles, tokens};
    match name {
        "integrations.me" => integrations::me(req, body, state).await,
        "integrations.list" => integrations::list(req, body, state).await,
        "integrations.create" => integrations::create(req, body, state).await,
        "integrations.get" => integrations::get(req, body, state).await,
        "integrations.update" => integrations::update(req, body, state).await,
        "integrations.delete" => integrations::delete(req, body, state).await,
        "integrations.activate" => integrations::activate(req, body, state).await,
        "integrations.reauthorize" => integrations::reauthorize(req, body, state).await,
        "tokens.admin" => tokens::admin_token(req, body, state).await,
        "tokens.customer" => tokens::customer_token(req, body, state).await,
        "tokens.revoke_self" => tokens::revoke_self(req, body, state).await,
        "tokens.revoke_admin" => tokens::revoke_admin(req, body, state).await,
        "tokens.revoke_customer" => tokens::revoke_customer(req, body, state).await,
        "plugins.list" => plugins::list(req, body, state).await,
        "plugins.reload" => plugins::reload(req, body, state).await,
        "roles.list" => roles::list(req, body, state).await,
        "roles.create" => roles::create(req, body, state).await,
        "roles.get" => roles::get(req, body, state).await,
        "roles.update" => roles::update(req, body, state).await,
        "roles.delete" => roles::delete(req, body, state).await,
        "roles.admin_role" => roles::admin_role(req, body, state).await,
        "roles.set_admin_role" => roles::set_admin_role(req, body, state).await,
        other => Err(RestError::Unexpected(anyhow::anyhow!(
            "the built-in route table names an unknown handler `{other}`"
        ))),
    }
}

/// Whether the built-in table names only handlers [`run`] knows (checked at start and by a
/// unit test, so that a typo in `webapi/routes.toml` cannot reach a request).
pub fn check_handlers(table: &RouteTable) -> Result<(), String> {
    const KNOWN: [&str; 22] = [
        "integrations.me",
        "integrations.list",
        "integrations.create",
        "integrations.get",
        "integrations.update",
        "integrations.delete",
        "integrations.activate",
        "integrations.reauthorize",
        "tokens.admin",
        "tokens.customer",
        "tokens.revoke_self",
        "tokens.revoke_admin",
        "tokens.revoke_customer",
        "plugins.list",
        "plugins.reload",
        "roles.list",
        "roles.create",
        "roles.get",
        "roles.update",
        "roles.delete",
        "roles.admin_role",
        "roles.set_admin_role",
    ];
    for r in table.own() {
        let name = r.handler.as_deref().unwrap_or_default();
        if !KNOWN.contains(&name) {
            return Err(format!(
                "the built-in route table names an unknown handler `{name}`"
            ));
        }
    }
    Ok(())
}

/// Registers the REST API at `/rest`: every path below it goes to [`dispatch`], which matches
/// it against the route table segment by segment. actix's own router would try the patterns
/// one by one, each a regular expression (a signed GET of `/V1/integrations/{id}` spent about 5%
/// of its server CPU there).
pub fn routes(cfg: &mut web::ServiceConfig, table: &RouteTable) {
    if let Err(e) = check_handlers(table) {
        panic!("{e}");
    }
    cfg.service(web::scope("/rest").default_service(web::to(dispatch)));
}

/// Answers a request below `/rest`: the OpenAPI document at `[/<store>]/schema`, a route of the
/// table at `[/<store>]/V1/…`; another method on a known path 405, anything else 404.
async fn dispatch(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let below = req.path().strip_prefix("/rest").unwrap_or_default();
    let first = below
        .strip_prefix('/')
        .and_then(|p| p.split('/').next())
        .unwrap_or_default();
    // `/rest/V1/…` and `/rest/schema` name no store; anything else does.
    let (store, path) = if first == "V1" || first == "schema" {
        (None, below)
    } else {
        (
            Some(first),
            &below[1 + first.len().min(below.len().saturating_sub(1))..],
        )
    };
    // No empty segment, no trailing slash: as actix's `{name}` patterns, which need a value.
    if store == Some("") || path.is_empty() || path.ends_with('/') || path.contains("//") {
        return RestError::not_found_route().error_response();
    }
    let store_pattern = if store.is_some() { "/{store}" } else { "" };
    if path == "/schema" {
        if req.method() != actix_web::http::Method::GET {
            return RestError::method_not_allowed().error_response();
        }
        req.extensions_mut().insert(RestPath {
            store: store.map(str::to_owned),
            params: Vec::new(),
            pattern: format!("/rest{store_pattern}/schema"),
            route: None,
        });
        return schema(req, state)
            .await
            .unwrap_or_else(|e| e.error_response());
    }
    let routes = state.routes.clone();
    let Some(route) = routes.find_own(req.method().as_str(), path) else {
        return if routes.knows_own_path(path) {
            RestError::method_not_allowed().error_response()
        } else {
            RestError::not_found_route().error_response()
        };
    };
    let matched = RestPath {
        store: store.map(str::to_owned),
        params: route
            .params(path)
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
        pattern: format!("/rest{store_pattern}{}", route.pattern()),
        route: routes.own().iter().position(|r| std::ptr::eq(r, route)),
    };
    req.extensions_mut().insert(matched);
    run(
        route.handler.as_deref().unwrap_or_default(),
        req,
        body,
        state,
    )
    .await
    .unwrap_or_else(|e| e.error_response())
}

/// `GET /rest/schema`: the OpenAPI document of the REST API.
pub async fn schema(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    check_store(&req, &state)?;
    Ok(HttpResponse::Ok().json(ApiDoc::openapi()))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "integration-host REST API",
        description = "Admin and customer tokens, and management of integrations. Sign a request \
            with OAuth 1.0a (HMAC-SHA256) using an active integration's consumer and access \
            token, or send an admin or customer token as `Authorization: Bearer`. Each \
            operation names the ACL resource it needs; the integration operations need \
            Magento_Integration::integrations, the role operations Magento_User::acl_roles. \
            An admin token reaches what the admin's role grants, as the role is when the \
            request is made. Paths also work under /rest/<store>/V1/."
    ),
    paths(
        integrations::me, integrations::list, integrations::create, integrations::get,
        integrations::update, integrations::delete, integrations::activate,
        integrations::reauthorize,
        super::tokens::admin_token, super::tokens::customer_token, super::tokens::revoke_self,
        super::tokens::revoke_admin, super::tokens::revoke_customer,
        super::plugins::list, super::plugins::reload,
        super::roles::list, super::roles::get, super::roles::create, super::roles::update,
        super::roles::delete, super::roles::admin_role, super::roles::set_admin_role
    ),
    components(schemas(SelfView, IntegrationView, IntegrationList, IntegrationBody, ActivationView, Credentials, ErrorBody,
        super::plugins::PluginsView, super::plugins::ReloadView,
        super::roles::RoleView, super::roles::RoleBody, super::roles::AdminRoleBody,
        super::roles::AdminRoleView,
        crate::services::search::SearchCriteria, crate::services::search::FilterGroup,
        crate::services::search::Filter, crate::services::search::SortOrder)),
    modifiers(&Security),
    tags(
        (name = "integrations", description = "Integrations and their activation"),
        (name = "tokens", description = "Admin and customer bearer tokens"),
        (name = "plugins", description = "WebAssembly plugins"),
        (name = "roles", description = "Admin roles: what each admin user may reach")
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "oauth1",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "OAuth 1.0a (RFC 5849): `OAuth oauth_consumer_key=…, oauth_token=…, \
                 oauth_signature_method=\"HMAC-SHA256\", oauth_timestamp=…, oauth_nonce=…, \
                 oauth_signature=…`",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An admin or customer token from /rest/V1/integration/*/token",
                    ))
                    .build(),
            ),
        );
        let either = || {
            ["oauth1", "bearer"]
                .map(|s| {
                    utoipa::openapi::security::SecurityRequirement::new(s, Vec::<String>::new())
                })
                .to_vec()
        };
        for (name, path) in openapi.paths.paths.iter_mut() {
            // Signing in needs no credentials.
            let open = name.ends_with("/token");
            for op in [
                &mut path.get,
                &mut path.post,
                &mut path.put,
                &mut path.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.security = if open { None } else { Some(either()) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handler_the_built_in_table_names_exists() {
        let table = RouteTable::load(&[], &crate::acl::ResourceTree::builtin()).unwrap();
        assert_eq!(check_handlers(&table), Ok(()));
        assert!(table.knows_own_path("/V1/integrations/7"));
        assert!(!table.knows_own_path("/V1/integrations/7/nothing"));
    }
}
