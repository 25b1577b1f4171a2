//! Competitions and teams.

use async_graphql::{Object, ID};
use scoreline_core::{Competition, Team};

use super::enums::SportGql;

pub struct CompetitionNode(pub Competition);

#[Object(name = "Competition")]
impl CompetitionNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn sport(&self) -> SportGql {
        self.0.sport.into()
    }
    async fn season(&self) -> &str {
        self.0.season.as_str()
    }
}

pub struct TeamNode(pub Team);

#[Object(name = "Team")]
impl TeamNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn short_name(&self) -> &str {
        self.0.short_name.as_str()
    }
    async fn sport(&self) -> SportGql {
        self.0.sport.into()
    }
}
