//! The admin UI at `/admin` ([S-7]): server-rendered pages following Magento's layout handles
//! (the integrations grid, the new and edit form, the permissions dialog, the tokens exchange
//! with the identity-link popup and its success callback, the tokens dialog, deletion), plus
//! a plugins page and force sign-in for accounts.
//!
//! Only HTTP lives here: sessions and form keys are `services::admin_sessions`, every change
//! goes through the services. Rules of the room: no state changes on GET; every POST carries the
//! session's form key (Magento's `form_key`; the sign-in form a double-submitted one); pages are
//! `no-store`, framed by nobody, and scripts come only from `/admin/static`. Every page works
//! without JavaScript except the popup, which then opens as a plain link.

use std::collections::BTreeMap;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::AppState;
use crate::domain::{AccountKind, RevocationReason};
use crate::domain::{IntegrationStatus, SetupType};
use crate::services::ServiceError;
use crate::services::admin_sessions::AdminSession;
use crate::services::authorization::Principal;
use crate::services::integration::{Activation, Integration, IntegrationForm, IntegrationInput};
use crate::services::tokens::{ClientInfo, SignInError};

const SESSION_COOKIE: &str = "ih_admin";
const LOGIN_COOKIE: &str = "ih_login";
const FLASH_COOKIE: &str = "ih_flash";
/// The resource every admin page needs.
const RESOURCE: &str = "Magento_Integration::integrations";
/// Magento's answer to a missing or wrong form key.
pub const INVALID_FORM_KEY: &str = "Invalid Form Key. Please refresh the page.";
/// Magento's answer to a wrong current password.
pub const WRONG_CURRENT_PASSWORD: &str =
    "The password entered for the current user is invalid. Verify the password and try again.";

/// Registers the admin pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/static/{file}", web::get().to(static_file))
            .route("/login", web::get().to(login_page))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/integration", web::get().to(home))
            .route("/integration/", web::get().to(grid))
            .route("/integration/index", web::get().to(grid))
            .route("/integration/new", web::get().to(new_form))
            .route("/integration/edit/{id}", web::get().to(edit_form))
            .route("/integration/save", web::post().to(save))
            .route("/integration/delete/{id}", web::get().to(delete_page))
            .route("/integration/delete/{id}", web::post().to(delete))
            .route(
                "/integration/permissionsDialog/{id}",
                web::get().to(permissions_dialog),
            )
            .route(
                "/integration/tokensExchange/{id}",
                web::post().to(tokens_exchange),
            )
            .route(
                "/integration/loginSuccessCallback",
                web::get().to(login_success_callback),
            )
            .route("/plugins", web::get().to(plugins_page))
            .route("/plugins/reload", web::post().to(plugins_reload))
            .route("/accounts", web::get().to(accounts_page))
            .route("/accounts/{kind}/{id}/revoke", web::post().to(revoke))
            .default_service(web::to(not_found)),
    );
}

/// A message shown at the top of a page.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: &'static str,
    pub text: String,
}

/// What the layout needs.
#[derive(Debug, Clone)]
pub struct Page {
    pub user: Option<String>,
    pub form_key: String,
    pub section: &'static str,
    pub messages: Vec<Message>,
}

fn secure_cookies(state: &AppState) -> bool {
    state
        .settings
        .server
        .base_url
        .as_str()
        .starts_with("https:")
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure_cookies(state))
        .finish()
}

fn removal<'a>(state: &AppState, name: &'a str) -> Cookie<'a> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

/// Headers of every admin page.
fn page_response(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .content_type("text/html; charset=utf-8");
    res
}

