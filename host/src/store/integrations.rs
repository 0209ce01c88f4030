//! Integrations: their rows (joined with their consumer's key), creation with their consumer,
//! changes, status and deletion (with consumer, tokens and nonces). Consumers and tokens on
//! their own are [`super::consumers`]; searching is [`super::integration_search`].

use super::acl::write_integration_rules;
use crate::store::BeginWrite as _;
use rusqlite::OptionalExtension as _;

use super::consumers::NewConsumer;
use super::outbox::record_event;
use super::{NewEvent, Store, StoreError, on_pool, read};
use crate::clock::now;
use crate::domain::{IntegrationStatus, SetupType};

/// An integration row joined with its consumer's key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IntegrationRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub endpoint: String,
    pub identity_link_url: String,
    pub status: IntegrationStatus,
    pub consumer_id: Option<i64>,
    pub setup_type: SetupType,
    pub config_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl IntegrationRow {
    /// The row of a direct read, its columns in the order of `integration_columns!`.
    pub(super) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            email: row.get(2)?,
            endpoint: row.get(3)?,
            identity_link_url: row.get(4)?,
            status: row.get(5)?,
            consumer_id: row.get(6)?,
            setup_type: row.get(7)?,
            config_hash: row.get(8)?,
            created_at: row.get(9)?,
            updated_at: row.get(10)?,
        })
    }
}

/// What a new or changed integration holds.
#[derive(Debug, Clone)]
pub struct IntegrationFields<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub endpoint: &'a str,
    pub identity_link_url: &'a str,
    pub setup_type: SetupType,
    /// ACL rules (allowed resources, ancestors included, or `Magento_Backend::all`).
    pub rules: &'a [String],
    /// Fingerprint of the definition of a config integration; empty for manual ones.
    pub config_hash: &'a str,
}

macro_rules! integration_columns {
    () => {
        "id, name, email, endpoint, identity_link_url, status, consumer_id, setup_type, config_hash, created_at, updated_at"
    };
}
pub(super) use integration_columns;

macro_rules! integration_select {
    ($where:literal) => {
        concat!(
            "SELECT ",
            integration_columns!(),
            " FROM integration ",
            $where
        )
    };
}

