//! What every admin page shares: cookies and flash messages, rendering and redirects, the
//! form reader, the signed-in session and the POST check (session and form key), the failure
//! page, the 404 page and the static files.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::services::ServiceError;
use crate::services::admin_sessions::AdminSession;
use crate::services::authorization::Principal;
use crate::services::integration::Integration;
use crate::web::AppState;

pub(super) const SESSION_COOKIE: &str = "ih_admin";
pub(super) const LOGIN_COOKIE: &str = "ih_login";
pub(super) const FLASH_COOKIE: &str = "ih_flash";
/// What the integration pages need.
pub(super) const INTEGRATIONS: &[&str] = &["Magento_Integration::integrations"];
/// What the plugins page needs.
pub(super) const PLUGINS: &[&str] = &["IntegrationHost_Plugins::manage"];
/// What the admin users' part of the accounts page, and setting an admin's role, need.
pub(super) const ADMIN_USERS: &str = "Magento_User::acl_users";
/// What the customers' part of the accounts page needs.
pub(super) const CUSTOMERS: &str = "Magento_Customer::manage";
/// The accounts page: either part.
pub(super) const ACCOUNTS: &[&str] = &[ADMIN_USERS, CUSTOMERS];
/// What the roles pages need.
pub(super) const ROLES: &[&str] = &["Magento_User::acl_roles"];
/// Any signed-in admin.
pub(super) const ANY: &[&str] = &[];

/// Magento's answer to a missing or wrong form key.
pub const INVALID_FORM_KEY: &str = "Invalid Form Key. Please refresh the page.";
/// Magento's answer to a wrong current password.
pub const WRONG_CURRENT_PASSWORD: &str =
    "The password entered for the current user is invalid. Verify the password and try again.";

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
    /// The sections the admin's role reaches (the others are not shown).
    pub nav: Nav,
}

/// Which sections of the admin an admin's role reaches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nav {
    pub integrations: bool,
    pub plugins: bool,
    pub accounts: bool,
    pub roles: bool,
}

impl Nav {
    pub(super) fn of(principal: &Principal) -> Self {
        let any = |resources: &[&str]| resources.iter().any(|r| principal.allows([*r]));
        Self {
            integrations: any(INTEGRATIONS),
            plugins: any(PLUGINS),
            accounts: any(ACCOUNTS),
            roles: any(ROLES),
        }
    }

    /// The first section the admin reaches, where signing in and `/admin` lead.
    pub(super) fn home(&self) -> Option<&'static str> {
        [
            (self.integrations, "/admin/integration/"),
            (self.accounts, "/admin/accounts"),
            (self.roles, "/admin/roles"),
            (self.plugins, "/admin/plugins"),
        ]
        .into_iter()
        .find_map(|(reached, path)| reached.then_some(path))
    }
}

/// A signed-in admin: the session, and what their role grants now.
pub(super) struct Signed {
    pub(super) session: AdminSession,
    pub(super) principal: std::sync::Arc<Principal>,
    pub(super) nav: Nav,
}

impl std::ops::Deref for Signed {
    type Target = AdminSession;
    fn deref(&self) -> &AdminSession {
        &self.session
    }
}

impl Signed {
    /// Whether the admin's role grants `resource`.
    pub(super) fn allows(&self, resource: &str) -> bool {
        self.principal.allows([resource])
    }
}

pub(super) fn secure_cookies(state: &AppState) -> bool {
    state
        .settings
        .server
        .base_url
        .as_str()
        .starts_with("https:")
}

pub(super) fn cookie<'a>(state: &AppState, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure_cookies(state))
        .finish()
}

pub(super) fn removal<'a>(state: &AppState, name: &'a str) -> Cookie<'a> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

