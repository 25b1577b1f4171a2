//! The domain's error: a refused input, naming the field it concerns. Transports map it to
//! `BAD_USER_INPUT` with the field in the error's extensions. Also [`BoxError`], the cause the
//! ports' errors carry so that nothing below them is lost.

use std::borrow::Cow;

/// The cause of a port's error (an SDK error, an I/O error, or a message when there is none),
/// kept as the error's `source()` so logs can show the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