impl Store {
    /// Creates an integration and its consumer in one transaction, with the event `event`
    /// makes of it. `None` when the name is taken (case-insensitively).
    pub async fn insert_integration(
        &self,
        fields: &IntegrationFields<'_>,
        consumer: &NewConsumer<'_>,
        event: impl FnOnce(&IntegrationRow) -> NewEvent,
    ) -> Result<Option<IntegrationRow>, StoreError> {
        let t = now();
        let postgres = self.is_postgres();
        let row = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO integration (name, email, endpoint, identity_link_url, status, consumer_id, setup_type, config_hash, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 0, NULL, $5, $6, $7, $7)
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(fields.name)
            .bind(fields.email)
            .bind(fields.endpoint)
            .bind(fields.identity_link_url)
            .bind(fields.setup_type)
            .bind(fields.config_hash)
            .bind(t)
            .fetch_optional(&mut *tx)
            .await?;
            match id {
                None => None,
                Some(id) => {
                    let consumer_id: i64 = sqlx::query_scalar(
                        r#"INSERT INTO oauth_consumer (name, "key", secret, callback_url, rejected_callback_url, created_at, updated_at)
                           VALUES ($1, $2, $3, $4, '', $5, $5) RETURNING id"#,
                    )
                    .bind(format!("Integration{id}"))
                    .bind(consumer.key)
                    .bind(consumer.secret)
                    .bind(consumer.callback_url)
                    .bind(t)
                    .fetch_one(&mut *tx)
                    .await?;
                    let row = sqlx::query_as::<_, IntegrationRow>(concat!(
                        "UPDATE integration SET consumer_id = $1 WHERE id = $2 RETURNING ",
                        integration_columns!()
                    ))
                    .bind(consumer_id)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    write_integration_rules!(tx, id, fields.rules);
                    record_event!(tx, &event(&row), postgres);
                    tx.commit().await?;
                    Some(row)
                }
            }
        });
        self.changed();
        Ok(row)
    }

    /// Changes an integration's fields; the consumer's callback URL follows the endpoint.
    /// `Ok(None)` when it does not exist; a name clash is a unique violation.
    ///
    /// With `reset` (a config integration whose definition changed), its integration tokens
    /// are deleted and its status becomes 2 in the same transaction, so the merchant must
    /// approve it again. The event `event` makes of the result is written with it.
    pub async fn update_integration(
        &self,
        id: i64,
        fields: &IntegrationFields<'_>,
        reset: bool,
        event: impl FnOnce(&IntegrationRow) -> NewEvent,
    ) -> Result<Option<IntegrationRow>, StoreError> {
        let t = now();
        let postgres = self.is_postgres();
        let row = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row = sqlx::query_as::<_, IntegrationRow>(concat!(
                "UPDATE integration SET name = $1, email = $2, endpoint = $3, identity_link_url = $4, setup_type = $5,
                        config_hash = $6, updated_at = $7
                 WHERE id = $8 RETURNING ",
                integration_columns!()
            ))
            .bind(fields.name)
            .bind(fields.email)
            .bind(fields.endpoint)
            .bind(fields.identity_link_url)
            .bind(fields.setup_type)
            .bind(fields.config_hash)
            .bind(t)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = &row {
                sqlx::query("UPDATE oauth_consumer SET callback_url = $1 WHERE id = $2")
                    .bind(fields.endpoint)
                    .bind(r.consumer_id)
                    .execute(&mut *tx)
                    .await?;
                write_integration_rules!(tx, id, fields.rules);
            }
            let row = match row {
                Some(r) if reset => {
                    sqlx::query("DELETE FROM oauth_token WHERE consumer_id = $1 AND user_type = 1")
                        .bind(r.consumer_id)
                        .execute(&mut *tx)
                        .await?;
                    Some(
                        sqlx::query_as::<_, IntegrationRow>(concat!(
                            "UPDATE integration SET status = 2 WHERE id = $1 RETURNING ",
                            integration_columns!()
                        ))
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?,
                    )
                }
                other => other,
            };
            if let Some(r) = &row {
                record_event!(tx, &event(r), postgres);
            }
            tx.commit().await?;
            row
        });
        self.changed();
        Ok(row)
    }

    /// Sets an integration's status (0 inactive, 1 active, 2 reset), with `event` when it
    /// reports the change.
    pub async fn set_integration_status(
        &self,
        id: i64,
        status: IntegrationStatus,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let postgres = self.is_postgres();
        let n = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let n =
                sqlx::query("UPDATE integration SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(status)
                    .bind(now())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if let (1, Some(event)) = (n, event) {
                record_event!(tx, event, postgres);
            }
            tx.commit().await?;
            n
        });
        self.changed();
        Ok(n == 1)
    }

    pub async fn integration_by_id(&self, id: i64) -> Result<Option<IntegrationRow>, StoreError> {
        const SQL: &str = integration_select!("WHERE id = $1");
        read!(self,
            direct: |c| c.prepare_cached(SQL)?.query_row([id], IntegrationRow::read).optional(),
            pool: |p| sqlx::query_as::<_, IntegrationRow>(SQL).bind(id).fetch_optional(p).await?,
        )
    }

    /// An integration with its allowed resources, read at once: one statement, one read
    /// transaction (each read transaction on SQLite takes and drops the file's shared-memory
    /// locks, system calls the profile of reading an integration showed). Rules sorted.
    pub async fn integration_with_rules(
        &self,
        id: i64,
    ) -> Result<Option<(IntegrationRow, Vec<String>)>, StoreError> {
        const SQL: &str = "SELECT i.id, i.name, i.email, i.endpoint, i.identity_link_url, i.status,
                    i.consumer_id, i.setup_type, i.config_hash, i.created_at, i.updated_at,
                    r.resource_id
             FROM integration i
             LEFT JOIN authorization_role o ON o.user_type = 1 AND o.user_id = i.id
             LEFT JOIN authorization_rule r ON r.role_id = o.id AND r.permission = 'allow'
             WHERE i.id = $1
             ORDER BY r.resource_id";
        fn gather(
            rows: impl Iterator<Item = (IntegrationRow, Option<String>)>,
        ) -> Option<(IntegrationRow, Vec<String>)> {
            let mut out: Option<(IntegrationRow, Vec<String>)> = None;
            for (row, rule) in rows {
                let entry = out.get_or_insert_with(|| (row, Vec::new()));
                entry.1.extend(rule);
            }
            out
        }
        read!(self,
            direct: |c| {
                let mut stmt = c.prepare_cached(SQL)?;
                let rows = stmt
                    .query_map([id], |row| Ok((IntegrationRow::read(row)?, row.get(11)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(gather(rows.into_iter()))
            },
            pool: |p| {
                let rows = sqlx::query(SQL).bind(id).fetch_all(p).await?;
                let mut pairs = Vec::with_capacity(rows.len());
                for row in &rows {
                    use sqlx::{FromRow as _, Row as _};
                    pairs.push((IntegrationRow::from_row(row)?, row.try_get::<Option<String>, _>(11)?));
                }
                gather(pairs.into_iter())
            },
        )
    }

    /// Finds an integration by name, case-insensitively.
    pub async fn integration_by_name(
        &self,
        name: &str,
    ) -> Result<Option<IntegrationRow>, StoreError> {
        const SQL: &str = integration_select!("WHERE lower(name) = lower($1)");
        read!(self,
            direct: |c| c.prepare_cached(SQL)?.query_row([name], IntegrationRow::read).optional(),
            pool: |p| sqlx::query_as::<_, IntegrationRow>(SQL).bind(name).fetch_optional(p).await?,
        )
    }

    pub async fn integration_by_consumer(
        &self,
        consumer_id: i64,
    ) -> Result<Option<IntegrationRow>, StoreError> {
        const SQL: &str = integration_select!("WHERE consumer_id = $1");
        read!(self,
            direct: |c| c
                .prepare_cached(SQL)?
                .query_row([consumer_id], IntegrationRow::read)
                .optional(),
            pool: |p| sqlx::query_as::<_, IntegrationRow>(SQL)
                .bind(consumer_id)
                .fetch_optional(p)
                .await?,
        )
    }

    /// Every integration, by name.
    pub async fn list_integrations(&self) -> Result<Vec<IntegrationRow>, StoreError> {
        const SQL: &str = integration_select!("ORDER BY lower(name)");
        read!(self,
            direct: |c| c
                .prepare_cached(SQL)?
                .query_map([], IntegrationRow::read)?
                .collect::<rusqlite::Result<Vec<_>>>(),
            pool: |p| sqlx::query_as::<_, IntegrationRow>(SQL).fetch_all(p).await?,
        )
    }

    /// Deletes an integration with its consumer (tokens and nonces cascade) and its ACL role,
    /// and writes `event` when it existed.
    pub async fn delete_integration(
        &self,
        id: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let postgres = self.is_postgres();
        let found = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let consumer: Option<Option<i64>> =
                sqlx::query_scalar("SELECT consumer_id FROM integration WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(consumer) = consumer {
                sqlx::query("DELETE FROM authorization_role WHERE user_type = 1 AND user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM integration WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(c) = consumer {
                    sqlx::query("DELETE FROM oauth_consumer WHERE id = $1")
                        .bind(c)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(event) = event {
                    record_event!(tx, event, postgres);
                }
            }
            tx.commit().await?;
            consumer.is_some()
        });
        self.changed();
        Ok(found)
    }
}
