//! The store's edge for the domain's enums: each is read from and written to its column as
//! the code Magento stores (a number or a word), on both backends, so that rows carry enums and
//! a stored value that names no variant is a database error, never a guess.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};

use crate::domain::{IntegrationStatus, SetupType, TokenKind, UserType};

/// Implements `Type`, `Encode` and `Decode` for a domain enum stored as `$raw` (`i64` or
/// `String`), through `$to` (enum to raw) and its `TryFrom<$raw>`.
macro_rules! stored_as {
    ($enum:ty, $raw:ty, $to:expr) => {
        stored_as!(@db Sqlite, $enum, $raw, $to);
        stored_as!(@db Postgres, $enum, $raw, $to);
    };
    (@db $db:ty, $enum:ty, $raw:ty, $to:expr) => {
        impl Type<$db> for $enum {
            fn type_info() -> <$db as Database>::TypeInfo {
                <$raw as Type<$db>>::type_info()
            }

            fn compatible(ty: &<$db as Database>::TypeInfo) -> bool {
                <$raw as Type<$db>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, $db> for $enum {
            fn encode_by_ref(
                &self,
                buf: &mut <$db as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                let raw: $raw = ($to)(*self);
                <$raw as Encode<'q, $db>>::encode(raw, buf)
            }
        }

        impl<'r> Decode<'r, $db> for $enum {
            fn decode(value: <$db as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let raw = <$raw as Decode<'r, $db>>::decode(value)?;
                Ok(<$enum>::try_from(raw)?)
            }
        }
    };
}

stored_as!(TokenKind, String, |k: TokenKind| k.as_str().to_owned());
stored_as!(UserType, i64, UserType::code);
stored_as!(IntegrationStatus, i64, IntegrationStatus::code);
stored_as!(SetupType, i64, SetupType::code);

/// Implements `rusqlite`'s `FromSql` (the direct reads) for a domain enum stored as `$raw`.
macro_rules! read_directly_as {
    ($enum:ty, $raw:ty) => {
        impl rusqlite::types::FromSql for $enum {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let raw = <$raw as rusqlite::types::FromSql>::column_result(value)?;
                <$enum>::try_from(raw)
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

read_directly_as!(TokenKind, String);
read_directly_as!(UserType, i64);
read_directly_as!(IntegrationStatus, i64);
read_directly_as!(SetupType, i64);
