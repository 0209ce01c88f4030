//! Small HTTP servers the tests stand up: an integrator endpoint that records activation posts, and an upstream service behind the proxy.

use super::*;

/// A local HTTP endpoint that records the form posts it receives, as an integrator's
/// activation endpoint would; answers with `status`. Its identity link, `GET /identity`, sends
/// the browser on to the `success_call_back` it was given (and counts the visits).
#[derive(Debug)]
pub struct Recorder {
    pub url: String,
    /// The identity link's URL.
    pub identity: String,
    pub posts: Posts,
    pub identity_visits: std::sync::Arc<std::sync::atomic::AtomicU32>,
    handle: actix_web::dev::ServerHandle,
}

impl Recorder {
    pub async fn start(status: u16) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let posts: Posts = Default::default();
        let recorded = posts.clone();
        let identity_visits: std::sync::Arc<std::sync::atomic::AtomicU32> = Default::default();
        let visits = identity_visits.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let recorded = recorded.clone();
            let visits = visits.clone();
            App::new()
                .route(
                    "/identity",
                    web::get().to(move |req: HttpRequest| {
                        visits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let back = form_urlencoded::parse(req.query_string().as_bytes())
                            .find(|(k, _)| k == "success_call_back")
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default();
                        async move {
                            HttpResponse::Found()
                                .insert_header(("Location", back))
                                .finish()
                        }
                    }),
                )
                .default_service(web::to(move |body: web::Bytes| {
                    let recorded = recorded.clone();
                    async move {
                        let form: Vec<(String, String)> = form_urlencoded::parse(&body)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        recorded.lock().unwrap().push(form);
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                            .finish()
                    }
                }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/activate"),
            identity: format!("http://127.0.0.1:{port}/identity"),
            posts,
            identity_visits,
            handle,
        }
    }

    /// The last post's value of `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        let posts = self.posts.lock().unwrap();
        posts
            .last()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}

/// A local upstream service that answers every request with what it received, as JSON:
/// `method`, `path` (with the query), `headers` (lower-case names, repeated values joined with
/// `, `) and `body` (as text).
#[derive(Debug)]
pub struct Upstream {
    pub port: u16,
    handle: actix_web::dev::ServerHandle,
}