/// Headers of every admin page.
pub(super) fn page_response(status: StatusCode) -> actix_web::HttpResponseBuilder {
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

pub(super) fn render(status: StatusCode, t: &impl Template) -> HttpResponse {
    match t.render() {
        Ok(html) => page_response(status).body(html),
        Err(e) => {
            tracing::error!(error = %e, "an admin page failed to render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

pub(super) fn redirect(to: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// A redirect that shows `message` on the next page.
pub(super) fn redirect_with(
    state: &AppState,
    to: &str,
    kind: &'static str,
    message: &str,
) -> HttpResponse {
    let value = format!("{kind}:{}", crate::oauth::percent_encode(message));
    redirect(to)
        .cookie(cookie(state, FLASH_COOKIE, value))
        .finish()
}

/// The message a redirect left, if any (the response must clear the cookie).
pub(super) fn flash(req: &HttpRequest) -> Option<Message> {
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
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(super) fn all(&self, name: &str) -> Vec<String> {
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
pub(super) use or_answer;

/// An admin page's caller: the session of an active admin whose role grants any of `needs`
/// (nothing: any admin), or the answer to send instead (the sign-in page, or Magento's refusal).
/// The role is read at each request (through the token service's cache), so a change to it
/// applies at once.
pub(super) async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    needs: &[&str],
) -> Result<Signed, HttpResponse> {
    let to_login = || {
        redirect("/admin/login")
            .cookie(removal(state, SESSION_COOKIE))
            .finish()
    };
    let Some(id) = req.cookie(SESSION_COOKIE) else {
        return Err(redirect("/admin/login").finish());
    };
    let session = match state.admin_sessions.find(id.value()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(to_login()),
        Err(e) => return Err(failure(&e)),
    };
    let principal = match state.tokens.admin_principal(session.admin.id).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(to_login()),
        Err(e) => return Err(failure(&e)),
    };
    let nav = Nav::of(&principal);
    let signed = Signed {
        session,
        principal,
        nav,
    };
    if !needs.is_empty() && !needs.iter().any(|r| signed.allows(r)) {
        return Err(refused(req, state, &signed));
    }
    Ok(signed)
}

/// Magento's refusal of a page the admin's role does not grant, in the layout (with the
/// sections the role does grant).
pub(super) fn refused(req: &HttpRequest, state: &AppState, s: &Signed) -> HttpResponse {
    let t = Refused {
        page: page(req, state, s, ""),
    };
    render(StatusCode::FORBIDDEN, &t)
}

#[derive(Template)]
#[template(
    source = r#"{% extends "admin/base.html" %}{% block title %}Access denied{% endblock %}{% block content %}<h1>Access denied</h1><p id="no-permission">Sorry, you need permissions to view this content.</p>{% endblock %}"#,
    ext = "html"
)]
pub(super) struct Refused {
    page: Page,
}

/// The page context of a signed-in admin, with the message a redirect left.
pub(super) fn page(req: &HttpRequest, state: &AppState, s: &Signed, section: &'static str) -> Page {
    Page {
        user: Some(s.admin.login.clone()),
        form_key: state.admin_sessions.form_key(&s.id),
        section,
        messages: flash(req).into_iter().collect(),
        nav: s.nav,
    }
}

/// Renders a signed-in page and clears the flash cookie it showed.
pub(super) fn show(req: &HttpRequest, state: &AppState, t: &impl Template) -> HttpResponse {
    let mut res = render(StatusCode::OK, t);
    if req.cookie(FLASH_COOKIE).is_some() {
        let _ = res.add_cookie(&removal(state, FLASH_COOKIE));
    }
    res
}

/// A POST of a signed-in admin whose role grants any of `needs`, with the right form key: the
/// session and the form.
pub(super) async fn post(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    needs: &[&str],
) -> Result<(Signed, Form), HttpResponse> {
    let session = signed_in(req, state, needs).await?;
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

pub(super) fn failure(e: &ServiceError) -> HttpResponse {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "an admin page failed: the database is unreachable");
        return page_response(StatusCode::SERVICE_UNAVAILABLE)
            .insert_header((header::RETRY_AFTER, "1"))
            .body("The database cannot be reached right now. Try again in a moment.");
    }
    tracing::error!(error = %e, "an admin page failed");
    page_response(StatusCode::INTERNAL_SERVER_ERROR)
        .body("Something went wrong on our side; it was logged. Go back and try again.")
}

/// `/admin/integration`: the grid.
pub(super) async fn to_grid() -> HttpResponse {
    redirect("/admin/integration/").finish()
}

/// `/admin`: the first section the admin's role reaches.
pub(super) async fn home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = or_answer!(signed_in(&req, &state, ANY).await);
    match s.nav.home() {
        Some(path) => redirect(path).finish(),
        None => refused(&req, &state, &s),
    }
}

pub(super) async fn not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let page = match signed_in(&req, &state, ANY).await {
        Ok(s) => page(&req, &state, &s, ""),
        Err(_) => Page {
            user: None,
            form_key: String::new(),
            section: "",
            messages: Vec::new(),
            nav: Nav::default(),
        },
    };
    render(StatusCode::NOT_FOUND, &NotFound { page })
}

#[derive(Template)]
#[template(
    source = r#"{% extends "admin/base.html" %}{% block title %}Not found{% endblock %}{% block content %}<h1>404 Error</h1><p>Page not found.</p><p><a href="/admin/">Home</a></p>{% endblock %}"#,
    ext = "html"
)]
pub(super) struct NotFound {
    page: Page,
}

