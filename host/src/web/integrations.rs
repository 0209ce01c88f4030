//! The REST management API for integrations (`/rest/V1/integrations…`): list, read, create,
//! change, delete, activate and reauthorize, and `/integrations/me`.
//!
//! Each handler authorizes through [`super::auth::authorize`], which finds the resources of
//! the request's route in the table; handlers only translate, the rules live in the services.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::authorize;
use super::error::{ErrorBody, RestError, service_error};
use super::respond::{json, path_id};
use crate::acl::Grants;
use crate::clock::iso8601;
use crate::domain::SetupType;
use crate::services::FieldError;
use crate::services::authorization::Principal;
use crate::services::integration::{Activation, Integration, IntegrationForm, IntegrationInput};
use crate::services::search::{Filter, FilterGroup, SearchCriteria};

/// `(all_resources, resources)` as the API shows grants.
fn split_grants(grants: &Grants) -> (bool, Vec<&str>) {
    match grants {
        Grants::All => (true, Vec::new()),
        Grants::Some(set) => (false, set.iter().map(|r| r.as_str()).collect()),
    }
}

/// The calling integration, as its credentials show it (borrowed from the cached principal:
/// every signed call of `/me` answers it).
#[derive(Debug, Serialize, ToSchema)]
pub struct SelfView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub consumer_id: i64,
    /// Whether it holds every resource.
    pub all_resources: bool,
    /// Its resources, ancestors included (empty with `all_resources`).
    pub resources: Vec<&'a str>,
}

/// An integration as the API answers it (borrowed from the integration and its grants: a read
/// by id answers them from the cache without copying them).
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub email: &'a str,
    pub endpoint: &'a str,
    pub identity_link_url: &'a str,
    /// 0 inactive, 1 active, 2 reset (its configuration file changed: approve it again).
    pub status: i64,
    /// `Inactive`, `Active` or `Reset`.
    pub status_label: &'static str,
    /// `manual` (created by an admin or this API) or `config` (read-only, from a file).
    pub setup_type: &'static str,
    pub consumer_id: i64,
    /// Whether it holds every resource (`Magento_Backend::all`).
    pub all_resources: bool,
    /// The granted resources, ancestors included (empty with `all_resources`).
    pub resources: Vec<&'a str>,
    /// Whether the endpoint or identity link uses plain `http:`.
    pub not_secure: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl<'a> IntegrationView<'a> {
    fn new(i: &'a Integration, grants: &'a Grants) -> Self {
        let (all_resources, resources) = split_grants(grants);
        Self {
            not_secure: i.endpoint.starts_with("http:") || i.identity_link_url.starts_with("http:"),
            id: i.id,
            name: &i.name,
            email: &i.email,
            endpoint: &i.endpoint,
            identity_link_url: &i.identity_link_url,
            status: i.status.code(),
            status_label: i.status.label(),
            setup_type: match i.setup_type {
                SetupType::Manual => "manual",
                SetupType::Config => "config",
            },
            consumer_id: i.consumer_id,
            all_resources,
            resources,
            created_at: iso8601(i.created_at),
            updated_at: iso8601(i.updated_at),
        }
    }
}

/// A page of integrations, in Magento's search-result shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList<'a> {
    pub items: Vec<IntegrationView<'a>>,
    /// The criteria as applied: the filter groups (the `name` and `status` parameters as groups
    /// of their own), the sort orders asked for, the page size and page used.
    pub search_criteria: SearchCriteria,
    /// How many integrations match, over every page.
    pub total_count: u64,
}

/// What activation did: `identity_link` (the credentials were posted to the endpoint; send
/// the merchant to `identity_link_url`) or `minted` (the access token was created here; the
/// credentials are shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationView<'a> {
    pub activation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_link_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    pub integration: IntegrationView<'a>,
}

/// The consumer and access-token credentials, shown once.
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub access_token: String,
    pub access_token_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// The body of create and update, as JSON or a form: what the handlers read, and what the
