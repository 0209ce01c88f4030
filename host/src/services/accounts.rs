//! Admin users and customers: creation, passwords, deactivation, the first admin.

use std::fmt;

use super::ServiceError;
use crate::crypto::{self, PasswordError};
use crate::domain::{AccountKind, RevocationReason};
use crate::events::{Event, TokensRevoked};
use crate::store::{ADMINISTRATORS, AccountRow, AdminInsert, NewAccount, NewEvent, Store};

/// An admin username: 1-40 characters, no spaces or control characters (Magento allows 40).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// ```
    /// use integration_host::services::accounts::Username;
    /// assert!(Username::parse("admin").is_ok());
    /// assert!(Username::parse("a b").is_err());
    /// assert!(Username::parse("").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        let s = s.trim();
        if s.is_empty()
            || s.chars().count() > 40
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ServiceError::Invalid(
                "a username is 1-40 characters without spaces".into(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: one `@`, a non-empty local part, a domain with a dot, at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// ```
    /// use integration_host::services::accounts::Email;
    /// assert!(Email::parse("jo@example.com").is_ok());
    /// assert!(Email::parse("jo@localhost").is_err());
    /// assert!(Email::parse("jo example.com").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        let s = s.trim();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if !valid {
            return Err(ServiceError::Invalid(format!(
                "`{s}` is not a valid email address"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 7 characters or more, with letters and digits (Magento's admin rule).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// ```
    /// use integration_host::services::accounts::Password;
    /// assert!(Password::parse("abc1234").is_ok());
    /// assert!(Password::parse("abcdefgh").is_err());
    /// assert!(Password::parse("a1").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        if s.chars().count() < 7
            || !s.chars().any(|c| c.is_alphabetic())
            || !s.chars().any(|c| c.is_ascii_digit())
        {
            return Err(ServiceError::Invalid(
                "a password has at least 7 characters, with both letters and digits".into(),
            ));
        }
        if s.len() > 256 {
            return Err(ServiceError::Invalid(
                "a password has at most 256 bytes".into(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// A random password for a generated account (letters and digits, 20 characters).
    pub fn generate() -> Self {
        loop {
            let s = crypto::random_string(20);
            if let Ok(p) = Self::parse(&s) {
                return p;
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The account that a fresh installation gets, with the password to print once.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: Password,
}

/// Admin users and customers.
#[derive(Debug, Clone)]
pub struct AccountService {
    store: Store,
}

/// Details of a new account.
#[derive(Debug, Clone)]
pub struct AccountInput {
    /// Admin username; ignored for customers, whose login is the email.
    pub username: Option<Username>,
    pub email: Email,
    pub firstname: String,
    pub lastname: String,
    pub password: Password,
}

impl AccountService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates an admin user (username required; the role `Administrators`) or a customer.
    /// Returns the new id.
    pub async fn create(
        &self,
        kind: AccountKind,
        input: AccountInput,
    ) -> Result<i64, ServiceError> {
        self.create_with_role(kind, input, ADMINISTRATORS).await
    }

    /// Creates an admin user holding the role named `role` (ignored for customers). Returns
    /// the new id.
    #[tracing::instrument(skip(self, input), fields(email = %input.email.as_str()))]
    pub async fn create_with_role(
        &self,
        kind: AccountKind,
        input: AccountInput,
        role: &str,
    ) -> Result<i64, ServiceError> {
        let hash = crypto::hash_password(input.password.expose().to_owned()).await?;
        let login = match kind {
            AccountKind::Admin => input
                .username
                .as_ref()
                .ok_or_else(|| ServiceError::Invalid("an admin user needs a username".into()))?
                .as_str(),
            AccountKind::Customer => input.email.as_str(),
        };
        let new = NewAccount {
            login,
            email: input.email.as_str(),
            firstname: &input.firstname,
            lastname: &input.lastname,
            password_hash: &hash,
        };
        let taken = || ServiceError::Conflict(format!("{} already exists", describe(kind, login)));
        match kind {
            AccountKind::Admin => match self.store.insert_admin(&new, role).await? {
                AdminInsert::Created(id) => Ok(id),
                AdminInsert::LoginTaken => Err(taken()),
                AdminInsert::NoSuchRole => Err(ServiceError::NotFound(format!(
                    "The role \"{role}\" doesn't exist."
                ))),
            },
            AccountKind::Customer => self.store.insert_customer(&new).await?.ok_or_else(taken),
        }
    }

    /// Finds an account by login, or says it does not exist.
    pub async fn get(&self, kind: AccountKind, login: &str) -> Result<AccountRow, ServiceError> {
        self.store.find_account(kind, login).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("{} does not exist", describe(kind, login)))
        })
    }

    pub async fn list(&self, kind: AccountKind) -> Result<Vec<AccountRow>, ServiceError> {
        Ok(self.store.list_accounts(kind).await?)
    }

    /// Sets a new password.
    #[tracing::instrument(skip(self, password))]
    pub async fn set_password(
        &self,
        kind: AccountKind,
        login: &str,
        password: Password,
    ) -> Result<(), ServiceError> {
        let account = self.get(kind, login).await?;
        let hash = crypto::hash_password(password.expose().to_owned()).await?;
        self.store
            .set_password_hash(kind, account.id, &hash)
            .await?;
        Ok(())
    }

    /// Deactivates or reactivates an account; deactivation revokes its tokens (S-3.5).
    #[tracing::instrument(skip(self))]
    pub async fn set_active(
        &self,
        kind: AccountKind,
        login: &str,
        active: bool,
    ) -> Result<(), ServiceError> {
        let account = self.get(kind, login).await?;
        let revoked = revocation(kind, account.id, RevocationReason::Deactivated);
        self.store
            .set_account_active(kind, account.id, active, &revoked)
            .await?;
        Ok(())
    }

    /// Deletes an account; its tokens are revoked with it (S-3.5).
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, kind: AccountKind, login: &str) -> Result<AccountRow, ServiceError> {
        let account = self.get(kind, login).await?;
        let revoked = revocation(kind, account.id, RevocationReason::Deleted);
        self.store
            .delete_account(kind, account.id, &revoked)
            .await?;
        Ok(account)
    }

    /// The account with this id, if any.
    pub async fn by_id(
        &self,
        kind: AccountKind,
        id: i64,
    ) -> Result<Option<AccountRow>, ServiceError> {
        Ok(self.store.account_by_id(kind, id).await?)
    }

    /// Checks a login and password: `Some(account)` when both match an active account.
    pub async fn verify(
        &self,
        kind: AccountKind,
        login: &str,
        password: &str,
    ) -> Result<Option<AccountRow>, ServiceError> {
        let Some(account) = self.store.find_account(kind, login).await? else {
            // Take as long as a real check, so that timing does not tell which names exist.
            crypto::verify_password(password.to_owned(), dummy_hash().await?.to_owned()).await?;
            return Ok(None);
        };
        let ok =
            crypto::verify_password(password.to_owned(), account.password_hash.clone()).await?;
        if ok
            && account.is_active
            && account
                .password_hash
                .starts_with(crypto::MAGENTO_HASH_PREFIX)
        {
            // A password kept from a Magento import: replaced by this server's own hash at
            // its first successful sign-in.
            let hash = crypto::hash_password(password.to_owned()).await?;
            self.store
                .set_password_hash(kind, account.id, &hash)
                .await?;
            return Ok(Some(AccountRow {
                password_hash: hash,
                ..account
            }));
        }
        Ok((ok && account.is_active).then_some(account))
    }

    /// Creates the admin user `admin` with a random password when there is no admin user at
    /// all. Returns the account to announce, or `None` when one existed. Safe when several
    /// processes start at once: only one creates it.
    pub async fn bootstrap_admin(&self) -> Result<Option<BootstrapAdmin>, ServiceError> {
        if !self
            .store
            .list_accounts(AccountKind::Admin)
            .await?
            .is_empty()
        {
            return Ok(None);
        }
        let password = Password::generate();
        let hash = crypto::hash_password(password.expose().to_owned()).await?;
        let created = self
            .store
            .insert_first_admin(&NewAccount {
                login: "admin",
                email: "admin@example.com",
                firstname: "Admin",
                lastname: "User",
                password_hash: &hash,
            })
            .await?;
        Ok(created.map(|_| BootstrapAdmin {
            username: "admin".into(),
            password,
        }))
    }
}

/// A hash of a random password, made once, that unknown user names are checked against.
async fn dummy_hash() -> Result<&'static str, PasswordError> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_try_init(|| crypto::hash_password(crypto::random_string(20)))
        .await
        .map(String::as_str)
}

fn describe(kind: AccountKind, login: &str) -> String {
    match kind {
        AccountKind::Admin => format!("admin user `{login}`"),
        AccountKind::Customer => format!("customer `{login}`"),
    }
}

/// The `tokens_revoked` event written with a deactivation or a deletion.
fn revocation(kind: AccountKind, user_id: i64, reason: RevocationReason) -> NewEvent {
    super::outbox::recorded(&Event::TokensRevoked(TokensRevoked {
        account: kind,
        user_id,
        reason,
    }))
}
