//! Building and running the server: `Application::build(settings)`, `port()`,
//! `run_until_stopped()`.
//!
//! Build connects the database, applies migrations, resolves the keys, creates the first admin
//! account on an empty database, and binds the listener (port 0 picks a free one). Run serves
//! until SIGTERM or SIGINT, then answers `/readyz` with 503 for `server.drain_seconds`, closes
//! the listener and gives in-flight requests `server.shutdown_timeout_seconds` to finish.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};

use crate::config::Settings;
use crate::crypto;
use crate::declarative;
use crate::plugins::PluginHost;
use crate::services::Services;
use crate::services::accounts::{AccountService, BootstrapAdmin};
use crate::services::integration::IntegrationService;
use crate::store::{MigrationReport, Store};
use crate::web::{self, AppState};

type Data<T> = actix_web::web::Data<T>;

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener (`metrics.listen`) and its port.
    metrics: Option<(Server, u16)>,
    state: Data<AppState>,
    bootstrap_admin: Option<BootstrapAdmin>,
    /// Where the first admin's password was written (`bootstrap.password_file`).
    bootstrap_password_file: Option<std::path::PathBuf>,
    migrations: MigrationReport,
    /// The outbox's delivery to async observers.
    deliverer: tokio::task::JoinHandle<()>,
    /// SIGTERM and SIGINT, listened for from before the server says it listens.
    signals: Signals,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects, migrates, resolves keys, bootstraps the first admin, and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let url = settings.database_url();
        tracing::info!(database = %url.redacted(), "connecting to the database");
        let store = Store::connect(&url, &settings.database)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", url.redacted()))?;
        let migrations = store.migrate().await?;
        for (version, description) in &migrations.applied {
            tracing::info!(version, description = %description, "migration applied");
        }
        // On PostgreSQL, changes other processes commit reach this one's caches through
        // notices (before the services are built: their caches depend on it).
        store.listen_for_changes();
        let keys = crypto::resolve_keys(&settings)?;
        if let Some(path) = &keys.generated {
            tracing::warn!(
                path = %path.display(),
                "no keys configured: generated new keys for this local SQLite setup; keep the file secret and back it up with the database"
            );
        }
        let password_file = settings.bootstrap.password_file.as_deref();
        if let Some(problem) = settings.bootstrap.password_folder_problem() {
            anyhow::bail!("configuration key `bootstrap.password_file`: {problem}");
        }
        let bootstrap_admin = AccountService::new(store.clone()).bootstrap_admin().await?;
        let mut bootstrap_password_file = None;
        if let Some(admin) = &bootstrap_admin {
            match password_file.map(|path| write_password_file(path, admin.password.expose())) {
                Some(Ok(())) => {
                    let path = password_file.expect("set").to_owned();
                    tracing::warn!(username = %admin.username, path = %path.display(), "created the first admin account; its password is in the bootstrap password file");
                    bootstrap_password_file = Some(path);
                }
                Some(Err(e)) => tracing::error!(
                    username = %admin.username,
                    error = %e,
                    "created the first admin account but cannot write bootstrap.password_file; its password is printed once on standard output instead"
                ),
                None => {
                    tracing::warn!(username = %admin.username, "created the first admin account; its password is printed once on standard output")
                }
            }
        }

        let listen = &settings.server.listen;
        let listener = TcpListener::bind((listen.host(), listen.port()))
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let port = addr.port();
        let metrics_listener = match &settings.metrics.listen {
            Some(at) => Some(
                TcpListener::bind((at.host(), at.port()))
                    .map_err(|e| anyhow::anyhow!("cannot listen on {at} (metrics.listen): {e}"))?,
            ),
            None => None,
        };

        let keys = Arc::new(keys);
        let services = Services::build(store.clone(), keys.clone(), &settings)?;
        // Async observers get their events from the outbox from now on, at least once (before
        // plugins load and the declarative sync writes its first events).
        let (outbox, deliverer) = crate::services::outbox::Outbox::start(
            store.clone(),
            services.events.clone(),
            &settings.events,
        );
        let plugins = PluginHost::new(
            &settings.plugins,
            &settings.data_dir,
            services.events.clone(),
        )?;
        plugins.keep_state_in(crate::services::plugin_state::PluginState::new(
            store.clone(),
        ));
        // Strict: every plugin loads (compiled if need be) before the server listens. Otherwise
        // it serves at once and a plugin not compiled yet shows `loading` meanwhile.
        let loaded = if settings.plugins.strict {
            plugins.reload().await
        } else {
            plugins
                .start(resync_after_load(
                    services.integrations.clone(),
                    settings.integrations.directories.clone(),
                    plugins.clone(),
                ))
                .await
        };
        if settings.plugins.strict && !loaded.problems.is_empty() {
            let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "plugins failed to load and plugins.strict is set:\n{}",
                problems.join("\n")
            );
        }
        declarative::log_sync(
            &declarative::sync_integrations(
                &services.integrations,
                &settings.integrations.directories,
                &plugins,
                false,
            )
            .await,
        );
        let routes =
            crate::webapi::RouteTable::load(&settings.webapi.routes_files, &services.tree)?;
        let Services {
            oauth,
            integrations,
            tokens,
            roles,
            events,
            ..
        } = services;
        let admin_sessions = crate::services::admin_sessions::AdminSessions::new(
            store.clone(),
            keys.clone(),
            settings.admin_ui.session_minutes,
        );
        let connections = web::connections::Connections::new(settings.server.max_connections);
        let nonce_stats = oauth.nonce_stats();
        let sign_in_attempts = tokens.sign_in_attempts();
        let state = Data::new(AppState {
            settings: Arc::new(settings.clone()),
            store,
            keys,
            oauth,
            integrations,
            tokens,
            roles,
            events,
            routes: Arc::new(routes),
            plugins: plugins.clone(),
            admin_sessions,
            proxy: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(Duration::from_secs(settings.proxy.timeout_seconds.max(1)))
                .build()?,
            metrics: web::metrics::Metrics::new(
                nonce_stats,
                sign_in_attempts,
                plugins,
                outbox.counts(),
                connections.clone(),
            ),
            draining: Arc::new(AtomicBool::new(false)),
            integration_answers: Default::default(),
            self_answers: Default::default(),
        });
        let app_state = state.clone();
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let per_worker = connections.per_worker(workers);
        let server = HttpServer::new(move || {
            // Called on each worker thread, within its runtime.
            crate::store::NonceWriter::mailbox_on_this_thread();
            App::new()
                .wrap(from_fn(web::observe))
                .configure(web::configure(app_state.clone()))
        })
        .on_connect(move |_, extensions| {
            extensions.insert(connections.opened());
        })
        .client_request_timeout(Duration::from_millis(settings.server.header_timeout_ms))
        .keep_alive(Duration::from_secs(settings.server.keep_alive_seconds))
        .max_connections(per_worker)
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_seconds)
        .listen(listener)?;
        let server = server.run();
        // Before the line that tells a supervisor the server is up: a SIGTERM right after it
        // would otherwise end the process at once, without draining.
        let signals = Signals::install()?;
        tracing::info!(address = %addr, port, "listening on http://{addr}");
        let metrics = match metrics_listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                let state = state.clone();
                let server = HttpServer::new(move || {
                    App::new().configure(web::configure_metrics(state.clone()))
                })
                .disable_signals()
                .workers(1)
                .listen(listener)?
                .run();
                tracing::info!(address = %addr, "metrics listening on http://{addr}/metrics");
                Some((server, addr.port()))
            }
            None => None,
        };
        Ok(Self {
            port,
            server,
            metrics,
            deliverer,
            signals,
            state,
            bootstrap_admin,
            bootstrap_password_file,
            migrations,
        })
    }

    /// The bound port (the chosen one when configured with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when `metrics.listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// The database this server uses.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The integration service this server uses.
    pub fn integrations(&self) -> &IntegrationService {
        &self.state.integrations
    }

    /// The admin and customer token service this server uses.
    pub fn tokens(&self) -> &crate::services::tokens::TokenService {
        &self.state.tokens
    }

    /// The event dispatcher this server uses (observers may subscribe to it).
    pub fn events(&self) -> &crate::events::Dispatcher {
        &self.state.events
    }

    /// The plugin host of this server.
    pub fn plugins(&self) -> &PluginHost {
        &self.state.plugins
    }

    /// The OAuth service this server uses.
    pub fn oauth(&self) -> &crate::services::oauth::OauthService {
        &self.state.oauth
    }

    /// The first admin account, when this start created it; its password is shown only here.
    pub fn take_bootstrap_admin(&mut self) -> Option<BootstrapAdmin> {
        self.bootstrap_admin.take()
    }

    /// The file the first admin's password was written to, when this start created the admin
    /// and `bootstrap.password_file` is set.
    pub fn bootstrap_password_file(&self) -> Option<&std::path::Path> {
        self.bootstrap_password_file.as_deref()
    }

    /// What the start-up migration did.
    pub fn migrations(&self) -> &MigrationReport {
        &self.migrations
    }

    /// Serves until SIGTERM or SIGINT, then drains and stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let draining = self.state.draining.clone();
        let drain = Duration::from_secs(self.state.settings.server.drain_seconds);
        let signals = self.signals;
        let stopper = tokio::spawn(async move {
            signals.wait().await;
            draining.store(true, Ordering::SeqCst);
            tracing::info!(
                drain_seconds = drain.as_secs(),
                "shutdown requested: draining"
            );
            tokio::time::sleep(drain).await;
            tracing::info!("closing the listener; finishing in-flight requests");
            handle.stop(true).await;
        });
        let reloader = crate::plugins::spawn_reloader(
            self.state.plugins.clone(),
            resync_after_load(
                self.state.integrations.clone(),
                self.state.settings.integrations.directories.clone(),
                self.state.plugins.clone(),
            ),
        );
        let watcher = declarative::spawn_watcher(
            self.state.integrations.clone(),
            self.state.settings.integrations.directories.clone(),
            self.state.plugins.clone(),
            std::time::Duration::from_millis(self.state.settings.integrations.watch_poll_ms),
        );
        let scheduler = self.state.settings.cron.enabled.then(|| {
            crate::jobs::spawn_scheduler(self.state.store.clone(), (*self.state.settings).clone())
        });
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(m) = metrics {
            m.stop(false).await;
        }
        stopper.abort();
        if let Some(s) = scheduler {
            s.abort();
        }
        if let Some(r) = reloader {
            r.abort();
        }
        if let Some(w) = watcher {
            w.abort();
        }
        // Deliveries under way are leased; another server (or this one's next start) takes
        // them over once the lease ends.
        self.deliverer.abort();
        self.state.store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Writes the first admin's password to `path`, readable by the server's user only (mode 0600,
/// through a new file renamed into place, so that no other mode is ever seen there).
fn write_password_file(path: &std::path::Path, password: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = file
        .write_all(format!("{password}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The signals that stop the server, received from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the first of them.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// What runs after each plugin load past the first (a reload, a plugin compiled in the
/// background): the declarative sync, when a config provider came, changed or went.
fn resync_after_load(
    integrations: crate::services::integration::IntegrationService,
    dirs: Vec<std::path::PathBuf>,
    plugins: PluginHost,
) -> impl Fn(crate::plugins::ReloadReport) -> futures_util::future::BoxFuture<'static, ()>
+ Send
+ Sync
+ 'static {
    move |report| {
        let (integrations, dirs, plugins) = (integrations.clone(), dirs.clone(), plugins.clone());
        Box::pin(async move {
            let _ = declarative::sync_after_reload(&integrations, &dirs, &plugins, &report).await;
        })
    }
}
