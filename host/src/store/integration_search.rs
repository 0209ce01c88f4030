//! Searching integrations: the columns a search may name, and one page of what it finds with
//! the count of every match (the SQL itself is built by [`super::search`]).
//!
//! On PostgreSQL the page, each row's granted resources and the count come back from one
//! statement (the grants read by a subquery over the already limited page, the count an
//! uncorrelated subquery evaluated once): each round trip to the server costs more than the
//! work it carries. On SQLite, read in process, the page, the count and the grants are three
//! plain statements (its planner would run a per-row subquery for every match before the sort).

use super::integrations::integration_columns;
use super::search::{Column, ColumnKind, Search, bind_operands};
use super::{IntegrationRow, Store, StoreError, read};

/// The columns of `integration` a search may filter and sort on.
pub mod columns {
    use super::{Column, ColumnKind};

    pub const ID: Column = Column {
        name: "id",
        kind: ColumnKind::Integer,
    };
    pub const NAME: Column = Column {
        name: "name",
        kind: ColumnKind::Text,
    };
    pub const EMAIL: Column = Column {
        name: "email",
        kind: ColumnKind::Text,
    };
    pub const STATUS: Column = Column {
        name: "status",
        kind: ColumnKind::Integer,
    };
    pub const SETUP_TYPE: Column = Column {
        name: "setup_type",
        kind: ColumnKind::Integer,
    };
    /// Seconds since the epoch.
    pub const CREATED_AT: Column = Column {
        name: "created_at",
        kind: ColumnKind::Integer,
    };
    /// Seconds since the epoch.
    pub const UPDATED_AT: Column = Column {
        name: "updated_at",
        kind: ColumnKind::Integer,
    };
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationPage {
    pub rows: Vec<IntegrationRow>,
    /// How many integrations match, over every page.
    pub total: u64,
    /// The allowed resources of each integration of the page that has a role, when they were
    /// read with it (PostgreSQL); `None`: read them with [`Store::integrations_rules`].
    pub rules: Option<std::collections::HashMap<i64, Vec<String>>>,
}

/// A row of the PostgreSQL page statement: the integration, its rules, the count.
#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    row: IntegrationRow,
    rules: Option<Vec<String>>,
    total: i64,
}

impl Store {
    /// One page of the integrations a search finds, and how many it finds in all.
    pub async fn search_integrations(
        &self,
        search: &Search,
    ) -> Result<IntegrationPage, StoreError> {
        let sql = search.sql(self.backend(), "id");
        if let super::Pool::Postgres(pool) = &self.pool {
            self.ensure_available()?;
            let statement = format!(
                "WITH page AS (SELECT {} FROM integration{}{}{})
                 SELECT page.*,
                   (SELECT array_agg(r.resource_id ORDER BY r.resource_id)
                    FROM authorization_rule r JOIN authorization_role o ON o.id = r.role_id
                    WHERE o.user_type = 1 AND o.user_id = page.id AND r.permission = 'allow') AS rules,
                   (SELECT count(*) FROM integration{}) AS total
                 FROM page{}",
                integration_columns!(),
                sql.filter,
                sql.order,
                sql.page,
                sql.filter,
                sql.order
            );
            let q = bind_operands!(
                sqlx::query_as::<_, PageRow>(sqlx::AssertSqlSafe(statement)),
                &sql.binds
            );
            let found = q.fetch_all(pool).await?;
            let total = match found.first() {
                Some(r) => u64::try_from(r.total).unwrap_or(0),
                // A page past the last: the count on its own.
                None if search.offset > 0 => self.count_integrations(&sql).await?,
                None => 0,
            };
            let mut rules = std::collections::HashMap::new();
            let rows = found
                .into_iter()
                .map(|r| {
                    if let Some(list) = r.rules {
                        rules.insert(r.row.id, list);
                    }
                    r.row
                })
                .collect();
            return Ok(IntegrationPage {
                rows,
                total,
                rules: Some(rules),
            });
        }
        let page_sql = format!(
            "SELECT {} FROM integration{}{}{}",
            integration_columns!(),
            sql.filter,
            sql.order,
            sql.page
        );
        let rows: Vec<IntegrationRow> = read!(self,
            direct: |c| c
                .prepare_cached(&page_sql)?
                .query_map(rusqlite::params_from_iter(&sql.binds), IntegrationRow::read)?
                .collect::<rusqlite::Result<Vec<_>>>(),
            pool: |p| {
                let q = bind_operands!(sqlx::query_as::<_, IntegrationRow>(sqlx::AssertSqlSafe(page_sql.clone())), &sql.binds);
                q.fetch_all(p).await?
            },
        )?;
        // A first page that is not full holds everything: no count needed.
        let total = if search.offset == 0 && rows.len() < search.limit as usize {
            rows.len() as u64
        } else {
            self.count_integrations(&sql).await?
        };
        Ok(IntegrationPage {
            rows,
            total,
            rules: None,
        })
    }

    /// How many integrations the filter of a search finds.
    async fn count_integrations(&self, sql: &super::search::Sql) -> Result<u64, StoreError> {
        let count_sql = format!("SELECT count(*) FROM integration{}", sql.filter);
        let total: i64 = read!(self,
            direct: |c| c
                .prepare_cached(&count_sql)?
                .query_row(rusqlite::params_from_iter(&sql.filter_binds), |r| r.get(0)),
            pool: |p| {
                let q = bind_operands!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql.clone())), &sql.filter_binds);
                q.fetch_one(p).await?
            },
        )?;
        Ok(u64::try_from(total).unwrap_or(0))
    }
}