fn render(status: StatusCode, t: &impl Template) -> HttpResponse {
    match t.render() {
        Ok(html) => page_response(status).body(html),
        Err(e) => {
            tracing::error!(error = %e, "an admin page failed to render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn redirect(to: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// A redirect that shows `message` on the next page.
fn redirect_with(state: &AppState, to: &str, kind: &'static str, message: &str) -> HttpResponse {
    let value = format!("{kind}:{}", crate::oauth::percent_encode(message));
    redirect(to)
        .cookie(cookie(state, FLASH_COOKIE, value))
        .finish()
}

/// The message a redirect left, if any (the response must clear the cookie).
fn flash(req: &HttpRequest) -> Option<Message> {
    let raw = req.cookie(FLASH_COOKIE)?;
    let (kind, text) = raw.value().split_once(':')?;
    let kind = match kind {
        "success" => "success",
        "error" => "error",
        "warning" => "warning",
        _ => "notice",
    };
    let text = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(Message { kind, text })
}

/// A form body: pairs in order, so repeated names (`resource[]`) keep every value.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The value of a `Result` whose error side is an answer already (the sign-in page, a redirect
/// with a message, the error page): returns that answer from the handler.
macro_rules! or_answer {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(answer) => return answer,
        }
    };
}

/// An admin page's caller: the session, or the answer to send instead (to the sign-in page).
async fn signed_in(req: &HttpRequest, state: &AppState) -> Result<AdminSession, HttpResponse> {
    let to_login = || redirect("/admin/login").finish();
    let Some(id) = req.cookie(SESSION_COOKIE) else {
        return Err(to_login());
    };
    let session = match state.admin_sessions.find(id.value()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(redirect("/admin/login")
                .cookie(removal(state, SESSION_COOKIE))
                .finish());
        }
        Err(e) => return Err(failure(&e)),
    };
    let principal = Principal::Admin {
        id: session.admin.id,
        username: session.admin.login.clone(),
    };
    if !principal.allows([RESOURCE]) {
        return Err(page_response(StatusCode::FORBIDDEN)
            .body("Sorry, you need permissions to view this content."));
    }
    Ok(session)
}

/// The page context of a signed-in admin, with the message a redirect left.
fn page(req: &HttpRequest, state: &AppState, s: &AdminSession, section: &'static str) -> Page {
    Page {
        user: Some(s.admin.login.clone()),
        form_key: state.admin_sessions.form_key(&s.id),
        section,
        messages: flash(req).into_iter().collect(),
    }
}

/// Renders a signed-in page and clears the flash cookie it showed.
fn show(req: &HttpRequest, state: &AppState, t: &impl Template) -> HttpResponse {
    let mut res = render(StatusCode::OK, t);
    if req.cookie(FLASH_COOKIE).is_some() {
        let _ = res.add_cookie(&removal(state, FLASH_COOKIE));
    }
    res
}

/// A POST of a signed-in admin with the right form key: the session and the form.
async fn post(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<(AdminSession, Form), HttpResponse> {
    let session = signed_in(req, state).await?;
    let form = Form::parse(body);
    let ok = form
        .get("form_key")
        .is_some_and(|k| state.admin_sessions.form_key_matches(&session.id, k));
    if !ok {
        return Err(redirect_with(
            state,
            "/admin/integration/",
            "error",
            INVALID_FORM_KEY,
        ));
    }
    Ok((session, form))
}

fn failure(e: &ServiceError) -> HttpResponse {
    tracing::error!(error = %e, "an admin page failed");
    page_response(StatusCode::INTERNAL_SERVER_ERROR)
        .body("Something went wrong on our side; it was logged. Go back and try again.")
}

async fn home() -> HttpResponse {
    redirect("/admin/integration/").finish()
}

async fn not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let user = signed_in(&req, &state).await.ok();
    let t = NotFound {
        page: Page {
            user: user.as_ref().map(|s| s.admin.login.clone()),
            form_key: user
                .as_ref()
                .map(|s| state.admin_sessions.form_key(&s.id))
                .unwrap_or_default(),
            section: "",
            messages: Vec::new(),
        },
    };
    render(StatusCode::NOT_FOUND, &t)
}

#[derive(Template)]
#[template(
    source = r#"{% extends "admin/base.html" %}{% block title %}Not found{% endblock %}{% block content %}<h1>404 Error</h1><p>Page not found.</p><p><a href="/admin/integration/">Integrations</a></p>{% endblock %}"#,
    ext = "html"
)]
struct NotFound {
    page: Page,
}

