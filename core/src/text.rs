//! Bounded, trimmed strings. Each kind of text has its own type with its own limits, so a name
//! can never be mistaken for a description and no unbounded string reaches the store.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

fn check_text(
    field: &'static str,
    raw: &str,
    min: usize,
    max: usize,
) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min {
        return Err(ValidationError::new(
            field,
            if min == 1 {
                "must not be empty".to_string()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if chars > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            /// Trims and checks the text against this kind's limits.
            pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValidationError> {
                check_text($field, raw.as_ref(), $min, $max).map(Self)
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
            fn from(text: $name) -> String {
                text.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A competition's or team's full name.
    Name,
    "name",
    1,
    100
);
text_type!(
    /// A season label such as "2026" or "2026-27".
    Season,
    "season",
    1,
    20
);
text_type!(
    /// Where a match is played.
    Venue,
    "venue",
    1,
    120
);
text_type!(
    /// A player's name on a timeline event.
    PlayerName,
    "player",
    1,
    80
);
text_type!(
    /// Free text on a timeline event.
    Description,
    "description",
    1,
    500
);

/// A team's abbreviation: 2 to 5 letters or digits, upper case (e.g. "ARS", "LAL").
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShortName(String);

impl ShortName {
    pub const MAX_CHARS: usize = 5;

    pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValidationError> {
        let raw = raw.as_ref().trim();
        let len = raw.chars().count();
        if !(2..=Self::MAX_CHARS).contains(&len) {
            return Err(ValidationError::new(
                "shortName",
                format!("must be 2 to {} characters", Self::MAX_CHARS),
            ));
        }
        if !raw.chars().all(|c| c.is_alphanumeric()) {
            return Err(ValidationError::new(
                "shortName",
                "may only contain letters and digits",
            ));
        }
        Ok(Self(raw.to_uppercase()))
    }

    /// The default abbreviation for a team name: the initials of a multi-word name ("Real Madrid
    /// Club" → "RMC"), or the first three letters of a single word ("Arsenal" → "ARS").
    pub fn derive_from(name: &Name) -> Self {
        let words: Vec<&str> = name
            .as_str()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut short: String = if words.len() >= 2 {
            words
                .iter()
                .filter_map(|w| w.chars().next())
                .take(Self::MAX_CHARS)
                .collect()
        } else {
            words
                .first()
                .map(|w| w.chars().take(3).collect())
                .unwrap_or_default()
        };
        short = short.to_uppercase();
        while short.chars().count() < 2 {
            short.push('X');
        }
        Self(short)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ShortName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<ShortName> for String {
    fn from(s: ShortName) -> String {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(Name::parse("  Arsenal ").unwrap().as_str(), "Arsenal");
    }

    #[test]
    fn a_blank_name_is_refused() {
        let err = Name::parse("   ").unwrap_err();
        assert_eq!(err.field(), "name");
    }

    #[test]
    fn a_name_over_its_limit_is_refused_counting_characters_not_bytes() {
        assert!(Name::parse("é".repeat(100)).is_ok());
        assert!(Name::parse("é".repeat(101)).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(Description::parse("goal\u{0}").is_err());
    }

    #[test]
    fn short_names_default_to_initials_or_first_letters() {
        let n = |s| ShortName::derive_from(&Name::parse(s).unwrap());
        assert_eq!(n("Arsenal").as_str(), "ARS");
        assert_eq!(n("Los Angeles Lakers").as_str(), "LAL");
        assert_eq!(n("FC Porto").as_str(), "FP");
        assert_eq!(n("X").as_str(), "XX");
    }

    #[test]
    fn short_names_are_upper_cased_and_bounded() {
        assert_eq!(ShortName::parse("bos").unwrap().as_str(), "BOS");
        assert!(ShortName::parse("B").is_err());
        assert!(ShortName::parse("TOOLONG").is_err());
        assert!(ShortName::parse("A-B").is_err());
    }
}