/// OpenAPI document shows.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationBody {
    /// Unique, 1-255 characters.
    #[schema(required = true)]
    pub name: String,
    pub email: Option<String>,
    /// Where activation POSTs the credentials (`http:` or `https:`).
    pub endpoint: Option<String>,
    /// Where the merchant is sent to log in to the integrator.
    pub identity_link_url: Option<String>,
    /// Grant every resource.
    pub all_resources: bool,
    /// Resources to grant (their ancestors are granted with them). In a form, repeat
    /// `resources` (or `resources[]`).
    pub resources: Vec<String>,
}

impl From<IntegrationBody> for IntegrationForm {
    fn from(b: IntegrationBody) -> Self {
        Self {
            name: b.name,
            email: b.email,
            endpoint: b.endpoint,
            identity_link_url: b.identity_link_url,
            all_resources: b.all_resources,
            resources: b.resources,
        }
    }
}

/// An integration with its grants, for an [`IntegrationView`].
async fn with_grants(state: &AppState, i: Integration) -> Result<(Integration, Grants), RestError> {
    let grants = state.integrations.selected_resources(i.id).await?;
    Ok((i, grants))
}

/// Reads the create/update body: JSON, or `application/x-www-form-urlencoded`.
fn read_form(req: &HttpRequest, body: &[u8]) -> Result<IntegrationForm, RestError> {
    read_body(req, body).map(IntegrationForm::from)
}

fn read_body(req: &HttpRequest, body: &[u8]) -> Result<IntegrationBody, RestError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => serde_json::from_slice(body).map_err(RestError::unreadable_body),
        "application/x-www-form-urlencoded" => {
            let mut form = IntegrationBody::default();
            for (k, v) in form_urlencoded::parse(body) {
                let v = v.into_owned();
                match k.as_ref() {
                    "name" => form.name = v,
                    "email" => form.email = Some(v),
                    "endpoint" => form.endpoint = Some(v),
                    "identity_link_url" => form.identity_link_url = Some(v),
                    "all_resources" => {
                        form.all_resources = match v.as_str() {
                            "1" | "true" | "on" => true,
                            "0" | "false" | "off" | "" => false,
                            other => {
                                return Err(service_error(
                                    FieldError::invalid("all_resources", other, "is not a boolean")
                                        .into(),
                                ));
                            }
                        }
                    }
                    "resources" | "resources[]" => form.resources.push(v),
                    // OAuth protocol parameters may travel in a form body.
                    k if k.starts_with("oauth_") => {}
                    other => {
                        return Err(RestError::unreadable_body(format!(
                            "unknown field `{other}`"
                        )));
                    }
                }
            }
            Ok(form)
        }
        _ => Err(RestError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request's Content-Type is not supported here.",
        )),
    }
}

/// The calling integration and its permissions: a cheap way to check a set of credentials.
/// Any active integration may call it; guests are refused.
#[utoipa::path(
    get, path = "/rest/V1/integrations/me", tag = "integrations",
    responses(
        (status = 200, description = "The calling integration", body = SelfView),
        (status = 401, description = "Not an authenticated integration", body = ErrorBody),
    )
)]
pub async fn me(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let principal = authorize(&req, &body, &state).await?;
    let Principal::Integration { consumer_id, .. } = &*principal else {
        return Err(super::auth::refusal(
            StatusCode::UNAUTHORIZED,
            &[crate::acl::SELF.to_owned()],
        ));
    };
    state.self_answers.answer(*consumer_id, &principal, |p| {
        serde_json::to_vec(&SelfView::of(p))
    })
}

impl<'a> SelfView<'a> {
    /// The view of an integration's principal (`None` for anyone else: refused before).
    fn of(principal: &'a Principal) -> Option<Self> {
        match principal {
            Principal::Integration {
                id,
                name,
                consumer_id,
                grants,
            } => Some(SelfView {
                id: *id,
                name,
                consumer_id: *consumer_id,
                all_resources: matches!(grants, Grants::All),
                resources: split_grants(grants).1,
            }),
            _ => None,
        }
    }
}

