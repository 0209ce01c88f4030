//! ACL roles and rules of integrations (Magento's `authorization_role` / `authorization_rule`).
//!
//! An integration owns one user role (`role_type` 'U', `user_type` 1, `user_id` = integration
//! id) whose rules are the granted resources, ancestors included, as `allow` rows; everything
//! else is denied. "All resources" is the single rule `Magento_Backend::all`.

use std::collections::HashMap;

use super::{Store, StoreError, on_pool, read};
use crate::store::BeginWrite as _;

/// Replaces the rules of integration `$id` with `$rules` inside the open transaction `$tx`,
/// creating its role when missing. A macro so that one text serves both backends' transactions.
macro_rules! write_integration_rules {
    ($tx:expr, $id:expr, $rules:expr) => {{
        let role_id: i64 = sqlx::query_scalar(
            "INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
             VALUES (NULL, 'U', $1, 1, $2)
             ON CONFLICT (user_type, user_id) DO UPDATE SET role_name = excluded.role_name
             RETURNING id",
        )
        .bind($id)
        .bind($id.to_string())
        .fetch_one(&mut *$tx)
        .await?;
        sqlx::query("DELETE FROM authorization_rule WHERE role_id = $1")
            .bind(role_id)
            .execute(&mut *$tx)
            .await?;
        for rule in $rules {
            sqlx::query(
                "INSERT INTO authorization_rule (role_id, resource_id, permission) VALUES ($1, $2, 'allow')",
            )
            .bind(role_id)
            .bind(rule.as_str())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use write_integration_rules;

impl Store {
    /// The allowed resources of an integration (empty when it has no role).
    pub async fn integration_rules(&self, integration_id: i64) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT r.resource_id FROM authorization_rule r
             JOIN authorization_role o ON o.id = r.role_id
             WHERE o.user_type = 1 AND o.user_id = $1 AND r.permission = 'allow'
             ORDER BY r.resource_id";
        read!(self,
            direct: |c| c
                .prepare_cached(SQL)?
                .query_map([integration_id], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>(),
            pool: |p| sqlx::query_scalar::<_, String>(SQL)
                .bind(integration_id)
                .fetch_all(p)
                .await?,
        )
    }

    /// The allowed resources of several integrations, in one query (those without a role are
    /// missing from the map).
    pub async fn integrations_rules(
        &self,
        integration_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>, StoreError> {
        if integration_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let placeholders: Vec<String> = (1..=integration_ids.len())
            .map(|n| format!("${n}"))
            .collect();
        let sql = format!(
            "SELECT o.user_id, r.resource_id FROM authorization_rule r
             JOIN authorization_role o ON o.id = r.role_id
             WHERE o.user_type = 1 AND o.user_id IN ({}) AND r.permission = 'allow'
             ORDER BY o.user_id, r.resource_id",
            placeholders.join(", ")
        );
        let pairs: Vec<(i64, String)> = read!(self,
            direct: |c| c
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(integration_ids), |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>(),
            pool: |p| {
                let mut q = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql.clone()));
                for id in integration_ids {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await?
            },
        )?;
        let mut rules: HashMap<i64, Vec<String>> = HashMap::new();
        for (id, resource) in pairs {
            rules.entry(id).or_default().push(resource);
        }
        Ok(rules)
    }

    /// Replaces the rules of an integration, in one transaction. `false` when the integration
    /// does not exist.
    pub async fn set_integration_rules(
        &self,
        integration_id: i64,
        rules: &[String],
    ) -> Result<bool, StoreError> {
        let found = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM integration WHERE id = $1")
                    .bind(integration_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_some() {
                write_integration_rules!(tx, integration_id, rules);
            }
            tx.commit().await?;
            exists.is_some()
        });
        self.changed();
        Ok(found)
    }

    /// Deletes the role and rules of an integration.
    pub async fn delete_integration_rules(&self, integration_id: i64) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM authorization_role WHERE user_type = 1 AND user_id = $1"
        )
        .bind(integration_id)
        .execute(p)
        .await
        .map(|_| ())?);
        self.changed();
        Ok(())
    }
}