async fn static_file(path: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static str, &str) = match path.as_str() {
        "admin.css" => (
            include_str!("../../static/admin.css"),
            "text/css; charset=utf-8",
        ),
        "admin.js" => (
            include_str!("../../static/admin.js"),
            "text/javascript; charset=utf-8",
        ),
        "callback.js" => (
            include_str!("../../static/callback.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sign-out

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    page: Page,
    username: String,
}

fn login_form(state: &AppState, username: &str, messages: Vec<Message>) -> HttpResponse {
    // The sign-in form's key is double-submitted: a fresh random value in a cookie, its form key
    // in the form. A page of another origin can read neither.
    let nonce = crate::crypto::random_token();
    let t = LoginPage {
        page: Page {
            user: None,
            form_key: state.admin_sessions.form_key(&nonce),
            section: "",
            messages,
        },
        username: username.to_owned(),
    };
    let mut res = render(StatusCode::OK, &t);
    let _ = res.add_cookie(&cookie(state, LOGIN_COOKIE, nonce));
    res
}

async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if signed_in(&req, &state).await.is_ok() {
        return redirect("/admin/integration/").finish();
    }
    let messages = flash(&req).into_iter().collect();
    let mut res = login_form(&state, "", messages);
    if req.cookie(FLASH_COOKIE).is_some() {
        let _ = res.add_cookie(&removal(&state, FLASH_COOKIE));
    }
    res
}

async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
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
        address: super::auth::client_address(&req, &state),
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
        Err(SignInError::Vetoed(reason)) => {
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
        Ok(session) => redirect("/admin/integration/")
            .cookie(cookie(&state, SESSION_COOKIE, session.id))
            .cookie(removal(&state, LOGIN_COOKIE))
            .finish(),
        Err(e) => failure(&e),
    }
}

async fn logout(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (session, _) = or_answer!(post(&req, &body, &state).await);
    if let Err(e) = state.admin_sessions.end(&session.id).await {
        return failure(&e);
    }
    let mut res = redirect_with(&state, "/admin/login", "success", "You have signed out.");
    let _ = res.add_cookie(&removal(&state, SESSION_COOKIE));
    res
}

// ---------------------------------------------------------------------------------------------
// The grid

struct Row {
    id: i64,
    name: String,
    status: &'static str,
    active: bool,
    insecure: bool,
    config: bool,
}

#[derive(Template)]
#[template(path = "admin/grid.html")]
struct Grid {
    page: Page,
    rows: Vec<Row>,
    any_insecure: bool,
    reset_names: Vec<String>,
}

fn status_label(s: IntegrationStatus) -> &'static str {
    match s {
        IntegrationStatus::Inactive => "Inactive",
        IntegrationStatus::Active => "Active",
        IntegrationStatus::Reset => "Reset",
    }
}

fn insecure(i: &Integration) -> bool {
    [&i.endpoint, &i.identity_link_url]
        .iter()
        .any(|u| u.to_ascii_lowercase().starts_with("http:"))
}

