//! The REST Web API's routes: every built-in route of the route table registered (also under
//! `/rest/<store>/V1/…`) with the handler it names, and the OpenAPI document at `/rest/schema`,
//! derived from the handlers' own annotations and the types they answer.

use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use utoipa::OpenApi;

use super::AppState;
use super::auth::check_store;
use super::error::{ErrorBody, RestError};
use super::integrations::{
    self, ActivationView, Credentials, IntegrationBody, IntegrationList, IntegrationView, SelfView,
};
use super::respond::get_only;
use crate::webapi::{Route, RouteTable};

/// The handler a built-in route table entry names.
fn handler(name: &str) -> Option<actix_web::Route> {
    use super::{plugins, tokens};
    Some(match name {
        "integrations.me" => web::route().to(integrations::me),
        "integrations.list" => web::route().to(integrations::list),
        "integrations.create" => web::route().to(integrations::create),
        "integrations.get" => web::route().to(integrations::get),
        "integrations.update" => web::route().to(integrations::update),
        "integrations.delete" => web::route().to(integrations::delete),
        "integrations.activate" => web::route().to(integrations::activate),
        "integrations.reauthorize" => web::route().to(integrations::reauthorize),
        "tokens.admin" => web::route().to(tokens::admin_token),
        "tokens.customer" => web::route().to(tokens::customer_token),
        "tokens.revoke_self" => web::route().to(tokens::revoke_self),
        "tokens.revoke_admin" => web::route().to(tokens::revoke_admin),
        "tokens.revoke_customer" => web::route().to(tokens::revoke_customer),
        "plugins.list" => web::route().to(plugins::list),
        "plugins.reload" => web::route().to(plugins::reload),
        _ => return None,
    })
}

/// Registers every route of the built-in table, and the OpenAPI document, in a scope at
/// `/rest`: first the paths without a store code, static ones (matched by plain comparison)
/// before patterns, the most literal first as actix takes the first that matches; then the same below
/// `/{store}`. Another method on a known path answers 405.
pub fn routes(cfg: &mut web::ServiceConfig, table: &RouteTable) {
    let mut patterns: Vec<(String, Vec<&Route>)> = Vec::new();
    let mut own: Vec<&Route> = table.own().iter().collect();
    // Static patterns first: actix compares them as strings, and a static pattern is always
    // more specific than a dynamic one that matches the same path.
    own.sort_by_key(|r| std::cmp::Reverse((r.is_static(), r.specificity())));
    for r in own {
        let pattern = r.actix_pattern();
        match patterns.iter_mut().find(|(p, _)| *p == pattern) {
            Some((_, routes)) => routes.push(r),
            None => patterns.push((pattern, vec![r])),
        }
    }
    let resource = |path: String, routes: &[&Route]| {
        let mut resource = web::resource(path);
        for r in routes {
            let name = r.handler.as_deref().unwrap_or_default();
            let route = handler(name).unwrap_or_else(|| {
                panic!("the built-in route table names an unknown handler `{name}`")
            });
            resource = resource.route(match r.method.as_str() {
                "*" => route,
                m => route.method(m.parse().expect("route methods are valid")),
            });
        }
        resource.default_service(web::to(|| async {
            RestError::method_not_allowed().error_response()
        }))
    };
    cfg.service(
        web::scope("/rest")
            .configure(|scope| {
                scope.service(get_only("/schema", schema));
                for (pattern, routes) in &patterns {
                    scope.service(resource(pattern.clone(), routes));
                }
                scope.service(get_only("/{store}/schema", schema));
                for (pattern, routes) in &patterns {
                    scope.service(resource(format!("/{{store}}{pattern}"), routes));
                }
            })
            .default_service(web::to(|| async {
                RestError::not_found_route().error_response()
            })),
    );
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
            Magento_Integration::integrations. Paths also work under /rest/<store>/V1/."
    ),
    paths(
        integrations::me, integrations::list, integrations::create, integrations::get,
        integrations::update, integrations::delete, integrations::activate,
        integrations::reauthorize,
        super::tokens::admin_token, super::tokens::customer_token, super::tokens::revoke_self,
        super::tokens::revoke_admin, super::tokens::revoke_customer,
        super::plugins::list, super::plugins::reload
    ),
    components(schemas(SelfView, IntegrationView, IntegrationList, IntegrationBody, ActivationView, Credentials, ErrorBody,
        super::plugins::PluginsView, super::plugins::ReloadView)),
    modifiers(&Security),
    tags(
        (name = "integrations", description = "Integrations and their activation"),
        (name = "tokens", description = "Admin and customer bearer tokens"),
        (name = "plugins", description = "WebAssembly plugins")
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
