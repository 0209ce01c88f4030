//! The integrations grid.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::domain::IntegrationStatus;
use crate::web::AppState;

pub(super) struct Row {
    id: i64,
    name: String,
    status: &'static str,
    active: bool,
    insecure: bool,
    config: bool,
}

#[derive(Template)]
#[template(path = "admin/grid.html")]
pub(super) struct Grid {
    page: Page,
    rows: Vec<Row>,
    any_insecure: bool,
    reset_names: Vec<String>,
}

pub(super) fn status_label(s: IntegrationStatus) -> &'static str {
    match s {
        IntegrationStatus::Inactive => "Inactive",
        IntegrationStatus::Active => "Active",
        IntegrationStatus::Reset => "Reset",
    }
}

pub(super) async fn grid(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
    let list = or_answer!(state.integrations.list().await.map_err(|e| failure(&e)));
    let rows: Vec<Row> = list
        .iter()
        .map(|i| Row {
            id: i.id,
            name: i.name.clone(),
            status: status_label(i.status),
            active: i.status == IntegrationStatus::Active,
            insecure: insecure(i),
            config: i.is_config(),
        })
        .collect();
    let t = Grid {
        page: page(&req, &state, &session, "integrations"),
        any_insecure: rows.iter().any(|r| r.insecure),
        reset_names: list
            .iter()
            .filter(|i| i.is_config() && i.status == IntegrationStatus::Reset)
            .map(|i| i.name.clone())
            .collect(),
        rows,
    };
    show(&req, &state, &t)
}