/// List integrations: one page, filtered and sorted as Magento's search criteria ask.
#[utoipa::path(
    get, path = "/rest/V1/integrations", tag = "integrations",
    params(
        ("searchCriteria[filter_groups][0][filters][0][field]" = Option<String>, Query,
            description = "A filter's field: id (or integration_id), name, email, status, setup_type, created_at or updated_at. \
                Filters of a group are ORed, groups are ANDed; indices order them. camelCase names (filterGroups, conditionType, sortOrders, pageSize, currentPage) are read alike"),
        ("searchCriteria[filter_groups][0][filters][0][value]" = Option<String>, Query,
            description = "The value: a comma-separated list for in and nin; a `%`/`_` pattern for like and nlike (`\\` escapes them); \
                a status as 0, 1, 2 or its label; a setup type as 0, 1, manual or config; a time as `2026-12-03 08:00:00` (UTC), RFC 3339 or a date. Text compares case-insensitively"),
        ("searchCriteria[filter_groups][0][filters][0][condition_type]" = Option<String>, Query,
            description = "eq (the default), neq, like, nlike, in, nin, gt, lt, gteq, lteq, null or notnull"),
        ("searchCriteria[sort_orders][0][field]" = Option<String>, Query,
            description = "A field to sort by (as for filters); by name when no sort is given, ties broken by id"),
        ("searchCriteria[sort_orders][0][direction]" = Option<String>, Query, description = "ASC (the default) or DESC"),
        ("searchCriteria[pageSize]" = Option<u32>, Query,
            description = "Items per page: [webapi] default_page_size (20) when not given, at most maximum_page_size (300)"),
        ("searchCriteria[currentPage]" = Option<u32>, Query,
            description = "The page, from 1; a page beyond the last is empty"),
        ("name" = Option<String>, Query, description = "Only the integration with this name (case-insensitive)"),
        ("status" = Option<Vec<i64>>, Query, description = "Only these statuses; repeat the parameter for several"),
    ),
    responses(
        (status = 200, description = "A page of integrations, with the criteria applied and the count of every match", body = IntegrationList),
        (status = 400, description = "An unknown field, condition type or parameter, a bad value, or a page size over the maximum", body = ErrorBody),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let mut criteria =
        super::search::criteria_from_query(req.query_string()).map_err(service_error)?;
    // The simple parameters, as filter groups of their own.
    let mut statuses = Vec::new();
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "name" => criteria.filter_groups.push(FilterGroup {
                filters: vec![Filter {
                    field: "name".into(),
                    value: v.into_owned(),
                    condition_type: "eq".into(),
                }],
            }),
            "status" | "status[]" => statuses.push(match v.as_ref() {
                "0" | "1" | "2" => v.into_owned(),
                other => {
                    return Err(service_error(
                        FieldError::invalid("status", other, "is not 0, 1 or 2").into(),
                    ));
                }
            }),
            _ => {}
        }
    }
    if !statuses.is_empty() {
        criteria.filter_groups.push(FilterGroup {
            filters: vec![Filter {
                field: "status".into(),
                value: statuses.join(","),
                condition_type: "in".into(),
            }],
        });
    }
    let found = state.integrations.search(&criteria).await?;
    Ok(json(
        StatusCode::OK,
        &IntegrationList {
            items: found
                .items
                .iter()
                .map(|(i, grants)| IntegrationView::new(i, grants))
                .collect(),
            search_criteria: found.search_criteria,
            total_count: found.total_count,
        },
    ))
}

/// Create an integration (inactive) with its consumer and permissions.
#[utoipa::path(
    post, path = "/rest/V1/integrations", tag = "integrations",
    request_body(content = IntegrationBody, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The new integration", body = IntegrationView),
        (status = 400, description = "A missing or invalid field, or a name in use", body = ErrorBody),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
    )
)]
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let form = read_form(&req, &body)?;
    let input =
        IntegrationInput::parse(&form, SetupType::Manual).map_err(|e| service_error(e.into()))?;
    let (i, grants) = with_grants(&state, state.integrations.create(input).await?).await?;
    Ok(json(StatusCode::OK, &IntegrationView::new(&i, &grants)))
}

