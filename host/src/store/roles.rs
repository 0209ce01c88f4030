//! Admin roles (Magento's user roles) as stored in `authorization_role` / `authorization_rule`.
//!
//! A role is a group row (`role_type` 'G') whose `allow` rules are the resources it grants,
//! ancestors included ("all resources" is the single rule `Magento_Backend::all`). An admin
//! holds at most one: a user row ('U', `user_type` 2, `user_id` = the admin's id, `role_name`
//! = the username) whose `parent_id` is the group row. Role names are unique whatever their
//! case (a partial index). Every write moves the store's generation, so that cached admin
//! grants are read again at the next request.

use std::collections::HashMap;

use super::{Store, StoreError, on_pool, read};
use crate::store::BeginWrite as _;

/// A role as stored: its rules and how many admins hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    pub id: i64,
    pub name: String,
    /// The allowed resources, sorted.
    pub rules: Vec<String>,
    /// The admins whose role it is.
    pub admins: i64,
}

/// An admin's role: its id, name and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRole {
    pub id: i64,
    pub name: String,
    pub rules: Vec<String>,
}

/// What [`Store::save_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSave {
    /// Written; the role's id.
    Saved(i64),
    /// Another role has the name.
    NameTaken,
    /// The role to update does not exist.
    NotFound,
}

/// What [`Store::delete_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleDeletion {
    Deleted,
    NotFound,
    /// Refused: this many admins hold it.
    Held(i64),
}

/// What [`Store::set_admin_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAssignment {
    Set,
    NoSuchAdmin,
    NoSuchRole,
}

/// The roles with their admin counts, by name (`$1`-free: a filter is appended).
const ROLES: &str = "SELECT g.id, g.role_name,
        (SELECT count(*) FROM authorization_role u
         WHERE u.parent_id = g.id AND u.role_type = 'U' AND u.user_type = 2) AS admins
     FROM authorization_role g WHERE g.role_type = 'G'";

/// The rules of roles (`$1`-free: a filter is appended).
const RULES: &str = "SELECT r.role_id, r.resource_id FROM authorization_rule r
     JOIN authorization_role g ON g.id = r.role_id
     WHERE g.role_type = 'G' AND r.permission = 'allow'";

