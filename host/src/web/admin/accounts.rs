//! Accounts: the list of admins and customers, and force sign-in (revoking their tokens).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::domain::{AccountKind, RevocationReason};
use crate::web::AppState;

pub(super) struct AccountRowView {
    id: i64,
    login: String,
    name: String,
    active: bool,
}

pub(super) struct AccountGroup {
    kind: &'static str,
    title: &'static str,
    login_label: &'static str,
    rows: Vec<AccountRowView>,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
pub(super) struct AccountsPage {
    page: Page,
    groups: Vec<AccountGroup>,
}

pub(super) async fn accounts_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
    let mut groups = Vec::new();
    for (kind, key, title, label) in [
        (AccountKind::Admin, "admin", "Admin users", "User Name"),
        (AccountKind::Customer, "customer", "Customers", "Email"),
    ] {
        let rows = match state.tokens.accounts().list(kind).await {
            Ok(r) => r,
            Err(e) => return failure(&e),
        };
        groups.push(AccountGroup {
            kind: key,
            title,
            login_label: label,
            rows: rows
                .into_iter()
                .map(|a| AccountRowView {
                    id: a.id,
                    name: format!("{} {}", a.firstname, a.lastname).trim().to_owned(),
                    login: a.login,
                    active: a.is_active,
                })
                .collect(),
        });
    }
    let t = AccountsPage {
        page: page(&req, &state, &session, "accounts"),
        groups,
    };
    show(&req, &state, &t)
}

pub(super) async fn revoke(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, _) = or_answer!(post(&req, &body, &state).await);
    let (kind, id) = path.into_inner();
    let kind = match kind.as_str() {
        "admin" => AccountKind::Admin,
        "customer" => AccountKind::Customer,
        _ => return redirect("/admin/accounts").finish(),
    };
    let Ok(id) = id.parse::<i64>() else {
        return redirect("/admin/accounts").finish();
    };
    let name = match state.tokens.accounts().by_id(kind, id).await {
        Ok(Some(a)) => a.login,
        Ok(None) => {
            return redirect_with(
                &state,
                "/admin/accounts",
                "error",
                "This account no longer exists.",
            );
        }
        Err(e) => return failure(&e),
    };
    if let Err(e) = state.tokens.revoke(kind, id, RevocationReason::Admin).await {
        return failure(&e);
    }
    if kind == AccountKind::Admin && id == session.admin.id {
        // Their own session went with their tokens.
        let mut res = redirect_with(
            &state,
            "/admin/login",
            "success",
            "You were signed out everywhere, here too.",
        );
        let _ = res.add_cookie(&removal(&state, SESSION_COOKIE));
        return res;
    }
    redirect_with(
        &state,
        "/admin/accounts",
        "success",
        &format!("{name} was signed out everywhere: every token of the account is refused."),
    )
}
