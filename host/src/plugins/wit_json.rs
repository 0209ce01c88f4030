//! The newest plugin API's types as JSON, in the WIT's own words: what `plugin call` reads as a
//! plugin's input and prints as its answer.
//!
//! Field names are the WIT's (`customer-id`, `acl-allows`); a variant's case is its name as a
//! string when it carries nothing (`"guest"`, `"proceed"`) and an object of one key otherwise
//! (`{"admin": {"id": 1, "name": "jane"}}`, `{"veto": "why"}`); an enum's case is its name
//! (`"customer"`). Fields of option and list type may be left out (none, empty), as may a
//! timestamp (`at`, `now`: the current time in unix seconds); every other field is required and
//! an unknown one is an error, so a misspelt field is named rather than ignored. The types here
//! mirror the generated bindings through serde's remote derive: a field the WIT adds fails to
//! compile until it is added here too.

use serde::{Deserialize, Serialize};

use super::v1_1::{self, wit};

/// Input that is not what the role takes, with where in it: `path` is the field
/// (`customer-login.email`, `.` for the whole), `message` what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the input at `{path}`: {message}")]
pub struct InputError {
    pub path: String,
    pub message: String,
}

fn now() -> i64 {
    crate::clock::now()
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "wit::UserType", rename_all = "kebab-case")]
enum UserTypeDef {
    Integration,
    Admin,
    Customer,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "wit::IntegrationRef", deny_unknown_fields)]
struct IntegrationRefDef {
    id: i64,
    name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "wit::Account", deny_unknown_fields)]