impl Upstream {
    pub async fn start() -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(|| {
            App::new().default_service(web::to(|req: HttpRequest, body: web::Bytes| async move {
                let mut headers = serde_json::Map::new();
                for (name, value) in req.headers() {
                    let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    let entry = headers
                        .entry(name.as_str().to_owned())
                        .or_insert_with(|| serde_json::Value::String(String::new()));
                    let joined = match entry.as_str() {
                        Some("") | None => v,
                        Some(prior) => format!("{prior}, {v}"),
                    };
                    *entry = serde_json::Value::String(joined);
                }
                HttpResponse::Ok()
                    .insert_header(("X-Upstream", "echo"))
                    .json(serde_json::json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                        "headers": headers,
                        "body": String::from_utf8_lossy(&body),
                    }))
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { port, handle }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// nginx, started on loopback for one test from the `http` block `server_blocks` writes for its
/// port (upstreams and servers); stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(server_blocks: impl FnOnce(u16) -> String) -> Self {
        use std::process::{Command, Stdio};
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .expect("nginx is installed (scripts/test installs the Debian package)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let servers = server_blocks(port);
        let conf = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{servers}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, port, dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not start: {log}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a [`Receiver`] read.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// With the query.
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How a [`Receiver`] answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status with this body (`text/plain`).
    Status(u16, String),
    /// Reads the request and never answers.
    Hang,
    /// 302 to this location.
    Redirect(String),
}

/// A plain HTTP/1.1 receiver on 127.0.0.1 that counts the connections it accepts and keeps
/// every request, as a webhook receiver or a collector would; what it answers can change, and
/// it can stop listening and listen again on the same port.
#[derive(Debug)]
pub struct Receiver {
    pub port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicU32>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    answer: std::sync::Arc<std::sync::Mutex<Answer>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Receiver {
    pub async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Self {
            port: listener.local_addr().unwrap().port(),
            connections: Default::default(),
            requests: Default::default(),
            answer: std::sync::Arc::new(std::sync::Mutex::new(answer)),
            task: std::sync::Mutex::new(None),
        };
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (connections, requests, answer) = (
            self.connections.clone(),
            self.requests.clone(),
            self.answer.clone(),
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (requests, answer) = (requests.clone(), answer.clone());
                tokio::spawn(async move {
                    let _ = Self::exchange(stream, requests, answer).await;
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    async fn exchange(
        mut stream: tokio::net::TcpStream,
        requests: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
        answer: std::sync::Arc<std::sync::Mutex<Answer>>,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        requests.lock().unwrap().push(Received {
            method,
            path,
            headers,
            body,
        });
        let answer = answer.lock().unwrap().clone();
        match answer {
            Answer::Status(status, text) => {
                let reply = format!(
                    "HTTP/1.1 {status} Answer\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                stream.write_all(reply.as_bytes()).await?;
                stream.shutdown().await
            }
            Answer::Hang => {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                Ok(())
            }
            Answer::Redirect(location) => {
                let reply = format!(
                    "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 5\r\nconnection: close\r\n\r\nmoved"
                );
                stream.write_all(reply.as_bytes()).await?;
                stream.shutdown().await
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request read so far.
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    pub fn answer_with(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Stops listening: connections are refused until [`Receiver::up`].
    pub fn down(&self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on port {} again: {e}", self.port),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// A MariaDB server (Debian's `mariadb-server`, installed by `scripts/test`) started on loopback
/// for one test, in a temporary folder, with an empty database `magento` that the user
/// `magento` owns; stopped when dropped.
#[derive(Debug)]
pub struct MariaDb {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl MariaDb {
    /// The password of the user `magento`.
    pub const PASSWORD: &'static str = "m4gento-p@ss";

    pub fn start() -> Self {
        use std::process::{Command, Stdio};
        let found = |names: &[&str]| {
            names
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists())
                .unwrap_or_else(|| {
                    panic!("{names:?} missing: scripts/test installs Debian's mariadb-server")
                })
        };
        let server = found(&["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]);
        let install = found(&["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"]);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // As root the server runs as the `mysql` user the package created, which must own
        // its folder.
        let root = {
            use std::os::unix::fs::MetadataExt as _;
            // Files this process creates belong to its effective user.
            std::fs::metadata(dir.path()).unwrap().uid() == 0
        };
        if root {
            let status = Command::new("chown")
                .arg("mysql")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown mysql {}", dir.path().display());
        }
        let user = if root { "mysql" } else { "" };
        let mut init = Command::new(&install);
        init.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if root {
            init.arg(format!("--user={user}"));
        }
        let out = init.output().expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let socket = dir.path().join("mysqld.sock");
        let mut cmd = Command::new(&server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .arg("--skip-log-bin")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--skip-name-resolve");
        if root {
            cmd.arg(format!("--user={user}"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let mut db = Self { child, port, dir };
        for _ in 0..300 {
            if socket.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                db.sql_as_root(&format!(
                    "CREATE DATABASE magento CHARACTER SET utf8mb4;
                     CREATE USER 'magento'@'127.0.0.1' IDENTIFIED BY '{}';
                     GRANT ALL ON magento.* TO 'magento'@'127.0.0.1';",
                    Self::PASSWORD
                ));
                return db;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(db.dir.path().join("error.log")).unwrap_or_default();
        let _ = db.child.kill();
        panic!("mariadbd did not start: {log}");
    }

    fn client(&self, database: Option<&str>) -> std::process::Command {
        let client = ["/usr/bin/mariadb", "/usr/bin/mysql"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .expect("the mariadb client is installed with mariadb-server");
        let mut cmd = std::process::Command::new(client);
        cmd.arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysqld.sock").display()
            ))
            .arg("--user=root");
        if let Some(d) = database {
            cmd.arg(d);
        }
        cmd
    }

    fn run(&self, database: Option<&str>, sql: &str) {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut child = self
            .client(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the mariadb client starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "SQL failed: {}\n{sql}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn sql_as_root(&self, sql: &str) {
        self.run(None, sql);
    }

    /// Runs statements in the `magento` database, as root.
    pub fn sql(&self, sql: &str) {
        self.run(Some("magento"), sql);
    }

    /// The URL the import takes.
    pub fn url(&self) -> String {
        format!(
            "mysql://magento:{}@127.0.0.1:{}/magento",
            Self::PASSWORD.replace('@', "%40"),
            self.port
        )
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
