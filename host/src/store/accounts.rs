//! Admin users and customers: the accounts that sign in for bearer tokens.

use super::tokens::revoke_account_tokens;
use super::{Backend, Store, StoreError, on_pool};
use crate::clock::now;
use crate::domain::AccountKind;
use crate::store::BeginWrite as _;

/// An admin user or customer as stored. `login` is the admin username or the customer email.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub login: String,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub password_hash: String,
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new account; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub login: &'a str,
    pub email: &'a str,
    pub firstname: &'a str,
    pub lastname: &'a str,
    pub password_hash: &'a str,
}

/// Ties a new admin user (`$1` id, `$2` username) to the group role named `$3`.
pub(super) const ADMIN_ROLE: &str =
    "INSERT INTO authorization_role (parent_id, role_type, user_id, user_type, role_name)
     SELECT id, 'U', $1, 2, $2 FROM authorization_role
     WHERE role_type = 'G' AND lower(role_name) = lower($3)";

/// The built-in role of every permission, which the first admin holds.
pub const ADMINISTRATORS: &str = "Administrators";

/// What [`Store::insert_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminInsert {
    Created(i64),
    LoginTaken,
    NoSuchRole,
}

impl Store {
    /// Inserts an admin user holding the role named `role`, in one transaction.
    pub async fn insert_admin(
        &self,
        new: &NewAccount<'_>,
        role: &str,
    ) -> Result<AdminInsert, StoreError> {
        let t = now();
        let outcome = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO admin_user (username, email, firstname, lastname, password_hash, is_active, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(new.login)
            .bind(new.email)
            .bind(new.firstname)
            .bind(new.lastname)
            .bind(new.password_hash)
            .bind(t)
            .fetch_optional(&mut *tx)
            .await?;
            match id {
                None => AdminInsert::LoginTaken,
                Some(id) => {
                    let tied = sqlx::query(ADMIN_ROLE)
                        .bind(id)
                        .bind(new.login)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if tied == 0 {
                        // Rolled back: no admin without the role asked for.
                        AdminInsert::NoSuchRole
                    } else {
                        tx.commit().await?;
                        AdminInsert::Created(id)
                    }
                }
            }
        });
        if matches!(outcome, AdminInsert::Created(_)) {
            self.changed();
        }
        Ok(outcome)
    }

    /// Inserts the first admin user, only when there is none yet (atomic across processes).
    /// Returns the new id, or `None` when an admin already existed.
    pub async fn insert_first_admin(
        &self,
        new: &NewAccount<'_>,
    ) -> Result<Option<i64>, StoreError> {
        // The table lock (PostgreSQL) or the write transaction (SQLite) makes "none yet, so
        // insert" one step when several processes start at once.
        let t = now();
        let id: Option<i64> = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            if self.backend() == Backend::Postgres {
                sqlx::query("LOCK TABLE admin_user IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO admin_user (username, email, firstname, lastname, password_hash, is_active, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5, TRUE, $6, $6
                 WHERE NOT EXISTS (SELECT 1 FROM admin_user)
                 RETURNING id",
            )
            .bind(new.login)
            .bind(new.email)
            .bind(new.firstname)
            .bind(new.lastname)
            .bind(new.password_hash)
            .bind(t)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = id {
                sqlx::query(ADMIN_ROLE)
                    .bind(id)
                    .bind(new.login)
                    .bind(ADMINISTRATORS)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Inserts a customer; `None` when the email is taken.
    pub async fn insert_customer(&self, new: &NewAccount<'_>) -> Result<Option<i64>, StoreError> {
        let t = now();
        let id = on_pool!(self, |p| {
            sqlx::query_scalar(
                "INSERT INTO customer (email, firstname, lastname, password_hash, is_active, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, TRUE, $5, $5)
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(new.email)
            .bind(new.firstname)
            .bind(new.lastname)
            .bind(new.password_hash)
            .bind(t)
            .fetch_optional(p)
            .await?
        });
        Ok(id)
    }

    /// Finds an account by login (admin username or customer email), case-insensitively.
    pub async fn find_account(
        &self,
        kind: AccountKind,
        login: &str,
    ) -> Result<Option<AccountRow>, StoreError> {
        let row = on_pool!(self, |p| match kind {
            AccountKind::Admin => {
                sqlx::query_as::<_, AccountRow>(
                    "SELECT id, username AS login, email, firstname, lastname, password_hash, is_active, created_at, updated_at
                     FROM admin_user WHERE lower(username) = lower($1)",
                )
                .bind(login)
                .fetch_optional(p)
                .await?
            }
            AccountKind::Customer => {
                sqlx::query_as::<_, AccountRow>(
                    "SELECT id, email AS login, email, firstname, lastname, password_hash, is_active, created_at, updated_at
                     FROM customer WHERE lower(email) = lower($1)",
                )
                .bind(login)
                .fetch_optional(p)
                .await?
            }
        });
        Ok(row)
    }

    /// An account by id.
    pub async fn account_by_id(
        &self,
        kind: AccountKind,
        id: i64,
    ) -> Result<Option<AccountRow>, StoreError> {
        let sql = match kind {
            AccountKind::Admin => {
                "SELECT id, username AS login, email, firstname, lastname, password_hash, is_active, created_at, updated_at
                 FROM admin_user WHERE id = $1"
            }
            AccountKind::Customer => {
                "SELECT id, email AS login, email, firstname, lastname, password_hash, is_active, created_at, updated_at
                 FROM customer WHERE id = $1"
            }
        };
        let row = on_pool!(self, |p| sqlx::query_as::<_, AccountRow>(sql)
            .bind(id)
            .fetch_optional(p)
            .await?);
        Ok(row)
    }

    /// Every account of a kind, oldest first.
    pub async fn list_accounts(&self, kind: AccountKind) -> Result<Vec<AccountRow>, StoreError> {
        let rows = on_pool!(self, |p| match kind {
            AccountKind::Admin => {
                sqlx::query_as::<_, AccountRow>(
                    "SELECT id, username AS login, email, firstname, lastname, password_hash, is_active, created_at, updated_at
                     FROM admin_user ORDER BY id",
                )
                .fetch_all(p)
                .await?
            }
            AccountKind::Customer => {
                sqlx::query_as::<_, AccountRow>(
                    "SELECT id, email AS login, email, firstname, lastname, password_hash, is_active, created_at, updated_at
                     FROM customer ORDER BY id",
                )
                .fetch_all(p)
                .await?
            }
        });
        Ok(rows)
    }

    /// Replaces an account's password hash. Returns whether the account exists.
    pub async fn set_password_hash(
        &self,
        kind: AccountKind,
        id: i64,
        hash: &str,
    ) -> Result<bool, StoreError> {
        let sql = match kind {
            AccountKind::Admin => {
                "UPDATE admin_user SET password_hash = $1, updated_at = $2 WHERE id = $3"
            }
            AccountKind::Customer => {
                "UPDATE customer SET password_hash = $1, updated_at = $2 WHERE id = $3"
            }
        };
        let n = on_pool!(self, |p| sqlx::query(sql)
            .bind(hash)
            .bind(now())
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        self.changed();
        Ok(n == 1)
    }

    /// Activates or deactivates an account. Deactivating also revokes its tokens in the same
    /// transaction (bearer tokens issued until now are refused, stored tokens are deleted) and
    /// writes `revoked`. Returns whether the account exists.
    pub async fn set_account_active(
        &self,
        kind: AccountKind,
        id: i64,
        active: bool,
        revoked: &super::NewEvent,
    ) -> Result<bool, StoreError> {
        let postgres = self.is_postgres();
        let update = match kind {
            AccountKind::Admin => {
                "UPDATE admin_user SET is_active = $1, updated_at = $2 WHERE id = $3"
            }
            AccountKind::Customer => {
                "UPDATE customer SET is_active = $1, updated_at = $2 WHERE id = $3"
            }
        };
        let t = now();
        let found = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let n = sqlx::query(update)
                .bind(active)
                .bind(t)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 && !active {
                revoke_account_tokens!(tx, kind, id, t);
                super::outbox::record_event!(tx, revoked, postgres);
            }
            tx.commit().await?;
            n == 1
        });
        self.changed();
        Ok(found)
    }

    /// Deletes an account; its stored tokens go with it and its bearer tokens issued until now
    /// are refused, reported by `revoked`. Returns whether it existed.
    pub async fn delete_account(
        &self,
        kind: AccountKind,
        id: i64,
        revoked: &super::NewEvent,
    ) -> Result<bool, StoreError> {
        let postgres = self.is_postgres();
        let delete = match kind {
            AccountKind::Admin => "DELETE FROM admin_user WHERE id = $1",
            AccountKind::Customer => "DELETE FROM customer WHERE id = $1",
        };
        let t = now();
        let found = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            revoke_account_tokens!(tx, kind, id, t);
            if kind == AccountKind::Admin {
                sqlx::query("DELETE FROM authorization_role WHERE user_type = 2 AND user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let n = sqlx::query(delete)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                super::outbox::record_event!(tx, revoked, postgres);
            }
            tx.commit().await?;
            n == 1
        });
        self.changed();
        Ok(found)
    }

    /// The time before which tokens of this account are refused, if it was ever revoked.
    pub async fn revoked_before(
        &self,
        kind: AccountKind,
        id: i64,
    ) -> Result<Option<i64>, StoreError> {
        let v = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT revoke_before FROM jwt_auth_revoked WHERE user_type = $1 AND user_id = $2"
        )
        .bind(kind.user_type())
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(v)
    }
}
