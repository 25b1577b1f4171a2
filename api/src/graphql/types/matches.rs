//! Matches, their score, clock, details and timeline.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object, Result, SimpleObject, ID};
use scoreline_core::model::PeriodScore;
use scoreline_core::{CompetitionId, Match, MatchEvent, TeamId};

use super::catalog::{CompetitionNode, TeamNode};
use super::details::DetailsNode;
use super::enums::{EventTypeGql, MatchStatusGql, SideGql, SportGql};
use super::scalars::UtcDateTime;
use crate::graphql::error::{coded, invalid, store, store_ref, INTERNAL_SERVER_ERROR};
use crate::graphql::loader::CatalogLoader;
use crate::graphql::schema::Services;

/// Most events one `Match.events` selection returns.
pub const MAX_EVENTS_PAGE: i32 = 200;

pub struct MatchNode(pub Match);

#[derive(SimpleObject)]
#[graphql(name = "Score")]
pub struct ScoreNode {
    home: i32,
    away: i32,
}

#[derive(SimpleObject)]
#[graphql(name = "PeriodScore")]
pub struct PeriodScoreNode {
    period: i32,
    label: String,
    home: i32,
    away: i32,
}

impl From<&PeriodScore> for PeriodScoreNode {
    fn from(p: &PeriodScore) -> Self {
        Self {
            period: p.period as i32,
            label: p.label.clone(),
            home: p.home as i32,
            away: p.away as i32,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Clock")]
pub struct ClockNode {
    period: i32,
    elapsed_seconds: i32,
    running: bool,
}

async fn load_team(ctx: &Context<'_>, id: &TeamId) -> Result<TeamNode> {
    let loader = ctx.data::<DataLoader<CatalogLoader>>()?;
    match loader.load_one(id.clone()).await {
        Ok(Some(team)) => Ok(TeamNode(team)),
        Ok(None) => {
            tracing::error!(team = %id, "a match refers to a missing team");
            Err(coded("internal error", INTERNAL_SERVER_ERROR))
        }
        Err(e) => Err(store_ref(&e)),
    }
}

#[Object(name = "Match")]
impl MatchNode {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn sport(&self) -> SportGql {
        self.0.sport.into()
    }
    async fn competition(&self, ctx: &Context<'_>) -> Result<CompetitionNode> {
        let loader = ctx.data::<DataLoader<CatalogLoader>>()?;
        let id: &CompetitionId = &self.0.competition_id;
        match loader.load_one(id.clone()).await {
            Ok(Some(c)) => Ok(CompetitionNode(c)),
            Ok(None) => {
                tracing::error!(competition = %id, "a match refers to a missing competition");
                Err(coded("internal error", INTERNAL_SERVER_ERROR))
            }
            Err(e) => Err(store_ref(&e)),
        }
    }
    async fn home_team(&self, ctx: &Context<'_>) -> Result<TeamNode> {
        load_team(ctx, &self.0.home_team_id).await
    }
    async fn away_team(&self, ctx: &Context<'_>) -> Result<TeamNode> {
        load_team(ctx, &self.0.away_team_id).await
    }
    async fn start_time(&self) -> UtcDateTime {
        self.0.start_time.into()
    }
    async fn venue(&self) -> Option<&str> {
        self.0.venue.as_ref().map(|v| v.as_str())
    }
    async fn status(&self) -> MatchStatusGql {
        self.0.status.into()
    }
    async fn score(&self) -> ScoreNode {
        ScoreNode {
            home: self.0.score.home as i32,
            away: self.0.score.away as i32,
        }
    }
    /// Points per period, in period order.
    async fn periods(&self) -> Vec<PeriodScoreNode> {
        self.0.periods.iter().map(PeriodScoreNode::from).collect()
    }
    async fn clock(&self) -> Option<ClockNode> {
        self.0.clock.map(|c| ClockNode {
            period: c.period as i32,
            elapsed_seconds: c.elapsed_seconds as i32,
            running: c.running,
        })
    }
    async fn details(&self) -> Option<DetailsNode> {
        self.0.details.as_ref().map(DetailsNode::from)
    }
    /// The timeline after `afterSeq`, ascending, at most `first` (≤ 200) events.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] after_seq: i32,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<MatchEventNode>> {
        if after_seq < 0 {
            return Err(invalid(scoreline_core::ValidationError::new(
                "afterSeq",
                "must not be negative",
            )));
        }
        if !(1..=MAX_EVENTS_PAGE).contains(&first) {
            return Err(invalid(scoreline_core::ValidationError::new(
                "first",
                format!("must be between 1 and {MAX_EVENTS_PAGE}"),
            )));
        }
        let services = ctx.data::<Services>()?;
        let events = services
            .store
            .events(&self.0.id, after_seq as u32, first as u32)
            .await
            .map_err(store)?;
        Ok(events.into_iter().map(MatchEventNode).collect())
    }
    /// The seq of the newest timeline event (0 before the first).
    async fn last_seq(&self) -> i32 {
        self.0.last_seq as i32
    }
    /// Rises by one on every change.
    async fn version(&self) -> i64 {
        self.0.version as i64
    }
    async fn updated_at(&self) -> UtcDateTime {
        self.0.updated_at.into()
    }
}

pub struct MatchEventNode(pub MatchEvent);

#[Object(name = "MatchEvent")]
impl MatchEventNode {
    /// The event's own id, `<matchId>:<seq>` (e.g. `soccer-live-1:7`), unique across matches, for
    /// client caches such as Apollo Client's. Match ids may contain `:` as well: read `matchId`
    /// and `seq` rather than splitting it.
    async fn id(&self) -> ID {
        ID(format!("{}:{}", self.0.match_id, self.0.seq))
    }
    async fn match_id(&self) -> ID {
        ID(self.0.match_id.to_string())
    }
    /// Numbers the match's events 1, 2, 3, … with no gaps.
    async fn seq(&self) -> i32 {
        self.0.seq as i32
    }
    #[graphql(name = "type")]
    async fn event_type(&self) -> EventTypeGql {
        self.0.event_type.into()
    }
    /// The side whose score the event changes (for an OWN_GOAL, the team credited).
    async fn side(&self) -> Option<SideGql> {
        self.0.side.map(Into::into)
    }
    async fn player(&self) -> Option<&str> {
        self.0.player.as_ref().map(|p| p.as_str())
    }
    async fn points(&self) -> i32 {
        self.0.points as i32
    }
    async fn period(&self) -> Option<i32> {
        self.0.period.map(|p| p as i32)
    }
    async fn clock_seconds(&self) -> Option<i32> {
        self.0.clock_seconds.map(|s| s as i32)
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_ref().map(|d| d.as_str())
    }
    async fn created_at(&self) -> UtcDateTime {
        self.0.created_at.into()
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct MatchEdge {
    pub cursor: String,
    pub node: MatchNode,
}

/// A Relay connection of matches.
#[derive(SimpleObject)]
pub struct MatchConnection {
    pub edges: Vec<MatchEdge>,
    pub page_info: PageInfo,
}