/// Replaces the rules of group role `$role_id` with `$rules` inside the open transaction `$tx`.
macro_rules! write_role_rules {
    ($tx:expr, $role_id:expr, $rules:expr) => {{
        sqlx::query("DELETE FROM authorization_rule WHERE role_id = $1")
            .bind($role_id)
            .execute(&mut *$tx)
            .await?;
        for rule in $rules {
            sqlx::query(
                "INSERT INTO authorization_rule (role_id, resource_id, permission) VALUES ($1, $2, 'allow')",
            )
            .bind($role_id)
            .bind(rule.as_str())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Store {
    /// Every role, by name (case-insensitively).
    pub async fn list_roles(&self) -> Result<Vec<RoleRow>, StoreError> {
        self.roles_where("", None).await
    }

    /// The role with this id.
    pub async fn role(&self, id: i64) -> Result<Option<RoleRow>, StoreError> {
        Ok(self
            .roles_where(" AND g.id = $1", Some(RoleKey::Id(id)))
            .await?
            .pop())
    }

    /// The role with this name, whatever the case of its letters.
    pub async fn role_by_name(&self, name: &str) -> Result<Option<RoleRow>, StoreError> {
        Ok(self
            .roles_where(
                " AND lower(g.role_name) = lower($1)",
                Some(RoleKey::Name(name)),
            )
            .await?
            .pop())
    }

    async fn roles_where(
        &self,
        filter: &str,
        key: Option<RoleKey<'_>>,
    ) -> Result<Vec<RoleRow>, StoreError> {
        let roles_sql = format!("{ROLES}{filter} ORDER BY lower(g.role_name), g.id");
        let rules_sql = format!("{RULES}{filter} ORDER BY r.resource_id");
        let (roles, rules): (Vec<GroupRow>, Vec<(i64, String)>) = on_pool!(self, |p| {
            let mut roles = sqlx::query_as(sqlx::AssertSqlSafe(roles_sql.clone()));
            let mut rules = sqlx::query_as(sqlx::AssertSqlSafe(rules_sql.clone()));
            match key {
                Some(RoleKey::Id(id)) => {
                    roles = roles.bind(id);
                    rules = rules.bind(id);
                }
                Some(RoleKey::Name(name)) => {
                    roles = roles.bind(name);
                    rules = rules.bind(name);
                }
                None => {}
            }
            (roles.fetch_all(p).await?, rules.fetch_all(p).await?)
        });
        let mut by_role: HashMap<i64, Vec<String>> = HashMap::new();
        for (id, resource) in rules {
            by_role.entry(id).or_default().push(resource);
        }
        Ok(roles
            .into_iter()
            .map(|(id, name, admins)| RoleRow {
                id,
                name,
                rules: by_role.remove(&id).unwrap_or_default(),
                admins,
            })
            .collect())
    }

    /// Creates a role (`id` none) or replaces a role's name and rules, in one transaction.
    pub async fn save_role(
        &self,
        id: Option<i64>,
        name: &str,
        rules: &[String],
    ) -> Result<RoleSave, StoreError> {
        let saved = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM authorization_role WHERE role_type = 'G' AND lower(role_name) = lower($1)",
            )
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match (id, taken) {
                (_, Some(other)) if Some(other) != id => RoleSave::NameTaken,
                (None, _) => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
                         VALUES (NULL, 'G', NULL, NULL, $1) RETURNING id",
                    )
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
                    RoleSave::Saved(id)
                }
                (Some(id), _) => {
                    let n = sqlx::query(
                        "UPDATE authorization_role SET role_name = $1 WHERE id = $2 AND role_type = 'G'",
                    )
                    .bind(name)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        RoleSave::NotFound
                    } else {
                        RoleSave::Saved(id)
                    }
                }
            };
            if let RoleSave::Saved(id) = outcome {
                write_role_rules!(tx, id, rules);
                tx.commit().await?;
            }
            outcome
        });
        if matches!(saved, RoleSave::Saved(_)) {
            self.changed();
        }
        Ok(saved)
    }

    /// Deletes a role and its rules, unless an admin holds it.
    pub async fn delete_role(&self, id: i64) -> Result<RoleDeletion, StoreError> {
        let outcome = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let holders: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM authorization_role WHERE parent_id = $1 AND role_type = 'U'",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if holders > 0 {
                RoleDeletion::Held(holders)
            } else {
                sqlx::query("DELETE FROM authorization_rule WHERE role_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let n =
                    sqlx::query("DELETE FROM authorization_role WHERE id = $1 AND role_type = 'G'")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                tx.commit().await?;
                if n == 0 {
                    RoleDeletion::NotFound
                } else {
                    RoleDeletion::Deleted
                }
            }
        });
        if outcome == RoleDeletion::Deleted {
            self.changed();
        }
        Ok(outcome)
    }

    /// Gives an admin a role (replacing theirs), or takes their role away (`None`).
    pub async fn set_admin_role(
        &self,
        admin_id: i64,
        role_id: Option<i64>,
    ) -> Result<RoleAssignment, StoreError> {
        let outcome = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let username: Option<String> =
                sqlx::query_scalar("SELECT username FROM admin_user WHERE id = $1")
                    .bind(admin_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let role: Option<i64> = match role_id {
                Some(role_id) => {
                    sqlx::query_scalar(
                        "SELECT id FROM authorization_role WHERE id = $1 AND role_type = 'G'",
                    )
                    .bind(role_id)
                    .fetch_optional(&mut *tx)
                    .await?
                }
                None => None,
            };
            match (username, role_id, role) {
                (None, _, _) => RoleAssignment::NoSuchAdmin,
                (Some(_), Some(_), None) => RoleAssignment::NoSuchRole,
                (Some(username), _, Some(role)) => {
                    sqlx::query(
                        "INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
                         VALUES ($1, 'U', $2, 2, $3)
                         ON CONFLICT (user_type, user_id)
                         DO UPDATE SET parent_id = excluded.parent_id, role_name = excluded.role_name",
                    )
                    .bind(role)
                    .bind(admin_id)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    RoleAssignment::Set
                }
                (Some(_), None, None) => {
                    sqlx::query(
                        "DELETE FROM authorization_role WHERE user_type = 2 AND user_id = $1",
                    )
                    .bind(admin_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    RoleAssignment::Set
                }
            }
        });
        if outcome == RoleAssignment::Set {
            self.changed();
        }
        Ok(outcome)
    }

    /// An admin's role with its rules; `None` when they hold none.
    pub async fn admin_role(&self, admin_id: i64) -> Result<Option<AdminRole>, StoreError> {
        const SQL: &str = "SELECT g.id, g.role_name, r.resource_id
             FROM authorization_role u
             JOIN authorization_role g ON g.id = u.parent_id AND g.role_type = 'G'
             LEFT JOIN authorization_rule r ON r.role_id = g.id AND r.permission = 'allow'
             WHERE u.role_type = 'U' AND u.user_type = 2 AND u.user_id = $1
             ORDER BY r.resource_id";
        let rows: Vec<(i64, String, Option<String>)> = read!(self,
            direct: |c| c
                .prepare_cached(SQL)?
                .query_map([admin_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>(),
            pool: |p| sqlx::query_as(SQL).bind(admin_id).fetch_all(p).await?,
        )?;
        let mut role: Option<AdminRole> = None;
        for (id, name, resource) in rows {
            let r = role.get_or_insert_with(|| AdminRole {
                id,
                name,
                rules: Vec::new(),
            });
            r.rules.extend(resource);
        }
        Ok(role)
    }

    /// The role name of every admin who holds one, by admin id.
    pub async fn admin_role_names(&self) -> Result<HashMap<i64, String>, StoreError> {
        let pairs: Vec<(i64, String)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT u.user_id, g.role_name FROM authorization_role u
             JOIN authorization_role g ON g.id = u.parent_id AND g.role_type = 'G'
             WHERE u.role_type = 'U' AND u.user_type = 2"
        )
        .fetch_all(p)
        .await?);
        Ok(pairs.into_iter().collect())
    }
}

/// A group role's id, name and admin count, as read.
type GroupRow = (i64, String, i64);

/// How [`Store::roles_where`] picks roles.
#[derive(Clone, Copy)]
enum RoleKey<'a> {
    Id(i64),
    Name(&'a str),
}
