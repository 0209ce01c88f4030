//! Searching integrations: the columns a search may name, and one page of what it finds with
//! the count of every match (the SQL itself is built by [`super::search`]).

use super::integrations::integration_columns;
use super::search::{Column, ColumnKind, Operand, Search};
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

impl Store {
    /// One page of the integrations a search finds, and how many it finds in all.
    pub async fn search_integrations(
        &self,
        search: &Search,
    ) -> Result<(Vec<IntegrationRow>, u64), StoreError> {
        let sql = search.sql(self.backend(), "id");
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
                let mut q = sqlx::query_as::<_, IntegrationRow>(sqlx::AssertSqlSafe(page_sql.clone()));
                for b in &sql.binds {
                    q = match b {
                        Operand::Int(i) => q.bind(*i),
                        Operand::Text(t) => q.bind(t.clone()),
                    };
                }
                q.fetch_all(p).await?
            },
        )?;
        // A first page that is not full holds everything: no count needed.
        if search.offset == 0 && rows.len() < search.limit as usize {
            let total = rows.len() as u64;
            return Ok((rows, total));
        }
        let count_sql = format!("SELECT count(*) FROM integration{}", sql.filter);
        let total: i64 = read!(self,
            direct: |c| c
                .prepare_cached(&count_sql)?
                .query_row(rusqlite::params_from_iter(&sql.filter_binds), |r| r.get(0)),
            pool: |p| {
                let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql.clone()));
                for b in &sql.filter_binds {
                    q = match b {
                        Operand::Int(i) => q.bind(*i),
                        Operand::Text(t) => q.bind(t.clone()),
                    };
                }
                q.fetch_one(p).await?
            },
        )?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }
}