/// Get one integration.
#[utoipa::path(
    get, path = "/rest/V1/integrations/{id}", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses(
        (status = 200, description = "The integration", body = IntegrationView),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
        (status = 404, description = "No such integration", body = ErrorBody),
    )
)]
pub async fn get(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let id = path_id(&req)?;
    let found = state.integrations.get_with_grants(id).await?;
    state.integration_answers.answer(id, &found, |(i, grants)| {
        serde_json::to_vec(&IntegrationView::new(i, grants))
    })
}

/// Replace an integration's fields and permissions. Config integrations are read-only.
#[utoipa::path(
    put, path = "/rest/V1/integrations/{id}", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    request_body(content = IntegrationBody, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The changed integration", body = IntegrationView),
        (status = 400, description = "A bad field, a name in use, or a config integration", body = ErrorBody),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
        (status = 404, description = "No such integration", body = ErrorBody),
    )
)]
pub async fn update(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let id = path_id(&req)?;
    let form = read_form(&req, &body)?;
    let input =
        IntegrationInput::parse(&form, SetupType::Manual).map_err(|e| service_error(e.into()))?;
    let (i, grants) = with_grants(&state, state.integrations.update(id, input).await?).await?;
    Ok(json(StatusCode::OK, &IntegrationView::new(&i, &grants)))
}

/// Delete an integration with its consumer, tokens and permissions.
#[utoipa::path(
    delete, path = "/rest/V1/integrations/{id}", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses(
        (status = 200, description = "The deleted integration", body = IntegrationView),
        (status = 400, description = "A config integration (remove its file instead)", body = ErrorBody),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
        (status = 404, description = "No such integration", body = ErrorBody),
    )
)]
pub async fn delete(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let id = path_id(&req)?;
    let grants = state.integrations.selected_resources(id).await?;
    let deleted = state.integrations.delete(id).await?;
    Ok(json(
        StatusCode::OK,
        &IntegrationView::new(&deleted, &grants),
    ))
}

async fn run_activation(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    reauthorize: bool,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let id = path_id(&req)?;
    let activation = state.integrations.activate(id, reauthorize).await?;
    let (integration, grants) = with_grants(&state, state.integrations.get(id).await?).await?;
    let answer = match activation {
        Activation::IdentityLink(link) => ActivationView {
            activation: "identity_link".into(),
            identity_link_url: Some(link),
            credentials: None,
            integration: IntegrationView::new(&integration, &grants),
        },
        Activation::Minted => {
            let consumer = state.oauth.load_consumer(integration.consumer_id).await?;
            let token = state
                .oauth
                .get_access_token(integration.consumer_id)
                .await?
                .ok_or_else(|| {
                    RestError::Unexpected(anyhow::anyhow!("the minted token is gone"))
                })?;
            ActivationView {
                activation: "minted".into(),
                identity_link_url: None,
                credentials: Some(Credentials {
                    consumer_key: consumer.key,
                    consumer_secret: consumer.secret,
                    access_token: token.token,
                    access_token_secret: token.secret,
                }),
                integration: IntegrationView::new(&integration, &grants),
            }
        }
    };
    Ok(json(StatusCode::OK, &answer))
}

/// Activate an integration: post its credentials to the endpoint (when it has an endpoint and
/// an identity link), or mint its access token here.
#[utoipa::path(
    post, path = "/rest/V1/integrations/{id}/activate", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses(
        (status = 200, description = "Activation started or done", body = ActivationView),
        (status = 400, description = "Already active", body = ErrorBody),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
        (status = 404, description = "No such integration", body = ErrorBody),
        (status = 502, description = "The endpoint could not be reached or refused the credentials", body = ErrorBody),
    )
)]
pub async fn activate(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    run_activation(req, body, state, false).await
}

/// Reauthorize an integration: new tokens (never a new consumer key or secret), then as
/// activation.
#[utoipa::path(
    post, path = "/rest/V1/integrations/{id}/reauthorize", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses(
        (status = 200, description = "Reauthorization started or done", body = ActivationView),
        (status = 401, description = "Not authenticated or not authorized", body = ErrorBody),
        (status = 404, description = "No such integration", body = ErrorBody),
        (status = 502, description = "The endpoint could not be reached or refused the credentials", body = ErrorBody),
    )
)]
pub async fn reauthorize(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    run_activation(req, body, state, true).await
}
