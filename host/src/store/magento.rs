//! A Magento 2.4 database read for an import (MySQL or MariaDB), and the import written here in
//! one transaction.
//!
//! [`MagentoSource`] reads only the tables the import needs, with Magento's column names and
//! table prefix, and hands back rows as Magento stores them (secrets still encrypted, password
//! hashes as written). [`Store::import_magento`] writes what the import service decided: new
//! and changed integrations with their consumers, access tokens and ACL rules, and accounts,
//! all or nothing.

use std::collections::BTreeMap;

use sqlx::Row as _;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};

use super::acl::write_integration_rules;
use super::consumers::write_integration_token;
use super::outbox::record_event;
use super::{NewEvent, SealedToken, Store, StoreError, on_pool};
use crate::clock::now;
use crate::domain::{AccountKind, IntegrationStatus, SetupType};
use crate::store::BeginWrite as _;

/// A Magento database, open for reading.
#[derive(Debug)]
pub struct MagentoSource {
    pool: MySqlPool,
    prefix: String,
}

/// An integration as Magento stores it, with its consumer, its newest unrevoked access token
/// and the resources its ACL role allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagentoIntegration {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub endpoint: String,
    pub identity_link_url: String,
    pub status: i64,
    pub setup_type: i64,
    /// `None` when the integration has no consumer row.
    pub consumer: Option<MagentoConsumer>,
    /// The access token and its encrypted secret.
    pub token: Option<(String, String)>,
    /// Resources whose rule is `allow`, in Magento's order.
    pub resources: Vec<String>,
}

/// An OAuth consumer as Magento stores it; the secret is encrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct MagentoConsumer {
    pub key: String,
    pub encrypted_secret: String,
}

impl std::fmt::Debug for MagentoConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MagentoConsumer")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// An admin user or customer as Magento stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct MagentoAccount {
    pub id: i64,
    /// The admin username or the customer's email.
    pub login: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    /// `hash:salt:versions`.
    pub password_hash: String,
    pub is_active: bool,
}

impl std::fmt::Debug for MagentoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MagentoAccount")
            .field("id", &self.id)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// Magento's `db/table_prefix`: letters, digits and `_` only, so that it can stand in a
/// statement's table names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TablePrefix(String);

/// Why a table prefix is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the table prefix `{0}` may hold only letters, digits and `_`")]
pub struct BadPrefix(pub String);

impl TablePrefix {
    pub fn parse(s: &str) -> Result<Self, BadPrefix> {
        if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadPrefix(s.to_owned()))
        }
    }
}

