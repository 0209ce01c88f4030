//! The test database: an SQLite file in a temporary folder, or a database of its own on the PostgreSQL server the suite runs against; and raw SQL to look into it.

use integration_host::config::DatabaseUrl;
use sqlx::Connection as _;

/// The PostgreSQL server URL to create test databases on, if the suite runs on PostgreSQL.
pub fn postgres_server() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database for one test, dropped with it (PostgreSQL) or with its folder (SQLite).
#[derive(Debug)]
pub struct TestDb {
    pub url: DatabaseUrl,
    /// PostgreSQL: the server URL and the database name.
    pub postgres: Option<(String, String)>,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        match postgres_server() {
            Some(server) => {
                let name = format!("ih_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .expect("connect to the test PostgreSQL server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = database_on(&server, &name);
                TestDb {
                    url: DatabaseUrl::parse(&url).expect("valid URL"),
                    postgres: Some((server, name)),
                    dir,
                }
            }
            None => TestDb {
                url: DatabaseUrl::Sqlite(dir.path().join("data/integration-host.sqlite")),
                postgres: None,
                dir,
            },
        }
    }

    /// The URL as a string, for configuration files.
    pub fn url_string(&self) -> String {
        self.url.clone().into()
    }

    /// Makes the database unreachable: drops it (PostgreSQL, closing every connection) or
    /// deletes the file (SQLite).
    pub async fn destroy(&self) {
        match &self.postgres {
            Some((server, name)) => {
                let mut conn = sqlx::PgConnection::connect(server).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .expect("drop test database");
            }
            None => {
                if let DatabaseUrl::Sqlite(path) = &self.url {
                    std::fs::remove_file(path).expect("delete database file");
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // Best effort, off the test's runtime, which may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&server).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

fn database_on(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.into()
}

/// Runs a scalar `SELECT` directly on the test database, bypassing the server: for tests that
/// must read what is really stored.
pub async fn raw_scalar_i64(db: &TestDb, sql: &str) -> Result<i64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
            conn.close().await.ok();
            Ok(v)
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
            conn.close().await.ok();
            Ok(v)
        }
    }
}

/// Runs one statement on the test database outside the server; answers the rows affected.
/// Whether any row's `column` of `table` holds `value`'s bytes anywhere (a search for
/// plaintext). `value` must not contain a quote.
pub async fn raw_contains(db: &TestDb, table: &str, column: &str, value: &str) -> bool {
    assert!(!value.contains('\''));
    let sql = if db.postgres.is_some() {
        format!(
            "SELECT COUNT(*) FROM {table} WHERE position(convert_to('{value}', 'UTF8') IN {column}) > 0"
        )
    } else {
        format!(
            "SELECT COUNT(*) FROM {table} WHERE instr(CAST({column} AS BLOB), CAST('{value}' AS BLOB)) > 0"
        )
    };
    raw_scalar_i64(db, &sql).await.expect("search runs") > 0
}

pub async fn raw_execute(db: &TestDb, sql: &str) -> Result<u64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            let n = sqlx::query(sql).execute(&mut conn).await?.rows_affected();
            conn.close().await.ok();
            Ok(n)
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let n = sqlx::query(sql).execute(&mut conn).await?.rows_affected();
            conn.close().await.ok();
            Ok(n)
        }
    }
}

/// A PostgreSQL server of one test's own, which the test may stop and start again (the shared
/// test server must not be), from the installed server binaries; stopped and removed when
/// dropped. Run as the `postgres` system user when the tests run as root (initdb refuses root).
#[derive(Debug)]
pub struct PrivatePostgres {
    bindir: std::path::PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .expect("a PostgreSQL server is installed (scripts/test installs postgresql-15)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .expect("initdb is installed");
        let dir = tempfile::tempdir().unwrap();
        // The owner of /proc/self is this process's user.
        let as_postgres = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        if as_postgres {
            // Debian's package creates the user; a machine without it gets one, as
            // scripts/lib/postgres.sh does.
            let known = std::process::Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success());
            if !known {
                let status = std::process::Command::new("useradd")
                    .args(["--system", "--no-create-home", "postgres"])
                    .status()
                    .expect("useradd");
                assert!(status.success(), "create the postgres system user");
            }
            let status = std::process::Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the folder to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self {
            bindir,
            dir,
            port,
            as_postgres,
        };
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ],
        );
        pg.up();
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let bin = self.bindir.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn up(&self) {
        let d = self.dir.path();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            d.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                d.join("data").to_str().unwrap(),
                "-l",
                d.join("server.log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the server (fast: connections are closed) and waits until it is down.
    pub fn down(&self) {
        let d = self.dir.path();
        self.run(
            "pg_ctl",
            &[
                "-D",
                d.join("data").to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let d = self.dir.path().join("data");
        let bin = self.bindir.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let _ = cmd
            .args(["-D", d.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
