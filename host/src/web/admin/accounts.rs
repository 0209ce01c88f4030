//! Accounts: the list of admins (with their roles) and customers, setting an admin's role, and
//! force sign-in (revoking an account's tokens). Each part shows to the admins whose role
//! grants it: admin users `Magento_User::acl_users`, customers `Magento_Customer::manage`.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::domain::{AccountKind, RevocationReason};
use crate::services::ServiceError;
use crate::web::AppState;

pub(super) struct AccountRowView {
    id: i64,
    login: String,
    name: String,
    active: bool,
    /// The admin's role (admins only).
    role: Option<String>,
    /// Every role's name, and whether it is this admin's (admins only).
    roles: Vec<(String, bool)>,
}

pub(super) struct AccountGroup {
    kind: &'static str,
    title: &'static str,
    login_label: &'static str,
    with_roles: bool,
    rows: Vec<AccountRowView>,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
pub(super) struct AccountsPage {
    page: Page,
    groups: Vec<AccountGroup>,
}

/// The resource the accounts of a kind need.
fn resource_of(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Admin => ADMIN_USERS,
        AccountKind::Customer => CUSTOMERS,
    }
}

pub(super) async fn accounts_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, ACCOUNTS).await);
    match groups(&state, &session).await {
        Ok(groups) => {
            let t = AccountsPage {
                page: page(&req, &state, &session, "accounts"),
                groups,
            };
            show(&req, &state, &t)
        }
        Err(e) => failure(&e),
    }
}

async fn groups(state: &AppState, session: &Signed) -> Result<Vec<AccountGroup>, ServiceError> {
    let mut groups = Vec::new();
    for (kind, key, title, label) in [
        (AccountKind::Admin, "admin", "Admin users", "User Name"),
        (AccountKind::Customer, "customer", "Customers", "Email"),
    ] {
        if !session.allows(resource_of(kind)) {
            continue;
        }
        let rows = state.tokens.accounts().list(kind).await?;
        let with_roles = kind == AccountKind::Admin;
        let (mut held, names) = if with_roles {
            let names: Vec<String> = state
                .roles
                .list()
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect();
            (state.roles.names_by_admin().await?, names)
        } else {
            Default::default()
        };
        groups.push(AccountGroup {
            kind: key,
            title,
            login_label: label,
            with_roles,
            rows: rows
                .into_iter()
                .map(|a| {
                    let role = held.remove(&a.id);
                    AccountRowView {
                        id: a.id,
                        name: format!("{} {}", a.firstname, a.lastname).trim().to_owned(),
                        login: a.login,
                        active: a.is_active,
                        roles: names
                            .iter()
                            .map(|n| (n.clone(), role.as_deref() == Some(n.as_str())))
                            .collect(),
                        role,
                    }
                })
                .collect(),
        });
    }
    Ok(groups)
}

/// The account a path names, by kind and id; `None` for anything else.
fn account_path(kind: &str, id: &str) -> Option<(AccountKind, i64)> {
    let kind = match kind {
        "admin" => AccountKind::Admin,
        "customer" => AccountKind::Customer,
        _ => return None,
    };
    Some((kind, id.parse().ok()?))
}

pub(super) async fn revoke(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (kind, id) = path.into_inner();
    let Some((kind, id)) = account_path(&kind, &id) else {
        return redirect("/admin/accounts").finish();
    };
    let (session, _) = or_answer!(post(&req, &body, &state, &[resource_of(kind)]).await);
    let name = match state.tokens.accounts().by_id(kind, id).await {
        Ok(Some(a)) => a.login,
        Ok(None) => return gone(&state),
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

fn gone(state: &AppState) -> HttpResponse {
    redirect_with(
        state,
        "/admin/accounts",
        "error",
        "This account no longer exists.",
    )
}

/// `POST /admin/accounts/admin/{id}/role`: gives an admin the role named in the form (empty:
/// none). An admin cannot take their own role away or change it (another admin must), so that
/// nobody locks themselves out by a slip.
pub(super) async fn set_role(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = or_answer!(post(&req, &body, &state, &[ADMIN_USERS]).await);
    let Ok(id) = path.parse::<i64>() else {
        return redirect("/admin/accounts").finish();
    };
    if id == session.admin.id {
        return redirect_with(
            &state,
            "/admin/accounts",
            "error",
            "You can't change your own role: another admin user can.",
        );
    }
    let login = match state.tokens.accounts().by_id(AccountKind::Admin, id).await {
        Ok(Some(a)) => a.login,
        Ok(None) => return gone(&state),
        Err(e) => return failure(&e),
    };
    let wanted = form.get("role").unwrap_or("").trim();
    let role = if wanted.is_empty() {
        None
    } else {
        match state.roles.by_name(wanted).await {
            Ok(r) => Some(r),
            Err(ServiceError::NotFound(m)) => {
                return redirect_with(&state, "/admin/accounts", "error", &m);
            }
            Err(e) => return failure(&e),
        }
    };
    match state.roles.assign(id, role.as_ref().map(|r| r.id)).await {
        Ok(()) => {}
        Err(ServiceError::NotFound(_)) => return gone(&state),
        Err(e) => return failure(&e),
    }
    let text = match role {
        Some(r) => format!("{login} now has the role {}.", r.name),
        None => format!("{login} has no role now and cannot sign in."),
    };
    redirect_with(&state, "/admin/accounts", "success", &text)
}