pub(super) async fn static_file(path: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static str, &str) = match path.as_str() {
        "admin.css" => (
            include_str!("../../../static/admin.css"),
            "text/css; charset=utf-8",
        ),
        "admin.js" => (
            include_str!("../../../static/admin.js"),
            "text/javascript; charset=utf-8",
        ),
        "callback.js" => (
            include_str!("../../../static/callback.js"),
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

/// The integration a page's path names; a missing one sends the admin back to the grid with a
/// notice, and a failure (the database being down) is answered as the failure it is.
pub(super) async fn load(state: &AppState, id: &str) -> Result<Integration, HttpResponse> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(missing(state));
    };
    match state.integrations.get(id).await {
        Ok(i) => Ok(i),
        Err(ServiceError::NotFound(_)) => Err(missing(state)),
        Err(e) => Err(failure(&e)),
    }
}

pub(super) fn missing(state: &AppState) -> HttpResponse {
    redirect_with(
        state,
        "/admin/integration/",
        "error",
        "This integration no longer exists.",
    )
}

pub(super) fn insecure(i: &Integration) -> bool {
    [&i.endpoint, &i.identity_link_url]
        .iter()
        .any(|u| u.to_ascii_lowercase().starts_with("http:"))
}

/// One resource of the resource tree editor (`admin/resource_tree.html`).
pub(super) struct TreeRow {
    pub(super) depth: usize,
    pub(super) id: String,
    pub(super) title: String,
    pub(super) checked: bool,
}

/// The resource tree, walked in order, each resource ticked when `checked` says so.
pub(super) fn tree_rows(state: &AppState, checked: &dyn Fn(&str) -> bool) -> Vec<TreeRow> {
    state
        .roles
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

/// Magento's "Current User Identity Verification" of a form that changes permissions: the
/// signed-in admin's password, in `current_password`. A missing or wrong one is put in
/// `errors`; a failure to check it is the answer to send.
pub(super) async fn check_current_password(
    state: &AppState,
    session: &Signed,
    form: &Form,
    errors: &mut std::collections::BTreeMap<String, String>,
) -> Result<(), HttpResponse> {
    let Some(password) = form.get("current_password").filter(|p| !p.is_empty()) else {
        errors.insert(
            "current_password".into(),
            "This is a required field.".into(),
        );
        return Ok(());
    };
    match state
        .tokens
        .accounts()
        .verify(
            crate::domain::AccountKind::Admin,
            &session.admin.login,
            password,
        )
        .await
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            errors.insert("current_password".into(), WRONG_CURRENT_PASSWORD.into());
            Ok(())
        }
        Err(e) => Err(failure(&e)),
    }
}
