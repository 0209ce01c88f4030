//! The REST API of admin roles (`/rest/V1/roles…`, under `Magento_User::acl_roles`) and of an
//! admin user's role (`/rest/V1/admin-users/{id}/role`, under `Magento_User::acl_users`).
//! Handlers only translate; the rules live in [`crate::services::roles`].

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::authorize;
use super::error::{ErrorBody, RestError};
use super::respond::{json, path_id};
use crate::acl::Grants;
use crate::domain::AccountKind;
use crate::services::authorization::Principal;
use crate::services::roles::{Role, RoleInput};
use crate::services::{FieldError, ServiceError};

/// A role as the API answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub id: i64,
    pub name: String,
    /// Whether it grants every resource (`Magento_Backend::all`).
    pub all_resources: bool,
    /// The granted resources, ancestors included (empty with `all_resources`).
    pub resources: Vec<String>,
    /// How many admin users hold it.
    pub admin_users: i64,
    /// Whether it is the built-in `Administrators`, which cannot change.
    pub built_in: bool,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        let built_in = r.built_in();
        let (all_resources, resources) = match r.grants {
            Grants::All => (true, Vec::new()),
            Grants::Some(set) => (false, set.into_iter().map(|r| r.to_string()).collect()),
        };
        Self {
            id: r.id,
            name: r.name,
            all_resources,
            resources,
            admin_users: r.admins,
            built_in,
        }
    }
}

/// The body of create and update (JSON).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoleBody {
    /// 1-50 characters, unique whatever the case. Required to create; on update, missing keeps
    /// the current name.
    pub name: Option<String>,
    /// Grant every resource.
    pub all_resources: bool,
    /// Resources to grant (their ancestors are granted with them).
    pub resources: Vec<String>,
}

/// The body of `PUT /V1/admin-users/{id}/role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminRoleBody {
    /// The role to give; `null` takes the admin's role away (they can no longer sign in).
    pub role_id: Option<i64>,
}

/// An admin user's role.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRoleView {
    pub admin_user_id: i64,
    pub username: String,
    /// `null` when they hold none.
    pub role: Option<RoleView>,
}

/// A JSON body, or Magento's unreadable-body error.
fn read_json<T: for<'de> Deserialize<'de>>(req: &HttpRequest, body: &[u8]) -> Result<T, RestError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(RestError::unreadable_body("send it as application/json"));
    }
    serde_json::from_slice(body).map_err(RestError::unreadable_body)
}

fn input(body: RoleBody, current: Option<&Role>) -> RoleInput {
    RoleInput {
        name: body
            .name
            .or_else(|| current.map(|r| r.name.clone()))
            .unwrap_or_default(),
        all_resources: body.all_resources,
        resources: body.resources,
    }
}

/// List the admin roles.
#[utoipa::path(
    get, path = "/rest/V1/roles", tag = "roles",
    responses(
        (status = 200, description = "Every role, by name", body = Vec<RoleView>),
        (status = 401, description = "Not authorized (Magento_User::acl_roles)", body = ErrorBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let roles: Vec<RoleView> = state
        .roles
        .list()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(json(StatusCode::OK, &roles))
}

/// Read an admin role.
#[utoipa::path(
    get, path = "/rest/V1/roles/{id}", tag = "roles",
    params(("id" = i64, Path, description = "Role id")),
    responses(
        (status = 200, description = "The role", body = RoleView),
        (status = 401, description = "Not authorized (Magento_User::acl_roles)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
    )
)]
pub async fn get(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let role = state.roles.get(path_id(&req)?).await?;
    Ok(json(StatusCode::OK, &RoleView::from(role)))
}

/// Create an admin role.
#[utoipa::path(
    post, path = "/rest/V1/roles", tag = "roles",
    request_body(content = RoleBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new role", body = RoleView),
        (status = 400, description = "A missing or invalid field, an unknown resource, or a name taken", body = ErrorBody),
        (status = 401, description = "Not authorized (Magento_User::acl_roles)", body = ErrorBody),
    )
)]
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let role = state
        .roles
        .create(&input(read_json(&req, &body)?, None))
        .await?;
    Ok(json(StatusCode::OK, &RoleView::from(role)))
}

