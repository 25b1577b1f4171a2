//! The domain's error: a refused input, naming the field it concerns. Transports map it to
//! `BAD_USER_INPUT` with the field in the error's extensions.

use std::borrow::Cow;

/// An input that breaks a rule. The message is written for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    field: Cow<'static, str>,
    message: Cow<'static, str>,
}

impl ValidationError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The input field the error is about, e.g. `homeTeamId`.
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}
