//! The REST Web API's routes: every built-in route of the route table registered (also under
//! `/rest/<store>/V1/…`) with the handler it names, and the OpenAPI document at `/rest/schema`,
//! derived from the handlers' own annotations and the types they answer.

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, web};
use futures_util::future::LocalBoxFuture;
use utoipa::OpenApi;

use super::AppState;
use super::auth::check_store;
use super::error::{ErrorBody, RestError};
use super::integrations::{
    self, ActivationView, Credentials, IntegrationBody, IntegrationList, IntegrationView, SelfView,
};
use super::respond::{Body, RestPath};
use crate::webapi::RouteTable;

/// Runs the handler a built-in route table entry names. Each handler's future is boxed on its
/// own: a `match` over the handlers' futures is as large as the largest (about 19 KB in a
/// release build, the write handlers' plugin calls), and actix moved that whole state into its
/// box for every request, a signed `GET` of 2.5 KB included (about 0.5 µs of copying a request).
async fn run(
    name: &str,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    use super::{plugins, roles, tokens};
    type Answer = LocalBoxFuture<'static, Result<HttpResponse, RestError>>;
    let handler: Answer = match name {
        "integrations.me" => Box::pin(integrations::me(req, body, state)),
        "integrations.list" => Box::pin(integrations::list(req, body, state)),
        "integrations.create" => Box::pin(integrations::create(req, body, state)),
        "integrations.get" => Box::pin(integrations::get(req, body, state)),
        "integrations.update" => Box::pin(integrations::update(req, body, state)),
        "integrations.delete" => Box::pin(integrations::delete(req, body, state)),
        "integrations.activate" => Box::pin(integrations::activate(req, body, state)),
        "integrations.reauthorize" => Box::pin(integrations::reauthorize(req, body, state)),
        "tokens.admin" => Box::pin(tokens::admin_token(req, body, state)),
        "tokens.customer" => Box::pin(tokens::customer_token(req, body, state)),
        "tokens.revoke_self" => Box::pin(tokens::revoke_self(req, body, state)),
        "tokens.revoke_admin" => Box::pin(tokens::revoke_admin(req, body, state)),
        "tokens.revoke_customer" => Box::pin(tokens::revoke_customer(req, body, state)),
        "plugins.list" => Box::pin(plugins::list(req, body, state)),
        "plugins.reload" => Box::pin(plugins::reload(req, body, state)),
        "roles.list" => Box::pin(roles::list(req, body, state)),
        "roles.create" => Box::pin(roles::create(req, body, state)),
        "roles.get" => Box::pin(roles::get(req, body, state)),
        "roles.update" => Box::pin(roles::update(req, body, state)),
        "roles.delete" => Box::pin(roles::delete(req, body, state)),
        "roles.admin_role" => Box::pin(roles::admin_role(req, body, state)),
        "roles.set_admin_role" => Box::pin(roles::set_admin_role(req, body, state)),
        other => {
            return Err(RestError::Unexpected(anyhow::anyhow!(
                "the built-in route table names an unknown handler `{other}`"
            )));
        }
    };
    handler.await
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
async fn dispatch(req: HttpRequest, Body(body): Body, state: web::Data<AppState>) -> HttpResponse {
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

    /// The size of the future an async handler function returns.
    fn future_size<F, A, B, C, Fut>(_: &F) -> usize
    where
        F: Fn(A, B, C) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// The dispatcher's future holds a box of the handler's, not the largest handler's state:
    /// actix moves it whole into its own box for every request.
    #[test]
    fn the_dispatchers_future_stays_small() {
        let dispatcher = future_size(&dispatch);
        let largest = future_size(&super::super::plugins::reload);
        assert!(dispatcher <= 1024, "{dispatcher} bytes");
        assert!(
            largest > 2 * dispatcher,
            "{largest} against {dispatcher} bytes"
        );
    }
}