/// Replace what an admin role grants (and its name): it applies to its admin users at their
/// next request.
#[utoipa::path(
    put, path = "/rest/V1/roles/{id}", tag = "roles",
    params(("id" = i64, Path, description = "Role id")),
    request_body(content = RoleBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The role as changed", body = RoleView),
        (status = 400, description = "An invalid field, an unknown resource, a name taken, or the built-in role", body = ErrorBody),
        (status = 401, description = "Not authorized (Magento_User::acl_roles)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
    )
)]
pub async fn update(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let id = path_id(&req)?;
    let changes: RoleBody = read_json(&req, &body)?;
    let current = state.roles.get(id).await?;
    let role = state
        .roles
        .update(id, &input(changes, Some(&current)))
        .await?;
    Ok(json(StatusCode::OK, &RoleView::from(role)))
}

/// Delete an admin role no admin user holds.
#[utoipa::path(
    delete, path = "/rest/V1/roles/{id}", tag = "roles",
    params(("id" = i64, Path, description = "Role id")),
    responses(
        (status = 200, description = "The deleted role", body = RoleView),
        (status = 400, description = "Admin users hold it, or it is the built-in role", body = ErrorBody),
        (status = 401, description = "Not authorized (Magento_User::acl_roles)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
    )
)]
pub async fn delete(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let role = state.roles.delete(path_id(&req)?).await?;
    Ok(json(StatusCode::OK, &RoleView::from(role)))
}

async fn admin_role_view(state: &AppState, id: i64) -> Result<AdminRoleView, RestError> {
    let admin = state
        .tokens
        .accounts()
        .by_id(AccountKind::Admin, id)
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!("The admin user with ID \"{id}\" doesn't exist."))
        })?;
    let role = match state.roles.of_admin(id).await? {
        Some(r) => Some(RoleView::from(state.roles.get(r.id).await?)),
        None => None,
    };
    Ok(AdminRoleView {
        admin_user_id: admin.id,
        username: admin.login,
        role,
    })
}

/// Read an admin user's role.
#[utoipa::path(
    get, path = "/rest/V1/admin-users/{id}/role", tag = "roles",
    params(("id" = i64, Path, description = "Admin user id")),
    responses(
        (status = 200, description = "The admin user and their role", body = AdminRoleView),
        (status = 401, description = "Not authorized (Magento_User::acl_users)", body = ErrorBody),
        (status = 404, description = "No such admin user", body = ErrorBody),
    )
)]
pub async fn admin_role(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    Ok(json(
        StatusCode::OK,
        &admin_role_view(&state, path_id(&req)?).await?,
    ))
}

/// Give an admin user a role, or take it away (`role_id: null`). It applies at their next
/// request. An admin user cannot change their own role.
#[utoipa::path(
    put, path = "/rest/V1/admin-users/{id}/role", tag = "roles",
    params(("id" = i64, Path, description = "Admin user id")),
    request_body(content = AdminRoleBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The admin user and their role now", body = AdminRoleView),
        (status = 400, description = "A missing field, or their own role", body = ErrorBody),
        (status = 401, description = "Not authorized (Magento_User::acl_users)", body = ErrorBody),
        (status = 404, description = "No such admin user or role", body = ErrorBody),
    )
)]
pub async fn set_admin_role(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let caller = authorize(&req, &body, &state).await?;
    let id = path_id(&req)?;
    let value: serde_json::Value = read_json(&req, &body)?;
    if value.get("role_id").is_none() {
        return Err(ServiceError::from(FieldError::required("role_id")).into());
    }
    let wanted: AdminRoleBody =
        serde_json::from_value(value).map_err(RestError::unreadable_body)?;
    if matches!(&*caller, Principal::Admin { id: own, .. } if *own == id) {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "You can't change your own role: another admin user can.",
        ));
    }
    state.roles.assign(id, wanted.role_id).await?;
    Ok(json(StatusCode::OK, &admin_role_view(&state, id).await?))
}
