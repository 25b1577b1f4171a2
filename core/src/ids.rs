//! Identifiers. Every id is a newtype with a private field, built only through `parse`, so a
//! value of type `MatchId` is always a valid match id (1 to 64 characters of `[A-Za-z0-9_.:-]`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// The longest id we accept; ids are keys in DynamoDB and topics in the broker.
pub const MAX_ID_LEN: usize = 64;

fn check_id(field: &'static str, raw: &str) -> Result<(), ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if raw.len() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_ID_LEN} characters"),
        ));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(ValidationError::new(
            field,
            "may only contain letters, digits, '_', '-', '.' and ':'",
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id, naming the field in the error.
            pub fn parse(raw: impl Into<String>) -> Result<Self, ValidationError> {
                let raw = raw.into();
                check_id($field, &raw)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A match's id.
    MatchId,
    "matchId"
);
id_type!(
    /// A team's id.
    TeamId,
    "teamId"
);
id_type!(
    /// A competition's id.
    CompetitionId,
    "competitionId"
);
id_type!(
    /// The client's key for an idempotent mutation: a replay with the same key on the same match
    /// returns the first result and changes nothing.
    ClientMutationId,
    "clientMutationId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_of_letters_digits_and_separators_parses() {
        assert_eq!(
            MatchId::parse("m-2026_11.22:a").unwrap().as_str(),
            "m-2026_11.22:a"
        );
    }

    #[test]
    fn an_empty_id_is_refused_with_the_field_named() {
        let err = TeamId::parse("").unwrap_err();
        assert_eq!(err.field(), "teamId");
        assert!(err.to_string().contains("must not be empty"));
    }

    #[test]
    fn an_id_with_a_hash_or_space_is_refused() {
        assert!(MatchId::parse("MATCH#1").is_err());
        assert!(MatchId::parse("a b").is_err());
    }

    #[test]
    fn an_id_longer_than_the_limit_is_refused() {
        assert!(CompetitionId::parse("x".repeat(MAX_ID_LEN)).is_ok());
        assert!(CompetitionId::parse("x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn ids_refuse_invalid_values_when_deserialized() {
        assert!(serde_json::from_str::<MatchId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<MatchId>("\"not ok\"").is_err());
    }
}