async fn grid(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
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

// ---------------------------------------------------------------------------------------------
// New, edit, view and save

#[derive(Default)]
struct FormValues {
    name: String,
    email: String,
    endpoint: String,
    identity_link_url: String,
    all_resources: bool,
}

struct TreeRow {
    depth: usize,
    id: String,
    title: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/form.html")]
struct EditPage {
    page: Page,
    heading: String,
    id: Option<i64>,
    readonly: bool,
    form: FormValues,
    tree: Vec<TreeRow>,
    errors: BTreeMap<String, String>,
}

fn tree_rows(state: &AppState, checked: &dyn Fn(&str) -> bool) -> Vec<TreeRow> {
    state
        .integrations
        .authorization()
        .tree()
        .walk()
        .into_iter()
        .map(|(depth, r)| TreeRow {
            depth: depth.min(9),
            checked: checked(r.id.as_str()),
            id: r.id.as_str().to_owned(),
            title: r.title.clone(),
        })
        .collect()
}

async fn new_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
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

async fn edit_form(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
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

/// The integration a page's path names; a missing one sends the admin back to the grid with a
/// notice, and a failure (the database being down) is answered as the failure it is.
async fn load(state: &AppState, id: &str) -> Result<Integration, HttpResponse> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(missing(state));
    };
    match state.integrations.get(id).await {
        Ok(i) => Ok(i),
        Err(ServiceError::NotFound(_)) => Err(missing(state)),
        Err(e) => Err(failure(&e)),
    }
}

fn missing(state: &AppState) -> HttpResponse {
    redirect_with(
        state,
        "/admin/integration/",
        "error",
        "This integration no longer exists.",
    )
}

async fn save(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let (session, form) = or_answer!(post(&req, &body, &state).await);
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
    let password_ok = match form.get("current_password").filter(|p| !p.is_empty()) {
        None => {
            errors.insert(
                "current_password".into(),
                "This is a required field.".into(),
            );
            true
        }
        Some(pw) => match state
            .tokens
            .accounts()
            .verify(AccountKind::Admin, &session.admin.login, pw)
            .await
        {
            Ok(Some(_)) => true,
            Ok(None) => false,
            Err(e) => return failure(&e),
        },
    };
    if !password_ok {
        errors.insert("current_password".into(), WRONG_CURRENT_PASSWORD.into());
    }
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
            Err(ServiceError::Field(f)) => {
                errors.insert(f.field.to_owned(), f.reason.clone());
            }
            Err(e) => return failure(&e),
        }
    }
    let mut p = page(&req, &state, &session, "integrations");
    p.messages.push(Message {
        kind: "error",
        text: "The integration was not saved: correct the fields below.".into(),
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

// ---------------------------------------------------------------------------------------------
// Delete

#[derive(Template)]
#[template(path = "admin/delete.html")]
struct DeletePage {
    page: Page,
    id: i64,
    name: String,
}

async fn delete_page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
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

async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    or_answer!(post(&req, &body, &state).await);
    let i = or_answer!(load(&state, &path).await);
    match state.integrations.delete(i.id).await {
        Ok(_) => redirect_with(
            &state,
            "/admin/integration/",
            "success",
            &format!("The integration '{}' has been deleted.", i.name),
        ),
        Err(ServiceError::Invalid(m)) => redirect_with(&state, "/admin/integration/", "error", &m),
        Err(e) => failure(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// Activation: permissions dialog, tokens exchange, tokens dialog, success callback

#[derive(Template)]
#[template(path = "admin/permissions.html")]
struct PermissionsPage {
    page: Page,
    id: i64,
    name: String,
    reauthorize: bool,
    all_resources: bool,
    resources: Vec<String>,
    endpoint: Option<String>,
    has_identity_link: bool,
    insecure: bool,
}

#[derive(serde::Deserialize)]
struct Reauthorize {
    #[serde(default)]
    reauthorize: Option<String>,
}

async fn permissions_dialog(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Reauthorize>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
    let i = or_answer!(load(&state, &path).await);
    let grants = or_answer!(
        state
            .integrations
            .selected_resources(i.id)
            .await
            .map_err(|e| failure(&e))
    );
    let tree = state.integrations.authorization().tree();
    let titles: Vec<String> = grants
        .to_rules()
        .iter()
        .map(|id| {
            tree.walk()
                .into_iter()
                .find(|(_, r)| r.id.as_str() == id)
                .map_or_else(|| id.clone(), |(_, r)| r.title.clone())
        })
        .collect();
    let t = PermissionsPage {
        page: page(&req, &state, &session, "integrations"),
        id: i.id,
        reauthorize: query.reauthorize.as_deref() == Some("1")
            || i.status == IntegrationStatus::Active,
        all_resources: matches!(grants, crate::acl::Grants::All),
        resources: titles,
        endpoint: Some(i.endpoint.clone())
            .filter(|e| !e.is_empty() && !i.identity_link_url.is_empty()),
        has_identity_link: !i.identity_link_url.is_empty(),
        insecure: insecure(&i),
        name: i.name,
    };
    show(&req, &state, &t)
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    page: Page,
    name: String,
    consumer_key: String,
    consumer_secret: String,
    access_token: String,
    access_token_secret: String,
}

#[derive(Template)]
#[template(path = "admin/exchange.html")]
struct ExchangePage {
    page: Page,
    name: String,
    identity_link: String,
}

async fn tokens_exchange(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (session, form) = or_answer!(post(&req, &body, &state).await);
    let i = or_answer!(load(&state, &path).await);
    let reauthorize = form.get("reauthorize") == Some("1") || i.status == IntegrationStatus::Active;
    match state.integrations.activate(i.id, reauthorize).await {
        Ok(Activation::IdentityLink(link)) => {
            let t = ExchangePage {
                page: page(&req, &state, &session, "integrations"),
                name: i.name,
                identity_link: link,
            };
            render(StatusCode::OK, &t)
        }
        Ok(Activation::Minted) => {
            let consumer = or_answer!(
                state
                    .oauth
                    .load_consumer(i.consumer_id)
                    .await
                    .map_err(|e| failure(&e))
            );
            let token = match state.oauth.get_access_token(i.consumer_id).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    return failure(&ServiceError::Invalid(
                        "no access token after minting".into(),
                    ));
                }
                Err(e) => return failure(&e),
            };
            let mut p = page(&req, &state, &session, "integrations");
            p.messages.push(Message {
                kind: "success",
                text: format!(
                    "The integration '{}' has been {}.",
                    i.name,
                    if reauthorize {
                        "reauthorized"
                    } else {
                        "activated"
                    }
                ),
            });
            let t = TokensPage {
                page: p,
                name: i.name,
                consumer_key: consumer.key,
                consumer_secret: consumer.secret,
                access_token: token.token,
                access_token_secret: token.secret,
            };
            render(StatusCode::OK, &t)
        }
        Err(ServiceError::Invalid(m) | ServiceError::Endpoint(m)) => {
            redirect_with(&state, "/admin/integration/", "error", &m)
        }
        Err(e) => failure(&e),
    }
}

#[derive(Template)]
#[template(path = "admin/callback.html")]
struct CallbackPage {
    message: String,
}

/// Where the integrator's identity link sends the popup when it is done: closes the popup and
/// reloads the grid. Changes nothing; it needs no session (a cross-site navigation carries no
/// `SameSite=Strict` cookie).
async fn login_success_callback() -> HttpResponse {
    render(
        StatusCode::OK,
        &CallbackPage {
            message: "The integration is activated.".into(),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Plugins

struct PluginRow {
    id: String,
    version: String,
    api_version: String,
    description: String,
    roles: String,
    events: String,
    sort_order: i32,
    calls: u64,
    failures: u64,
    quarantined: Option<u64>,
    dir: String,
    recent_failures: Vec<FailureRow>,
}

struct FailureRow {
    at: String,
    role: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin/plugins.html")]
struct PluginsPage {
    page: Page,
    enabled: bool,
    plugins: Vec<PluginRow>,
    problems: Vec<String>,
}

async fn plugins_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state).await);
    let plugins = state
        .plugins
        .list()
        .into_iter()
        .map(|p| PluginRow {
            roles: p
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            events: p.events.join(", "),
            calls: p.health.calls,
            failures: p.health.failures,
            quarantined: p.health.quarantined_for_seconds,
            recent_failures: p
                .health
                .recent_failures
                .iter()
                .rev()
                .take(10)
                .map(|f| FailureRow {
                    at: crate::clock::iso8601(f.at),
                    role: f.role.to_owned(),
                    error: f.error.clone(),
                })
                .collect(),
            id: p.id,
            version: p.version,
            api_version: p.api_version,
            description: p.description,
            sort_order: p.sort_order,
            dir: p.dir,
        })
        .collect();
    let t = PluginsPage {
        page: page(&req, &state, &session, "plugins"),
        enabled: state.plugins.enabled(),
        plugins,
        problems: state
            .plugins
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    show(&req, &state, &t)
}

async fn plugins_reload(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    or_answer!(post(&req, &body, &state).await);
    let report = state.plugins.reload().await;
    if let Err(e) = crate::declarative::sync_after_reload(
        &state.integrations,
        &state.settings.integrations.directories,
        &state.plugins,
        &report,
    )
    .await
    {
        return redirect_with(
            &state,
            "/admin/plugins",
            "error",
            &format!("Plugins reloaded; integrations not synced: {e}"),
        );
    }
    let changed = report.loaded.len() + report.reloaded.len() + report.removed.len();
    redirect_with(
        &state,
        "/admin/plugins",
        if report.problems.is_empty() {
            "success"
        } else {
            "warning"
        },
        &format!(
            "Plugins reloaded: {changed} changed, {} not loaded.",
            report.problems.len()
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Accounts: force sign-in

struct AccountRowView {
    id: i64,
    login: String,
    name: String,
    active: bool,
}

struct AccountGroup {
    kind: &'static str,
    title: &'static str,
    login_label: &'static str,
    rows: Vec<AccountRowView>,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    page: Page,
    groups: Vec<AccountGroup>,
}

async fn accounts_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
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

async fn revoke(
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
