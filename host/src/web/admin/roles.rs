//! The roles pages (`Magento_User::acl_roles`): the list of roles with what each grants and
//! how many admin users hold it, the new and edit form (the resource tree editor of the
//! integration form), its save (with the admin's current password, as Magento asks), and
//! deletion of a role nobody holds.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::acl::Grants;
use crate::services::ServiceError;
use crate::services::roles::{Role, RoleInput};
use crate::web::AppState;

pub(super) struct RoleRowView {
    id: i64,
    name: String,
    resources: String,
    admins: i64,
    built_in: bool,
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
pub(super) struct RolesPage {
    page: Page,
    roles: Vec<RoleRowView>,
}

#[derive(Default)]
pub(super) struct RoleValues {
    name: String,
    all_resources: bool,
}

#[derive(Template)]
#[template(path = "admin/role_form.html")]
pub(super) struct RoleFormPage {
    page: Page,
    heading: String,
    id: Option<i64>,
    readonly: bool,
    form: RoleValues,
    tree: Vec<TreeRow>,
    errors: BTreeMap<String, String>,
}

/// What a role grants, in a few words.
fn summary(grants: &Grants) -> String {
    match grants {
        Grants::All => "All".into(),
        Grants::Some(set) if set.is_empty() => "None".into(),
        Grants::Some(set) => format!(
            "{} resource{}",
            set.len(),
            if set.len() == 1 { "" } else { "s" }
        ),
    }
}

pub(super) async fn roles_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, ROLES).await);
    let roles = match state.roles.list().await {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    let t = RolesPage {
        page: page(&req, &state, &session, "roles"),
        roles: roles
            .into_iter()
            .map(|r| RoleRowView {
                built_in: r.built_in(),
                resources: summary(&r.grants),
                id: r.id,
                name: r.name,
                admins: r.admins,
            })
            .collect(),
    };
    show(&req, &state, &t)
}

pub(super) async fn new_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, ROLES).await);
    let t = RoleFormPage {
        page: page(&req, &state, &session, "roles"),
        heading: "New Role".into(),
        id: None,
        readonly: false,
        form: RoleValues::default(),
        tree: tree_rows(&state, &|_| false),
        errors: BTreeMap::new(),
    };
    show(&req, &state, &t)
}

/// The role a page's path or form names; a missing one sends the admin back to the list.
async fn load(state: &AppState, id: Option<&str>) -> Result<Role, HttpResponse> {
    let Some(id) = id.and_then(|id| id.parse::<i64>().ok()) else {
        return Err(gone(state));
    };
    match state.roles.get(id).await {
        Ok(r) => Ok(r),
        Err(ServiceError::NotFound(_)) => Err(gone(state)),
        Err(e) => Err(failure(&e)),
    }
}

fn gone(state: &AppState) -> HttpResponse {
    redirect_with(
        state,
        "/admin/roles",
        "error",
        "This role no longer exists.",
    )
}

pub(super) async fn edit_form(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, ROLES).await);
    let role = or_answer!(load(&state, Some(&path)).await);
    let rules = role.grants.to_rules();
    let t = RoleFormPage {
        page: page(&req, &state, &session, "roles"),
        heading: if role.built_in() {
            format!("View \"{}\"", role.name)
        } else {
            format!("Edit \"{}\"", role.name)
        },
        id: Some(role.id),
        readonly: role.built_in(),
        form: RoleValues {
            all_resources: role.grants == Grants::All,
            name: role.name,
        },
        tree: tree_rows(&state, &|id| rules.iter().any(|r| r == id)),
        errors: BTreeMap::new(),
    };
    show(&req, &state, &t)
}

pub(super) async fn save(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = or_answer!(post(&req, &body, &state, ROLES).await);
    let existing = match form.get("id") {
        Some(id) => Some(or_answer!(load(&state, Some(id)).await)),
        None => None,
    };
    let input = RoleInput {
        name: form.get("name").unwrap_or("").trim().to_owned(),
        all_resources: form.get("all_resources") == Some("1"),
        resources: form.all("resource[]"),
    };
    let mut errors = BTreeMap::new();
    or_answer!(check_current_password(&state, &session, &form, &mut errors).await);
    if errors.is_empty() {
        let outcome = match &existing {
            Some(r) => state.roles.update(r.id, &input).await,
            None => state.roles.create(&input).await,
        };
        match outcome {
            Ok(role) => {
                return redirect_with(
                    &state,
                    "/admin/roles",
                    "success",
                    &format!("The role '{}' has been saved.", role.name),
                );
            }
            Err(ServiceError::Conflict(m)) => {
                errors.insert("name".into(), m);
            }
            Err(ServiceError::Invalid(m)) => {
                errors.insert("resources".into(), m);
            }
            Err(ServiceError::Field(f)) => {
                let text = match f.value {
                    None => "This is a required field.".to_owned(),
                    Some(v) => format!("\"{v}\" {}.", f.reason),
                };
                errors.insert(f.field.to_owned(), text);
            }
            Err(e) => return failure(&e),
        }
    }
    let checked = input.resources.clone();
    let mut p = page(&req, &state, &session, "roles");
    p.messages.push(Message {
        kind: "error",
        text: "The role was not saved: correct the fields below.".into(),
    });
    let t = RoleFormPage {
        page: p,
        heading: match &existing {
            Some(r) => format!("Edit \"{}\"", r.name),
            None => "New Role".into(),
        },
        id: existing.as_ref().map(|r| r.id),
        readonly: false,
        form: RoleValues {
            name: input.name,
            all_resources: input.all_resources,
        },
        tree: tree_rows(&state, &|id| checked.iter().any(|r| r == id)),
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &t)
}

pub(super) async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    or_answer!(post(&req, &body, &state, ROLES).await);
    let role = or_answer!(load(&state, Some(&path)).await);
    match state.roles.delete(role.id).await {
        Ok(r) => redirect_with(
            &state,
            "/admin/roles",
            "success",
            &format!("The role '{}' has been deleted.", r.name),
        ),
        Err(ServiceError::NotFound(_)) => gone(&state),
        Err(ServiceError::Conflict(m) | ServiceError::Invalid(m)) => {
            redirect_with(&state, "/admin/roles", "error", &m)
        }
        Err(e) => failure(&e),
    }
}
