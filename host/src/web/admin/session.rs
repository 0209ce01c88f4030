//! Signing in and out: the sign-in page and form (with Magento's lockout through the token service), and sign-out.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::services::tokens::{ClientInfo, SignInError};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "admin/login.html")]
pub(super) struct LoginPage {
    page: Page,
    username: String,
}

pub(super) fn login_form(state: &AppState, username: &str, messages: Vec<Message>) -> HttpResponse {
    // The sign-in form's key is double-submitted: a fresh random value in a cookie, its form key
    // in the form. A page of another origin can read neither.
    let nonce = crate::crypto::random_token();
    let t = LoginPage {
        page: Page {
            user: None,
            form_key: state.admin_sessions.form_key(&nonce),
            section: "",
            messages,
            nav: Nav::default(),
        },
        username: username.to_owned(),
    };
    let mut res = render(StatusCode::OK, &t);
    let _ = res.add_cookie(&cookie(state, LOGIN_COOKIE, nonce));
    res
}

pub(super) async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if signed_in(&req, &state, ANY).await.is_ok() {
        return redirect("/admin/").finish();
    }
    let messages = flash(&req).into_iter().collect();
    let mut res = login_form(&state, "", messages);
    if req.cookie(FLASH_COOKIE).is_some() {
        let _ = res.add_cookie(&removal(&state, FLASH_COOKIE));
    }
    res
}

pub(super) async fn login(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = Form::parse(&body);
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let key_ok = match (req.cookie(LOGIN_COOKIE), form.get("form_key")) {
        (Some(nonce), Some(key)) => state.admin_sessions.form_key_matches(nonce.value(), key),
        _ => false,
    };
    if !key_ok {
        let msg = Message {
            kind: "error",
            text: INVALID_FORM_KEY.into(),
        };
        return login_form(&state, &username, vec![msg]);
    }
    let client = ClientInfo {
        address: crate::web::auth::client_address(&req, &state),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let account = match state
        .tokens
        .sign_in_admin(Some(&username), form.get("password"), client)
        .await
    {
        Ok(a) => a,
        Err(SignInError::Service(e)) => return failure(&e),
        Err(SignInError::NoRole) => {
            let msg = Message {
                kind: "error",
                text: crate::services::tokens::NO_ROLE.into(),
            };
            return login_form(&state, &username, vec![msg]);
        }
        Err(SignInError::Vetoed(reason) | SignInError::Intercepted(reason)) => {
            let msg = Message {
                kind: "error",
                text: reason,
            };
            return login_form(&state, &username, vec![msg]);
        }
        Err(_) => {
            let msg = Message {
                kind: "error",
                text: crate::services::tokens::SIGN_IN_FAILED.into(),
            };
            return login_form(&state, &username, vec![msg]);
        }
    };
    match state.admin_sessions.start(account).await {
        Ok(session) => redirect("/admin/")
            .cookie(cookie(&state, SESSION_COOKIE, session.id))
            .cookie(removal(&state, LOGIN_COOKIE))
            .finish(),
        Err(e) => failure(&e),
    }
}

pub(super) async fn logout(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, _) = or_answer!(post(&req, &body, &state, ANY).await);
    if let Err(e) = state.admin_sessions.end(&session.id).await {
        return failure(&e);
    }
    let mut res = redirect_with(&state, "/admin/login", "success", "You have signed out.");
    let _ = res.add_cookie(&removal(&state, SESSION_COOKIE));
    res
}
