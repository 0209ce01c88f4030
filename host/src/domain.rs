//! The product's small vocabulary, shared by every room: the kinds of accounts, tokens and
//! callers, an integration's status and origin, why tokens were revoked.
//!
//! Each is an enum with the codes Magento stores (`oauth_token.type`, `user_type`,
//! `integration.status`, `setup_type`); the store converts at its edge, so no rule ever
//! compares a raw string or number. Nothing here does I/O.

use std::fmt;

/// A stored value that names no variant: the column and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` in the database")]
pub struct UnknownCode {
    pub what: &'static str,
    pub value: String,
}

/// Which kind of account: an admin user or a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    Admin,
    Customer,
}

impl AccountKind {
    /// The account's Magento user type.
    pub fn user_type(self) -> UserType {
        match self {
            AccountKind::Admin => UserType::Admin,
            AccountKind::Customer => UserType::Customer,
        }
    }

    /// `admin` or `customer`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Admin => "admin",
            AccountKind::Customer => "customer",
        }
    }
}

/// Magento's user types (`UserContextInterface`): who holds a token or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserType {
    Integration,
    Admin,
    Customer,
}

impl UserType {
    /// The number Magento stores: 1 integration, 2 admin, 3 customer.
    pub fn code(self) -> i64 {
        match self {
            UserType::Integration => 1,
            UserType::Admin => 2,
            UserType::Customer => 3,
        }
    }

    /// The account kind of an admin or customer.
    pub fn account(self) -> Option<AccountKind> {
        match self {
            UserType::Integration => None,
            UserType::Admin => Some(AccountKind::Admin),
            UserType::Customer => Some(AccountKind::Customer),
        }
    }
}

impl TryFrom<i64> for UserType {
    type Error = UnknownCode;

    fn try_from(code: i64) -> Result<Self, UnknownCode> {
        match code {
            1 => Ok(UserType::Integration),
            2 => Ok(UserType::Admin),
            3 => Ok(UserType::Customer),
            other => Err(UnknownCode {
                what: "user type",
                value: other.to_string(),
            }),
        }
    }
}

/// The three stages of an integration's OAuth token (`oauth_token.type`): the verifier posted
/// to the endpoint at activation, the request token, and the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Verifier,
    Request,
    Access,
}

impl TokenKind {
    /// The word Magento stores.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Verifier => "verifier",
            TokenKind::Request => "request",
            TokenKind::Access => "access",
        }
    }
}

impl TryFrom<String> for TokenKind {
    type Error = UnknownCode;

    fn try_from(s: String) -> Result<Self, UnknownCode> {
        match s.as_str() {
            "verifier" => Ok(TokenKind::Verifier),
            "request" => Ok(TokenKind::Request),
            "access" => Ok(TokenKind::Access),
            _ => Err(UnknownCode {
                what: "token type",
                value: s,
            }),
        }
    }
}

/// An integration's status, as Magento numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrationStatus {
    Inactive,
    Active,
    /// Changed by its configuration file: the merchant must approve it again.
    Reset,
}

impl IntegrationStatus {
    /// Every status, in code order.
    pub const ALL: [IntegrationStatus; 3] = [
        IntegrationStatus::Inactive,
        IntegrationStatus::Active,
        IntegrationStatus::Reset,
    ];

    /// 0 inactive, 1 active, 2 reset.
    pub fn code(self) -> i64 {
        match self {
            IntegrationStatus::Inactive => 0,
            IntegrationStatus::Active => 1,
            IntegrationStatus::Reset => 2,
        }
    }

    /// The status a code names.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// `Inactive`, `Active` or `Reset`, as the admin grid shows it.
    pub fn label(self) -> &'static str {
        match self {
            IntegrationStatus::Inactive => "Inactive",
            IntegrationStatus::Active => "Active",
            IntegrationStatus::Reset => "Reset",
        }
    }
}

impl TryFrom<i64> for IntegrationStatus {
    type Error = UnknownCode;

    fn try_from(code: i64) -> Result<Self, UnknownCode> {
        Self::from_code(code).ok_or(UnknownCode {
            what: "integration status",
            value: code.to_string(),
        })
    }
}

/// Where an integration comes from: the admin (manual) or a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetupType {
    Manual,
    Config,
}

impl SetupType {
    /// 0 manual, 1 config.
    pub fn code(self) -> i64 {
        match self {
            SetupType::Manual => 0,
            SetupType::Config => 1,
        }
    }

    /// `manual` or `config`, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            SetupType::Manual => "manual",
            SetupType::Config => "config",
        }
    }
}

impl TryFrom<i64> for SetupType {
    type Error = UnknownCode;

    fn try_from(code: i64) -> Result<Self, UnknownCode> {
        match code {
            0 => Ok(SetupType::Manual),
            1 => Ok(SetupType::Config),
            other => Err(UnknownCode {
                what: "setup type",
                value: other.to_string(),
            }),
        }
    }
}

/// Why an account's tokens were revoked, as the `tokens_revoked` event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// The account holder revoked their own tokens.
    OwnRequest,
    /// An admin revoked them (REST, admin UI or CLI).
    Admin,
    /// The account was deactivated.
    Deactivated,
    /// The account was deleted.
    Deleted,
}

impl RevocationReason {
    /// `self`, `admin`, `deactivated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::OwnRequest => "self",
            RevocationReason::Admin => "admin",
            RevocationReason::Deactivated => "deactivated",
            RevocationReason::Deleted => "deleted",
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_as_written() {
        for s in IntegrationStatus::ALL {
            assert_eq!(IntegrationStatus::try_from(s.code()), Ok(s));
        }
        for t in [UserType::Integration, UserType::Admin, UserType::Customer] {
            assert_eq!(UserType::try_from(t.code()), Ok(t));
        }
        for k in [TokenKind::Verifier, TokenKind::Request, TokenKind::Access] {
            assert_eq!(TokenKind::try_from(k.as_str().to_owned()), Ok(k));
        }
        for s in [SetupType::Manual, SetupType::Config] {
            assert_eq!(SetupType::try_from(s.code()), Ok(s));
        }
        assert!(IntegrationStatus::try_from(7).is_err());
        assert!(UserType::try_from(0).is_err());
        assert_eq!(
            TokenKind::try_from("bearer".to_owned())
                .unwrap_err()
                .to_string(),
            "unknown token type `bearer` in the database"
        );
    }
}