impl MagentoSource {
    /// Connects to a Magento database (`mysql://USER:PASSWORD@HOST:PORT/DB`).
    pub async fn connect(url: &str, prefix: TablePrefix) -> Result<Self, StoreError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            prefix: prefix.0,
        })
    }

    /// A table's name with the prefix (checked to be a plain identifier when connecting).
    fn table(&self, name: &str) -> String {
        format!("`{}{name}`", self.prefix)
    }

    /// Every integration, by id.
    pub async fn integrations(&self) -> Result<Vec<MagentoIntegration>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(i.integration_id AS SIGNED) AS id, i.name, COALESCE(i.email, '') AS email,
                    COALESCE(i.endpoint, '') AS endpoint,
                    COALESCE(i.identity_link_url, '') AS identity_link_url,
                    CAST(i.status AS SIGNED) AS status, CAST(i.setup_type AS SIGNED) AS setup_type,
                    c.`key` AS consumer_key, c.secret AS consumer_secret,
                    CAST(i.consumer_id AS SIGNED) AS consumer_id
             FROM {integration} i LEFT JOIN {consumer} c ON c.entity_id = i.consumer_id
             ORDER BY i.integration_id",
            integration = self.table("integration"),
            consumer = self.table("oauth_consumer"),
        )))
        .fetch_all(&self.pool)
        .await?;
        let tokens = self.access_tokens().await?;
        let mut resources = self.integration_resources().await?;
        rows.into_iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let consumer_id: Option<i64> = r.try_get("consumer_id")?;
                let key: Option<String> = r.try_get("consumer_key")?;
                let secret: Option<String> = r.try_get("consumer_secret")?;
                Ok(MagentoIntegration {
                    id,
                    name: r.try_get("name")?,
                    email: r.try_get("email")?,
                    endpoint: r.try_get("endpoint")?,
                    identity_link_url: r.try_get("identity_link_url")?,
                    status: r.try_get("status")?,
                    setup_type: r.try_get("setup_type")?,
                    consumer: key.map(|key| MagentoConsumer {
                        key,
                        encrypted_secret: secret.unwrap_or_default(),
                    }),
                    token: consumer_id.and_then(|c| tokens.get(&c).cloned()),
                    resources: resources.remove(&id).unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The newest unrevoked access token of each consumer, of integrations (user type 1).
    async fn access_tokens(&self) -> Result<BTreeMap<i64, (String, String)>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(consumer_id AS SIGNED) AS consumer_id, token, secret
             FROM {token}
             WHERE type = 'access' AND revoked = 0 AND CAST(user_type AS SIGNED) = 1
               AND consumer_id IS NOT NULL
             ORDER BY entity_id",
            token = self.table("oauth_token"),
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut tokens = BTreeMap::new();
        for r in rows {
            tokens.insert(
                r.try_get::<i64, _>("consumer_id")?,
                (r.try_get("token")?, r.try_get("secret")?),
            );
        }
        Ok(tokens)
    }

    /// The allowed resources of each integration's role, by integration id.
    async fn integration_resources(&self) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(r.user_id AS SIGNED) AS integration_id, u.resource_id
             FROM {role} r JOIN {rule} u ON u.role_id = r.role_id
             WHERE r.role_type = 'U' AND CAST(r.user_type AS CHAR) = '1' AND u.permission = 'allow'
               AND u.resource_id IS NOT NULL
             ORDER BY u.rule_id",
            role = self.table("authorization_role"),
            rule = self.table("authorization_rule"),
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut by_integration: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in rows {
            by_integration
                .entry(r.try_get("integration_id")?)
                .or_default()
                .push(r.try_get("resource_id")?);
        }
        Ok(by_integration)
    }

    /// Every admin user, or every customer, by id.
    pub async fn accounts(&self, kind: AccountKind) -> Result<Vec<MagentoAccount>, StoreError> {
        let sql = match kind {
            AccountKind::Admin => format!(
                "SELECT CAST(user_id AS SIGNED) AS id, COALESCE(username, '') AS login, COALESCE(email, '') AS email,
                        COALESCE(firstname, '') AS firstname, COALESCE(lastname, '') AS lastname,
                        COALESCE(password, '') AS password_hash, CAST(is_active AS SIGNED) AS is_active
                 FROM {} ORDER BY user_id",
                self.table("admin_user")
            ),
            AccountKind::Customer => format!(
                "SELECT CAST(entity_id AS SIGNED) AS id, COALESCE(email, '') AS login, COALESCE(email, '') AS email,
                        COALESCE(firstname, '') AS firstname, COALESCE(lastname, '') AS lastname,
                        COALESCE(password_hash, '') AS password_hash, CAST(is_active AS SIGNED) AS is_active
                 FROM {} ORDER BY entity_id",
                self.table("customer_entity")
            ),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(MagentoAccount {
                    id: r.try_get("id")?,
                    login: r.try_get("login")?,
                    email: r.try_get("email")?,
                    firstname: r.try_get("firstname")?,
                    lastname: r.try_get("lastname")?,
                    password_hash: r.try_get("password_hash")?,
                    is_active: r.try_get::<i64, _>("is_active")? != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An integration to create or change, as the import decided it.
#[derive(Debug, Clone)]
pub struct ImportedIntegration {
    /// The integration here to change; `None` to create one.
    pub existing: Option<i64>,
    pub name: String,
    pub email: String,
    pub endpoint: String,
    pub identity_link_url: String,
    pub status: IntegrationStatus,
    pub setup_type: SetupType,
    pub config_hash: String,
    pub rules: Vec<String>,
    pub consumer_key: String,
    pub sealed_secret: Vec<u8>,
    /// Its access token; `None` removes any it has here.
    pub token: Option<SealedToken>,
}

/// An account to create or change, as the import decided it.
#[derive(Debug, Clone)]
pub struct ImportedAccount {
    pub kind: AccountKind,
    /// The account here to change; `None` to create one.
    pub existing: Option<i64>,
    pub login: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    /// As [`crate::crypto`] reads it (`magento:hash:salt:versions`).
    pub password_hash: String,
    pub is_active: bool,
}

impl Store {
    /// Writes an import in one transaction: all of it, or nothing. A name, consumer key or
    /// login that became taken since the import read them fails the whole transaction.
    /// `saved` makes the event written with each integration, of its id, its name and
    /// whether it is new.
    pub async fn import_magento(
        &self,
        integrations: &[ImportedIntegration],
        accounts: &[ImportedAccount],
        saved: impl Fn(i64, &str, bool) -> NewEvent,
    ) -> Result<(), StoreError> {
        let postgres = self.is_postgres();
        let t = now();
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            for i in integrations {
                let id: i64 = match i.existing {
                    Some(id) => {
                        sqlx::query(
                            "UPDATE integration SET name = $1, email = $2, endpoint = $3, identity_link_url = $4,
                                    status = $5, setup_type = $6, config_hash = $7, updated_at = $8
                             WHERE id = $9",
                        )
                        .bind(&i.name)
                        .bind(&i.email)
                        .bind(&i.endpoint)
                        .bind(&i.identity_link_url)
                        .bind(i.status)
                        .bind(i.setup_type)
                        .bind(&i.config_hash)
                        .bind(t)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        id
                    }
                    None => {
                        sqlx::query_scalar(
                            "INSERT INTO integration (name, email, endpoint, identity_link_url, status, consumer_id, setup_type, config_hash, created_at, updated_at)
                             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $8) RETURNING id",
                        )
                        .bind(&i.name)
                        .bind(&i.email)
                        .bind(&i.endpoint)
                        .bind(&i.identity_link_url)
                        .bind(i.status)
                        .bind(i.setup_type)
                        .bind(&i.config_hash)
                        .bind(t)
                        .fetch_one(&mut *tx)
                        .await?
                    }
                };
                let consumer_id: Option<i64> =
                    sqlx::query_scalar("SELECT consumer_id FROM integration WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                let consumer_id: i64 = match consumer_id {
                    Some(c) => {
                        sqlx::query(
                            r#"UPDATE oauth_consumer SET "key" = $1, secret = $2, callback_url = $3, updated_at = $4
                               WHERE id = $5"#,
                        )
                        .bind(&i.consumer_key)
                        .bind(&i.sealed_secret)
                        .bind(&i.endpoint)
                        .bind(t)
                        .bind(c)
                        .execute(&mut *tx)
                        .await?;
                        c
                    }
                    None => {
                        let c: i64 = sqlx::query_scalar(
                            r#"INSERT INTO oauth_consumer (name, "key", secret, callback_url, rejected_callback_url, created_at, updated_at)
                               VALUES ($1, $2, $3, $4, '', $5, $5) RETURNING id"#,
                        )
                        .bind(format!("Integration{id}"))
                        .bind(&i.consumer_key)
                        .bind(&i.sealed_secret)
                        .bind(&i.endpoint)
                        .bind(t)
                        .fetch_one(&mut *tx)
                        .await?;
                        sqlx::query("UPDATE integration SET consumer_id = $1 WHERE id = $2")
                            .bind(c)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        c
                    }
                };
                write_integration_rules!(tx, id, &i.rules);
                write_integration_token!(tx, consumer_id, i.token.as_ref(), t);
                record_event!(tx, &saved(id, &i.name, i.existing.is_none()), postgres);
            }
            for a in accounts {
                // A customer's login is its email.
                let (update, insert) = match a.kind {
                    AccountKind::Admin => (
                        "UPDATE admin_user SET username = $1, email = $2, firstname = $3, lastname = $4,
                                password_hash = $5, is_active = $6, updated_at = $7 WHERE id = $8",
                        "INSERT INTO admin_user (username, email, firstname, lastname, password_hash, is_active, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
                    ),
                    AccountKind::Customer => (
                        "UPDATE customer SET email = $1, firstname = $2, lastname = $3,
                                password_hash = $4, is_active = $5, updated_at = $6 WHERE id = $7",
                        "INSERT INTO customer (email, firstname, lastname, password_hash, is_active, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                    ),
                };
                let mut q = match a.existing {
                    Some(_) => sqlx::query_scalar::<_, i64>(update),
                    None => sqlx::query_scalar::<_, i64>(insert),
                }
                .bind(&a.login);
                if a.kind == AccountKind::Admin {
                    q = q.bind(&a.email);
                }
                q = q
                    .bind(&a.firstname)
                    .bind(&a.lastname)
                    .bind(&a.password_hash)
                    .bind(a.is_active)
                    .bind(t);
                match a.existing {
                    Some(id) => {
                        q.bind(id).fetch_optional(&mut *tx).await?;
                    }
                    None => {
                        let id = q.fetch_one(&mut *tx).await?;
                        if a.kind == AccountKind::Admin {
                            sqlx::query(super::accounts::ADMIN_ROLE)
                                .bind(id)
                                .bind(&a.login)
                                .bind(super::accounts::ADMINISTRATORS)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
            }
            tx.commit().await?;
        });
        self.changed();
        Ok(())
    }
}
