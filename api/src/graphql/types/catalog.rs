//! Competitions and teams.

use async_graphql::{Object, ID};
use scoreline_core::{Competition, Team};

use super::enums::SportGql;

pub struct CompetitionNode(pub Competition);

/// A league, cup or tournament for one season; its matches and teams all play its sport.
#[Object(name = "Competition")]
impl CompetitionNode {
    /// Its id, e.g. "premier-division".
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its full name, e.g. "Premier Division".
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    /// The sport it plays.
    async fn sport(&self) -> SportGql {
        self.0.sport.into()
    }
    /// The season label, e.g. "2026" or "2026-27".
    async fn season(&self) -> &str {
        self.0.season.as_str()
    }
}

pub struct TeamNode(pub Team);

/// A team of one sport.
#[Object(name = "Team")]
impl TeamNode {
    /// Its id, e.g. "northbridge".
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its full name, e.g. "Northbridge FC".
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    /// Its abbreviation for scoreboards: 2 to 5 upper-case letters or digits, e.g. "NBR".
    async fn short_name(&self) -> &str {
        self.0.short_name.as_str()
    }
    /// The sport it plays.
    async fn sport(&self) -> SportGql {
        self.0.sport.into()
    }
}
