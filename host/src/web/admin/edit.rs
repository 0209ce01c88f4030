//! The new, edit and view form of an integration, its save, and its deletion.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::domain::SetupType;
use crate::services::ServiceError;
use crate::services::integration::{IntegrationForm, IntegrationInput};
use crate::web::AppState;

#[derive(Default)]
pub(super) struct FormValues {
    name: String,
    email: String,
    endpoint: String,
    identity_link_url: String,
    all_resources: bool,
}

#[derive(Template)]
#[template(path = "admin/form.html")]
pub(super) struct EditPage {
    page: Page,
    heading: String,
    id: Option<i64>,
    readonly: bool,
    form: FormValues,
    tree: Vec<TreeRow>,
    errors: BTreeMap<String, String>,
}

pub(super) async fn new_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, INTEGRATIONS).await);
    let t = EditPage {
        page: page(&req, &state, &session, "integrations"),
        heading: "New Integration".into(),
        id: None,
        readonly: false,
        form: FormValues::default(),
        tree: tree_rows(&state, &|_| false),
        errors: BTreeMap::new(),
    };
    show(&req, &state, &t)
}

pub(super) async fn edit_form(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, INTEGRATIONS).await);
    let integration = or_answer!(load(&state, &path).await);
    let grants = or_answer!(
        state
            .integrations
            .selected_resources(integration.id)
            .await
            .map_err(|e| failure(&e))
    );
    let all = matches!(grants, crate::acl::Grants::All);
    let rules = grants.to_rules();
    let t = EditPage {
        page: page(&req, &state, &session, "integrations"),
        heading: if integration.is_config() {
            format!("View \"{}\"", integration.name)
        } else {
            format!("Edit \"{}\"", integration.name)
        },
        id: Some(integration.id),
        readonly: integration.is_config(),
        form: FormValues {
            name: integration.name.clone(),
            email: integration.email.clone(),
            endpoint: integration.endpoint.clone(),
            identity_link_url: integration.identity_link_url.clone(),
            all_resources: all,
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
    let (session, form) = or_answer!(post(&req, &body, &state, INTEGRATIONS).await);
    let id = form.get("id").and_then(|v| v.parse::<i64>().ok());
    let values = FormValues {
        name: form.get("name").unwrap_or("").trim().to_owned(),
        email: form.get("email").unwrap_or("").trim().to_owned(),
        endpoint: form.get("endpoint").unwrap_or("").trim().to_owned(),
        identity_link_url: form
            .get("identity_link_url")
            .unwrap_or("")
            .trim()
            .to_owned(),
        all_resources: form.get("all_resources") == Some("1"),
    };
    let resources = form.all("resource[]");
    let mut errors = BTreeMap::new();
    // A plugin's refusal: shown above the form in its own words.
    let mut refused: Option<String> = None;
    let existing = match id {
        Some(id) => match state.integrations.get(id).await {
            Ok(i) if i.is_config() => {
                return redirect_with(
                    &state,
                    "/admin/integration/",
                    "error",
                    &format!(
                        "The integration '{}' is declared in a configuration file and cannot be changed here.",
                        i.name
                    ),
                );
            }
            Ok(i) => Some(i),
            Err(ServiceError::NotFound(_)) => return missing(&state),
            Err(e) => return failure(&e),
        },
        None => None,
    };
    or_answer!(check_current_password(&state, &session, &form, &mut errors).await);
    let input_form = IntegrationForm {
        name: values.name.clone(),
        email: Some(values.email.clone()).filter(|e| !e.is_empty()),
        endpoint: Some(values.endpoint.clone()).filter(|e| !e.is_empty()),
        identity_link_url: Some(values.identity_link_url.clone()).filter(|e| !e.is_empty()),
        all_resources: values.all_resources,
        resources: if values.all_resources {
            Vec::new()
        } else {
            resources.clone()
        },
    };
    let input = match IntegrationInput::parse(&input_form, SetupType::Manual) {
        Ok(i) => Some(i),
        Err(e) => {
            errors.insert(e.field.to_owned(), e.reason.clone());
            None
        }
    };
    if let (true, Some(input)) = (errors.is_empty(), input) {
        let name = input.name.as_str().to_owned();
        let outcome = match &existing {
            Some(i) => state.integrations.update(i.id, input).await,
            None => state.integrations.create(input).await,
        };
        match outcome {
            Ok(_) => {
                return redirect_with(
                    &state,
                    "/admin/integration/",
                    "success",
                    &format!("The integration '{name}' has been saved."),
                );
            }
            Err(ServiceError::Conflict(m)) => {
                errors.insert("name".into(), m);
            }
            Err(ServiceError::Invalid(m)) => {
                errors.insert("resources".into(), m);
            }
            Err(ServiceError::Refused(m)) => refused = Some(m),
            Err(ServiceError::Field(f)) => {
                errors.insert(f.field.to_owned(), f.reason.clone());
            }
            Err(e) => return failure(&e),
        }
    }
    let mut p = page(&req, &state, &session, "integrations");
    p.messages.push(Message {
        kind: "error",
        text: refused
            .unwrap_or_else(|| "The integration was not saved: correct the fields below.".into()),
    });
    let t = EditPage {
        page: p,
        heading: match &existing {
            Some(i) => format!("Edit \"{}\"", i.name),
            None => "New Integration".into(),
        },
        id,
        readonly: false,
        tree: tree_rows(&state, &|r| resources.iter().any(|x| x == r)),
        form: values,
        errors,
    };
    render(StatusCode::UNPROCESSABLE_ENTITY, &t)
}

#[derive(Template)]
#[template(path = "admin/delete.html")]
pub(super) struct DeletePage {
    page: Page,
    id: i64,
    name: String,
}

pub(super) async fn delete_page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, INTEGRATIONS).await);
    let i = or_answer!(load(&state, &path).await);
    if i.is_config() {
        return redirect_with(
            &state,
            "/admin/integration/",
            "error",
            &format!(
                "The integration '{}' is declared in a configuration file and cannot be deleted here.",
                i.name
            ),
        );
    }
    let t = DeletePage {
        page: page(&req, &state, &session, "integrations"),
        id: i.id,
        name: i.name,
    };
    show(&req, &state, &t)
}

pub(super) async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    or_answer!(post(&req, &body, &state, INTEGRATIONS).await);
    let i = or_answer!(load(&state, &path).await);
    match state.integrations.delete(i.id).await {
        Ok(_) => redirect_with(
            &state,
            "/admin/integration/",
            "success",
            &format!("The integration '{}' has been deleted.", i.name),
        ),
        Err(ServiceError::Invalid(m) | ServiceError::Refused(m)) => {
            redirect_with(&state, "/admin/integration/", "error", &m)
        }
        Err(e) => failure(&e),
    }
}
