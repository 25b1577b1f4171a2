//! Authorization of mutations: who may call them, decided from the request's principal.

use async_graphql::{Context, Guard, Result};

use crate::auth::{Principal, Role};
use crate::graphql::error::{coded, BAD_REQUEST, FORBIDDEN, UNAUTHENTICATED};

/// Marks a request that came over `GET /graphql`, where mutations are not allowed (a GET must
/// be safe to repeat and to cache).
pub struct HttpGet;

pub struct RoleGuard {
    needs: Role,
}

impl RoleGuard {
    /// Only admins.
    pub fn admin() -> Self {
        Self { needs: Role::Admin }
    }

    /// Operators and admins: the match-day mutations.
    pub fn operator() -> Self {
        Self {
            needs: Role::Operator,
        }
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        if ctx.data_opt::<HttpGet>().is_some() {
            return Err(coded("mutations must be sent with POST", BAD_REQUEST));
        }
        let Some(principal) = ctx.data_opt::<Principal>() else {
            return Err(coded(
                "this mutation needs a signed-in operator or admin: send a bearer token",
                UNAUTHENTICATED,
            ));
        };
        let allowed = match self.needs {
            Role::Admin => principal.is_admin(),
            Role::Operator => principal.can_operate(),
        };
        if allowed {
            Ok(())
        } else {
            Err(coded(
                format!("this mutation needs the {} role", self.needs.as_str()),
                FORBIDDEN,
            ))
        }
    }
}
