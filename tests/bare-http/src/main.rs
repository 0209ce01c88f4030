//! The benchmark's floor: a bare actix-web server whose one handler answers a constant, with
//! the server's allocator and nothing else (no request ids, metrics or access log). The
//! benchmark prints the server's `/livez` as a ratio to it, so the cost of the server's own
//! middleware shows.
//!
//! Usage: `bare-http 127.0.0.1:PORT` (a crate of its own, so that building it builds nothing of
//! the server).

use actix_web::{App, HttpResponse, HttpServer, web};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    HttpServer::new(|| {
        App::new().route(
            "/livez",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"status":"ok"}"#)
            }),
        )
    })
    .bind(&address)?
    .run()
    .await
}
