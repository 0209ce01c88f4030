//! What an integration is made from: its name and URLs as checked values, the form a client
//! or the admin sends, and the input the services accept once every field reads.

use std::fmt;

use crate::domain::SetupType;
use crate::services::accounts::Email;
use crate::services::{FieldError, ServiceError};

/// An integration name: 1-255 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationName(String);

impl IntegrationName {
    /// ```
    /// use integration_host::services::integration::IntegrationName;
    /// assert_eq!(IntegrationName::parse("  Shop Sync ").unwrap().as_str(), "Shop Sync");
    /// assert!(IntegrationName::parse(" ").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 255 || s.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(
                "an integration name is 1-255 characters".into(),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute `http:` or `https:` URL with a host (endpoint or identity link).
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    /// ```
    /// use integration_host::services::integration::EndpointUrl;
    /// assert!(EndpointUrl::parse("https://partner.example/activate").is_ok());
    /// assert!(EndpointUrl::parse("javascript:alert(1)").is_err());
    /// assert!(EndpointUrl::parse("/relative").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        let url = url::Url::parse(s.trim())
            .map_err(|_| ServiceError::Invalid(format!("`{s}` is not an absolute URL")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ServiceError::Invalid(format!(
                "`{s}` must be an http: or https: URL with a host"
            )));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// Whether the URL is plain `http:` (shown as "not secure").
    pub fn is_insecure(&self) -> bool {
        self.0.scheme() == "http"
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// What an integration is made of, as a client sends it (REST, CLI, a definition file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationForm {
    pub name: String,
    pub email: Option<String>,
    pub endpoint: Option<String>,
    pub identity_link_url: Option<String>,
    pub all_resources: bool,
    pub resources: Vec<String>,
}

/// What an integration is made of, checked.
#[derive(Debug, Clone)]
pub struct IntegrationInput {
    pub name: IntegrationName,
    pub email: Option<Email>,
    pub endpoint: Option<EndpointUrl>,
    pub identity_link_url: Option<EndpointUrl>,
    pub setup_type: SetupType,
    /// Grant every resource (`Magento_Backend::all`).
    pub all_resources: bool,
    /// Resources to grant (their ancestors are added); ignored with `all_resources`.
    pub resources: Vec<String>,
    /// Fingerprint of the definition of a config integration; empty for manual ones.
    pub config_hash: String,
}

impl IntegrationInput {
    /// Checks a form field by field; the first bad field is named. Empty optional fields
    /// count as absent.
    pub fn parse(form: &IntegrationForm, setup_type: SetupType) -> Result<Self, FieldError> {
        fn url(field: &'static str, v: &Option<String>) -> Result<Option<EndpointUrl>, FieldError> {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => EndpointUrl::parse(v)
                    .map(Some)
                    .map_err(|e| FieldError::invalid(field, v, e.to_string())),
            }
        }
        if form.name.trim().is_empty() {
            return Err(FieldError::required("name"));
        }
        let name = IntegrationName::parse(&form.name)
            .map_err(|e| FieldError::invalid("name", &form.name, e.to_string()))?;
        let email = match form
            .email
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(v) => {
                Some(Email::parse(v).map_err(|e| FieldError::invalid("email", v, e.to_string()))?)
            }
        };
        Ok(Self {
            name,
            email,
            endpoint: url("endpoint", &form.endpoint)?,
            identity_link_url: url("identity_link_url", &form.identity_link_url)?,
            setup_type,
            all_resources: form.all_resources,
            resources: form.resources.clone(),
            config_hash: String::new(),
        })
    }
}
