//! The admin UI at `/admin` ([S-7]): server-rendered pages following Magento's layout handles
//! (the integrations grid, the new and edit form, the permissions dialog, the tokens exchange
//! with the identity-link popup and its success callback, the tokens dialog, deletion), plus
//! a plugins page, the accounts (force sign-in, an admin's role) and the admin roles. Each
//! page shows to the admins whose role grants its resource; the others get Magento's refusal.
//!
//! Only HTTP lives here: sessions and form keys are `services::admin_sessions`, every change
//! goes through the services. Rules of the room: no state changes on GET; every POST carries the
//! session's form key (Magento's `form_key`; the sign-in form a double-submitted one); pages are
//! `no-store`, framed by nobody, and scripts come only from `/admin/static`. Every page works
//! without JavaScript except the popup, which then opens as a plain link.

mod accounts;
mod activation;
mod common;
mod edit;
mod grid;
mod plugins;
mod roles;
mod session;

use actix_web::web;

/// Registers the admin pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("", web::get().to(common::home))
            .route("/", web::get().to(common::home))
            .route("/static/{file}", web::get().to(common::static_file))
            .route("/login", web::get().to(session::login_page))
            .route("/login", web::post().to(session::login))
            .route("/logout", web::post().to(session::logout))
            .route("/integration", web::get().to(common::to_grid))
            .route("/integration/", web::get().to(grid::grid))
            .route("/integration/index", web::get().to(grid::grid))
            .route("/integration/new", web::get().to(edit::new_form))
            .route("/integration/edit/{id}", web::get().to(edit::edit_form))
            .route("/integration/save", web::post().to(edit::save))
            .route("/integration/delete/{id}", web::get().to(edit::delete_page))
            .route("/integration/delete/{id}", web::post().to(edit::delete))
            .route(
                "/integration/permissionsDialog/{id}",
                web::get().to(activation::permissions_dialog),
            )
            .route(
                "/integration/tokensExchange/{id}",
                web::post().to(activation::tokens_exchange),
            )
            .route(
                "/integration/loginSuccessCallback",
                web::get().to(activation::login_success_callback),
            )
            .route("/plugins", web::get().to(plugins::plugins_page))
            .route("/plugins/reload", web::post().to(plugins::plugins_reload))
            .route("/accounts", web::get().to(accounts::accounts_page))
            .route(
                "/accounts/{kind}/{id}/revoke",
                web::post().to(accounts::revoke),
            )
            .route(
                "/accounts/admin/{id}/role",
                web::post().to(accounts::set_role),
            )
            .route("/roles", web::get().to(roles::roles_page))
            .route("/roles/new", web::get().to(roles::new_form))
            .route("/roles/edit/{id}", web::get().to(roles::edit_form))
            .route("/roles/save", web::post().to(roles::save))
            .route("/roles/delete/{id}", web::post().to(roles::delete))
            .default_service(web::to(common::not_found)),
    );
}
