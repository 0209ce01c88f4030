//! The errors of the services: one [`ServiceError`] for every service call, the
//! [`FieldError`] of one bad input field, and the [`OauthError`] of the OAuth protocol.
//!
//! These say what went wrong in the product's terms; none carries an HTTP status. The web room
//! maps each variant to its protocol's answer (`web::error::service_error`, `web::oauth::problem`),
//! the CLI to its message and exit status.

use crate::crypto::{PasswordError, SecretBoxError};
use crate::store::StoreError;

/// A failure of a service call other than an OAuth protocol refusal.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request breaks a rule; the text says which, in the words the client sees.
    #[error("{0}")]
    Invalid(String),
    /// A plugin (a before-interceptor) refused the operation; the text is its message.
    #[error("{0}")]
    Refused(String),
    /// One input field is missing or invalid.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The input cannot be used, in Magento's words: a template and its values.
    #[error("{0}")]
    Input(Phrase),
    /// What the call names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name or key is already taken.
    #[error("{0}")]
    Conflict(String),
    /// The integrator's endpoint could not be reached or refused the credentials.
    #[error("{0}")]
    Endpoint(String),
    /// The database failed: never shown as "not found".
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored secret cannot be read: {0}")]
    Crypto(#[from] SecretBoxError),
    /// Hashing or verifying a password failed (not a wrong password: that is no error).
    #[error("password hashing failed: {0}")]
    Password(#[from] PasswordError),
}

impl ServiceError {
    /// Whether the database could not be reached: the answer is a 503, worth retrying.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ServiceError::Store(e) if e.is_unavailable())
    }

    /// Whether the server, not the caller, is at fault (the answer is a 500 and the cause is
    /// logged, not shown).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ServiceError::Store(_) | ServiceError::Crypto(_) | ServiceError::Password(_)
        )
    }
}

/// A missing or invalid input field, named as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {}{reason}", value.as_deref().map(|v| format!("`{v}` ")).unwrap_or_default())]
pub struct FieldError {
    pub field: &'static str,
    /// The offending value; `None` when the field is missing.
    pub value: Option<String>,
    pub reason: String,
}

impl FieldError {
    pub fn required(field: &'static str) -> Self {
        Self {
            field,
            value: None,
            reason: "is required".into(),
        }
    }

    pub fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            field,
            value: Some(value.to_owned()),
            reason: reason.into(),
        }
    }
}

/// A message as Magento phrases it: a template with `%1` or `%name` placeholders, and their
/// values. The OAuth endpoints answer it rendered; the REST API answers the template with its
/// `parameters`, as Magento's Web API does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub template: std::borrow::Cow<'static, str>,
    pub parameters: PhraseParameters,
}

/// The values of a [`Phrase`]'s placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhraseParameters {
    None,
    /// `%1`, `%2` …: a JSON array on the REST API.
    Positional(Vec<String>),
    /// `%name`: a JSON object on the REST API.
    Named(Vec<(&'static str, String)>),
}

impl Phrase {
    /// A template with `%1`, `%2` … filled from `values`.
    pub fn positional(template: &'static str, values: Vec<String>) -> Self {
        Self {
            template: template.into(),
            parameters: PhraseParameters::Positional(values),
        }
    }

    /// A template with `%name` placeholders filled from `values`.
    pub fn named(template: &'static str, values: Vec<(&'static str, String)>) -> Self {
        Self {
            template: template.into(),
            parameters: PhraseParameters::Named(values),
        }
    }

    /// The text with its placeholders filled in.
    pub fn render(&self) -> String {
        let mut text = self.template.to_string();
        match &self.parameters {
            PhraseParameters::None => {}
            // From the highest number down, so that `%1` does not eat the start of `%10`.
            PhraseParameters::Positional(values) => {
                for (i, v) in values.iter().enumerate().rev() {
                    text = text.replace(&format!("%{}", i + 1), v);
                }
            }
            // Longest names first, as PHP's `strtr` (Magento's renderer) does: `%field` must not
            // eat the start of `%fields`.
            PhraseParameters::Named(values) => {
                let mut values: Vec<_> = values.iter().collect();
                values.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
                for (name, v) in values {
                    text = text.replace(&format!("%{name}"), v);
                }
            }
        }
        text
    }
}

impl From<&'static str> for Phrase {
    fn from(text: &'static str) -> Self {
        Self {
            template: text.into(),
            parameters: PhraseParameters::None,
        }
    }
}

impl From<String> for Phrase {
    fn from(text: String) -> Self {
        Self {
            template: text.into(),
            parameters: PhraseParameters::None,
        }
    }
}

impl std::fmt::Display for Phrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

/// An OAuth refusal, answered as `oauth_problem=<problem>` in Magento's texts
/// (`docs/oauth-reference.md`), or on the REST API in its error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OauthError {
    /// The request is malformed or lacks a parameter (Magento answers 400).
    #[error("{0}")]
    Input(Phrase),
    /// Several input errors at once (Magento's aggregated `OauthInputException`): their texts
    /// without full stops, joined with `, `.
    #[error("{}", .0.iter().map(|p| p.render().trim_end_matches('.').to_owned()).collect::<Vec<_>>().join(", "))]
    Inputs(Vec<Phrase>),
    /// The credentials, token or signature are refused (Magento answers 401).
    #[error("{0}")]
    Refused(Phrase),
    /// The server failed; the cause was logged where it happened.
    #[error("internal_error&message=An internal error occurred")]
    Internal,
    /// The database could not be reached; the client may retry shortly.
    #[error("temporarily_unavailable&message=The service is temporarily unavailable")]
    Unavailable,
}

impl OauthError {
    /// An input error.
    pub fn input(problem: impl Into<Phrase>) -> Self {
        Self::Input(problem.into())
    }

    /// Input errors: one is [`OauthError::Input`], several [`OauthError::Inputs`].
    pub fn inputs(mut problems: Vec<Phrase>) -> Self {
        if problems.len() == 1 {
            Self::Input(problems.remove(0))
        } else {
            Self::Inputs(problems)
        }
    }

    /// An authentication refusal.
    pub fn auth(problem: impl Into<Phrase>) -> Self {
        Self::Refused(problem.into())
    }

    /// A server failure: logs its cause, which the client never sees. A database that cannot
    /// be reached is [`OauthError::Unavailable`].
    pub(crate) fn internal(e: impl Into<ServiceError>) -> Self {
        let e = e.into();
        if e.is_unavailable() {
            tracing::warn!(error = %e, "OAuth request failed: the database is unreachable");
            return Self::Unavailable;
        }
        tracing::error!(error = %e, "OAuth request failed");
        Self::Internal
    }
}
