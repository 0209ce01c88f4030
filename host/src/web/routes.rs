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
/// `/rest`: first the paths without a store code, then the same below `/{store}`. Static paths
/// come first (actix compares them as strings); patterns are grouped in scopes by their
/// literal prefix (`/V1/integrations` for `/V1/integrations/{id}/activate`), longest prefix
/// first and the most literal pattern first within a group, so that a request runs the regular
/// expressions of its own group only: actix tries patterns one by one, and the five before
/// `/V1/integrations/{id}` cost about 4 µs a request in the profile of a signed GET. Another
/// method on a known path answers 405, an unknown path 404, whatever group it fell into.
pub fn routes(cfg: &mut web::ServiceConfig, table: &RouteTable) {
    // Patterns and the routes (one per method) each serves.
    type Patterns<'a> = Vec<(String, Vec<&'a Route>)>;
    let mut statics: Patterns = Vec::new();
    // (literal prefix, the rest of its patterns), in the order they are tried.
    let mut groups: Vec<(String, Patterns)> = Vec::new();
    let mut own: Vec<&Route> = table.own().iter().collect();
    own.sort_by_key(|r| std::cmp::Reverse((r.is_static(), r.specificity())));
    for r in own {
        let pattern = r.actix_pattern();
        if r.is_static() {
            match statics.iter_mut().find(|(p, _)| *p == pattern) {
                Some((_, routes)) => routes.push(r),
                None => statics.push((pattern, vec![r])),
            }
            continue;
        }
        let literal = &pattern[..pattern.find('{').unwrap_or(pattern.len())];
        let cut = literal.trim_end_matches('/').len();
        let (prefix, rest) = (pattern[..cut].to_owned(), pattern[cut..].to_owned());
        let group = match groups.iter_mut().position(|(p, _)| *p == prefix) {
            Some(i) => &mut groups[i].1,
            None => {
                groups.push((prefix, Vec::new()));
                &mut groups.last_mut().expect("just pushed").1
            }
        };
        match group.iter_mut().find(|(p, _)| *p == rest) {
            Some((_, routes)) => routes.push(r),
            None => group.push((rest, vec![r])),
        }
    }
    // A longer literal prefix first: a scope takes every path below its prefix.
    groups.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.matches('/').count()));
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
    let not_found = || web::to(|| async { RestError::not_found_route().error_response() });
    cfg.service(
        web::scope("/rest")
            .configure(|scope| {
                for store in ["", "/{store}"] {
                    scope.service(get_only(&format!("{store}/schema"), schema));
                    for (pattern, routes) in &statics {
                        scope.service(resource(format!("{store}{pattern}"), routes));
                    }
                    for (prefix, patterns) in &groups {
                        let mut group = web::scope(&format!("{store}{prefix}"));
                        for (rest, routes) in patterns {
                            group = group.service(resource(rest.clone(), routes));
                        }
                        scope.service(group.default_service(not_found()));
                    }
                }
            })
            .default_service(not_found()),
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