struct AccountDef {
    id: i64,
    name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "wit::CustomerLogin",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct CustomerLoginDef {
    customer_id: i64,
    email: String,
    firstname: String,
    lastname: String,
    #[serde(default = "now")]
    at: i64,
    #[serde(default)]
    client_address: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "wit::AdminLogin",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct AdminLoginDef {
    admin_id: i64,
    username: String,
    #[serde(default = "now")]
    at: i64,
    #[serde(default)]
    client_address: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "wit::IntegrationSaved", deny_unknown_fields)]
struct IntegrationSavedDef {
    #[serde(with = "IntegrationRefDef")]
    integration: wit::IntegrationRef,
    created: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "wit::TokensRevoked",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct TokensRevokedDef {
    #[serde(with = "UserTypeDef")]
    user_type: wit::UserType,
    user_id: i64,
    reason: String,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "wit::OtherEvent",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct OtherEventDef {
    name: String,
    payload_json: String,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "wit::Event", rename_all = "kebab-case")]
enum EventDef {
    CustomerLogin(#[serde(with = "CustomerLoginDef")] wit::CustomerLogin),
    AdminLogin(#[serde(with = "AdminLoginDef")] wit::AdminLogin),
    IntegrationSaved(#[serde(with = "IntegrationSavedDef")] wit::IntegrationSaved),
    IntegrationActivated(#[serde(with = "IntegrationRefDef")] wit::IntegrationRef),
    IntegrationReset(#[serde(with = "IntegrationRefDef")] wit::IntegrationRef),
    IntegrationDeleted(#[serde(with = "IntegrationRefDef")] wit::IntegrationRef),
    TokensRevoked(#[serde(with = "TokensRevokedDef")] wit::TokensRevoked),
    Other(#[serde(with = "OtherEventDef")] wit::OtherEvent),
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "wit::Principal", rename_all = "kebab-case")]
enum PrincipalDef {
    Guest,
    Integration(#[serde(with = "IntegrationRefDef")] wit::IntegrationRef),
    Admin(#[serde(with = "AccountDef")] wit::Account),
    Customer(#[serde(with = "AccountDef")] wit::Account),
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "v1_1::ResolverRequest",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct ResolverRequestDef {
    #[serde(with = "PrincipalDef")]
    principal: wit::Principal,
    #[serde(default)]
    resources: Vec<String>,
    acl_allows: bool,
    method: String,
    path: String,
    #[serde(default)]
    client_address: Option<String>,
    #[serde(default = "now")]
    now: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Verdict", rename_all = "kebab-case")]
enum VerdictDef {
    Allow,
    Deny(String),
    Abstain,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Outcome", rename_all = "kebab-case")]
enum OutcomeDef {
    Proceed,
    Veto(String),
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "v1_1::IntegrationDefinition",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct IntegrationDefinitionDef {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    identity_link_url: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    all_resources: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "v1_1::IntegrationInput",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct IntegrationInputDef {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    identity_link_url: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    all_resources: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::IntegrationUpdate", deny_unknown_fields)]
struct IntegrationUpdateDef {
    #[serde(with = "IntegrationRefDef")]
    integration: wit::IntegrationRef,
    #[serde(with = "IntegrationInputDef")]
    input: v1_1::IntegrationInput,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "v1_1::SignIn",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct SignInDef {
    #[serde(with = "UserTypeDef")]
    user_type: wit::UserType,
    username: String,
    #[serde(default)]
    client_address: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Operation", rename_all = "kebab-case")]
enum OperationDef {
    IntegrationCreate(#[serde(with = "IntegrationInputDef")] v1_1::IntegrationInput),
    IntegrationUpdate(#[serde(with = "IntegrationUpdateDef")] v1_1::IntegrationUpdate),
    IntegrationDelete(#[serde(with = "IntegrationRefDef")] wit::IntegrationRef),
    IntegrationActivate(#[serde(with = "IntegrationRefDef")] wit::IntegrationRef),
    AdminSignIn(#[serde(with = "SignInDef")] v1_1::SignIn),
    CustomerSignIn(#[serde(with = "SignInDef")] v1_1::SignIn),
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Answer", rename_all = "kebab-case")]
enum AnswerDef {
    Pass,
    Rewrite(#[serde(with = "OperationDef")] v1_1::Operation),
    Refuse(String),
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "v1_1::AllowedRequest",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct AllowedRequestDef {
    #[serde(with = "PrincipalDef")]
    principal: wit::Principal,
    method: String,
    path: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    client_address: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Produced", rename_all = "kebab-case")]
enum ProducedDef {
    AdminToken(#[serde(with = "AccountDef")] wit::Account),
    CustomerToken(#[serde(with = "AccountDef")] wit::Account),
    RequestAllowed(#[serde(with = "AllowedRequestDef")] v1_1::AllowedRequest),
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Additions", deny_unknown_fields)]
struct AdditionsDef {
    #[serde(default)]
    claims: Vec<(String, String)>,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
#[serde(
    remote = "v1_1::Credentials",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
struct CredentialsDef {
    #[serde(with = "UserTypeDef")]
    user_type: wit::UserType,
    username: String,
    password: String,
    #[serde(default)]
    client_address: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "v1_1::Verification", rename_all = "kebab-case")]
enum VerificationDef {
    Accept(String),
    Refuse(String),
    Abstain,
}

/// Generates, for each type, a wrapper that reads and writes it in its JSON shape.
macro_rules! json_shape {
    ($($wrapper:ident($ty:ty) = $def:literal;)*) => {
        $(
            #[derive(Serialize, Deserialize)]
            #[serde(transparent)]
            struct $wrapper(#[serde(with = $def)] $ty);

            impl Shape for $ty {
                fn read(text: &str) -> Result<Self, InputError> {
                    parse::<$wrapper>(text).map(|w| w.0)
                }

                fn to_json(self) -> serde_json::Value {
                    serde_json::to_value($wrapper(self)).expect("plugin types serialize")
                }
            }
        )*
    };
}

/// A type of the plugin API with a JSON shape.
pub trait Shape: Sized {
    /// Reads it from JSON text; the error names the field.
    fn read(text: &str) -> Result<Self, InputError>;
    /// Writes it as JSON.
    fn to_json(self) -> serde_json::Value;
}

json_shape! {
    EventJson(wit::Event) = "EventDef";
    RequestJson(v1_1::ResolverRequest) = "ResolverRequestDef";
    VerdictJson(v1_1::Verdict) = "VerdictDef";
    OutcomeJson(v1_1::Outcome) = "OutcomeDef";
    DefinitionJson(v1_1::IntegrationDefinition) = "IntegrationDefinitionDef";
    OperationJson(v1_1::Operation) = "OperationDef";
    AnswerJson(v1_1::Answer) = "AnswerDef";
    ProducedJson(v1_1::Produced) = "ProducedDef";
    AdditionsJson(v1_1::Additions) = "AdditionsDef";
    CredentialsJson(v1_1::Credentials) = "CredentialsDef";
    VerificationJson(v1_1::Verification) = "VerificationDef";
}

/// Reads `T` from `text`, naming the field of any error (a missing field by its own name).
fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, InputError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut path = e.path().to_string();
        let message = e.into_inner().to_string();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
            .map(|(field, _)| field)
        {
            path = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
        }
        InputError { path, message }
    })?;
    de.end().map_err(|e| InputError {
        path: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_reads_in_the_wit_names_and_writes_back_the_same() {
        let text = r#"{"customer-login": {"customer-id": 7, "email": "jo@example.com",
            "firstname": "Jo", "lastname": "Doe", "at": 1700000000, "client-address": "10.0.0.1"}}"#;
        let event = wit::Event::read(text).unwrap();
        let wit::Event::CustomerLogin(login) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(login.customer_id, 7);
        assert_eq!(login.user_agent, None);
        assert_eq!(
            event.to_json(),
            json!({"customer-login": {"customer-id": 7, "email": "jo@example.com",
                "firstname": "Jo", "lastname": "Doe", "at": 1700000000,
                "client-address": "10.0.0.1", "user-agent": null}})
        );
    }

    #[test]
    fn a_request_takes_the_current_time_and_empty_lists_when_left_out() {
        let before = crate::clock::now();
        let r = v1_1::ResolverRequest::read(
            r#"{"principal": "guest", "acl-allows": false, "method": "GET", "path": "/x"}"#,
        )
        .unwrap();
        assert!(r.now >= before);
        assert!(r.resources.is_empty());
        assert!(matches!(r.principal, wit::Principal::Guest));
        let r = v1_1::ResolverRequest::read(
            r#"{"principal": {"integration": {"id": 3, "name": "Shop"}}, "acl-allows": true,
                "method": "GET", "path": "/x", "now": 5}"#,
        )
        .unwrap();
        assert_eq!(r.now, 5);
        assert!(matches!(r.principal, wit::Principal::Integration(ref i) if i.name == "Shop"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = |text: &str| wit::Event::read(text).unwrap_err();
        let e = err(r#"{"customer-login": {"customer-id": "seven"}}"#);
        assert_eq!(e.path, "customer-login.customer-id");
        assert!(e.message.contains("invalid type: string \"seven\""), "{e}");
        let e = err(r#"{"customer-login": {"customer-id": 7}}"#);
        assert_eq!(e.path, "customer-login.email");
        assert!(e.message.contains("missing field `email`"), "{e}");
        let e = err(r#"{"customer-login": {"customer_id": 7}}"#);
        assert!(e.message.contains("unknown field `customer_id`"), "{e}");
        assert!(e.message.contains("`customer-id`"), "{e}");
        let e = err(r#"{"customer-logout": {}}"#);
        assert!(
            e.message.contains("unknown variant `customer-logout`"),
            "{e}"
        );
        let e = err(r#"{"other": {"name": "x", "payload-json": "{}"}} trailing"#);
        assert_eq!(e.path, ".");
        let e = v1_1::ResolverRequest::read(
            r#"{"principal": {"admin": {"id": 1}}, "acl-allows": true, "method": "GET", "path": "/"}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "principal.admin.name");
        assert_eq!(
            e.to_string(),
            "the input at `principal.admin.name`: missing field `name` at line 1 column 33"
        );
    }

    #[test]
    fn answers_write_in_the_wit_names() {
        assert_eq!(v1_1::Verdict::Allow.to_json(), json!("allow"));
        assert_eq!(
            v1_1::Verdict::Deny("closed".into()).to_json(),
            json!({"deny": "closed"})
        );
        assert_eq!(v1_1::Outcome::Proceed.to_json(), json!("proceed"));
        let op = v1_1::Operation::read(
            r#"{"admin-sign-in": {"user-type": "admin", "username": "jane"}}"#,
        )
        .unwrap();
        assert_eq!(
            v1_1::Answer::Rewrite(op).to_json(),
            json!({"rewrite": {"admin-sign-in": {"user-type": "admin", "username": "jane",
                "client-address": null}}})
        );
        let additions = v1_1::Additions {
            claims: vec![("tenant".into(), "\"main\"".into())],
            headers: vec![],
        };
        assert_eq!(
            additions.to_json(),
            json!({"claims": [["tenant", "\"main\""]], "headers": []})
        );
    }
}
