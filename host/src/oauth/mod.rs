//! OAuth 1.0a signatures (RFC 5849), pure: no HTTP types, no SQL, no clock.
//!
//! This module owns what a signed request means: collecting its parameters from the
//! `Authorization` header, the query and an `application/x-www-form-urlencoded` body
//! ([`collect`]); the URL as signed ([`SignedUrl`]); the normalised parameter string and the
//! signature base string ([`base_string`]); HMAC-SHA1 and HMAC-SHA256 signing ([`sign`]) and
//! constant-time verification ([`verify`]).
//! What to look up, which clock to trust and which errors to answer belong to
//! `services::oauth`; this module only answers "what was signed, and does the signature match".

mod encode;
mod params;
mod signature;
mod signed_url;

pub use encode::percent_encode;
pub use params::{
    Collected, ParseError, Scheme, collect, parse_authorization, with_undecoded_query_names,
};
pub use signature::{SignatureMethod, base_string, normalize_parameters, sign, verify};
pub use signed_url::{SignedUrl, base_string_uri};

#[cfg(test)]
mod tests;
