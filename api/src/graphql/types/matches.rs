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

/// The score of a match.
#[derive(SimpleObject)]
#[graphql(name = "Score")]
pub struct ScoreNode {
    /// The home team's score, 0 to 999.
    home: i32,
    /// The away team's score, 0 to 999.
    away: i32,
}

/// Points scored in one period. A period is listed from when the match reaches it (going LIVE,
/// a clock update, PERIOD_START) or an event is recorded in it.
#[derive(SimpleObject)]
#[graphql(name = "PeriodScore")]
pub struct PeriodScoreNode {
    /// The period's number, from 1.
    period: i32,
    /// The period as a scoreboard shows it: "1H", "ET1", "PEN", "Q3", "P2", "OT1", "7", …
    label: String,
    /// Points the home team scored in the period.
    home: i32,
    /// Points the away team scored in the period.
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

/// The match clock as operators last set it. The server does not tick it between changes: while
/// `running` is true, clients count up locally from the last reading they received.
#[derive(SimpleObject)]
#[graphql(name = "Clock")]
pub struct ClockNode {
    /// The current period, from 1 (see `Sport` for each sport's periods).
    period: i32,
    /// The clock reading in seconds, 0 to 21600, e.g. 2700 at the start of a soccer second
    /// half.
    elapsed_seconds: i32,
    /// Whether the clock is running; it stops when the match is PAUSED or FINISHED and at a
    /// PERIOD_END.
    running: bool,
}

async fn load_team(ctx: &Context<'_>, id: &TeamId) -> Result<TeamNode> {
    let loader = ctx.data::<DataLoader<CatalogLoader>>()?;
    if let Some(team) = loader.loader().kept_team(id) {
        return Ok(TeamNode(team));
    }
    match loader.load_one(id.clone()).await {
        Ok(Some(team)) => Ok(TeamNode(team)),
        Ok(None) => {
            tracing::error!(team = %id, "a match refers to a missing team");
            Err(coded("internal error", INTERNAL_SERVER_ERROR))
        }
        Err(e) => Err(store_ref(&e)),
    }
}

/// A match between two teams, with its live state. Every change raises `version` by one;
/// `matchUpdated` pushes each new state.
#[Object(name = "Match")]
impl MatchNode {
    /// Its id, e.g. "soccer-live-1".
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The sport, always its competition's.
    async fn sport(&self) -> SportGql {
        self.0.sport.into()
    }
    /// The competition it belongs to.
    async fn competition(&self, ctx: &Context<'_>) -> Result<CompetitionNode> {
        let loader = ctx.data::<DataLoader<CatalogLoader>>()?;
        let id: &CompetitionId = &self.0.competition_id;
        if let Some(c) = loader.loader().kept_competition(id) {
            return Ok(CompetitionNode(c));
        }
        match loader.load_one(id.clone()).await {
            Ok(Some(c)) => Ok(CompetitionNode(c)),
            Ok(None) => {
                tracing::error!(competition = %id, "a match refers to a missing competition");
                Err(coded("internal error", INTERNAL_SERVER_ERROR))
            }
            Err(e) => Err(store_ref(&e)),
        }
    }
    /// The team playing at home.
    async fn home_team(&self, ctx: &Context<'_>) -> Result<TeamNode> {
        load_team(ctx, &self.0.home_team_id).await
    }
    /// The visiting team.
    async fn away_team(&self, ctx: &Context<'_>) -> Result<TeamNode> {
        load_team(ctx, &self.0.away_team_id).await
    }
    /// The scheduled start, to the second.
    async fn start_time(&self) -> UtcDateTime {
        self.0.start_time.into()
    }
    /// Where it is played; null when not given.
    async fn venue(&self) -> Option<&str> {
        self.0.venue.as_ref().map(|v| v.as_str())
    }
    /// Where the match stands (see `MatchStatus` for the allowed moves).
    async fn status(&self) -> MatchStatusGql {
        self.0.status.into()
    }
    /// The current score.
    async fn score(&self) -> ScoreNode {
        ScoreNode {
            home: self.0.score.home as i32,
            away: self.0.score.away as i32,
        }
    }
    /// Points per period, in period order; empty before kick-off.
    async fn periods(&self) -> Vec<PeriodScoreNode> {
        self.0.periods.iter().map(PeriodScoreNode::from).collect()
    }
    /// The match clock; null until the match first goes LIVE (or a period starts).
    async fn clock(&self) -> Option<ClockNode> {
        self.0.clock.map(|c| ClockNode {
            period: c.period as i32,
            elapsed_seconds: c.elapsed_seconds as i32,
            running: c.running,
        })
    }
    /// Sport-specific state: the `MatchDetails` member of the match's sport. Null only for an
    /// ICE_HOCKEY or AMERICAN_FOOTBALL match stored before those sports had details, until its
    /// first `updateDetails`.
    async fn details(&self) -> Option<DetailsNode> {
        self.0.details.as_ref().map(DetailsNode::from)
    }
    /// The timeline, ascending by `seq`: the events after `afterSeq`, at most `first` of them.
    /// Page on by passing the last `seq` you got as `afterSeq`. Out-of-range arguments fail with
    /// BAD_USER_INPUT.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = 0,
            desc = "Only events with a greater `seq` (0 or more); 0 starts at the first event."
        )]
        after_seq: i32,
        #[graphql(default = 50, desc = "How many events at most, 1 to 200.")] first: i32,
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
    /// The `seq` of the newest timeline event (0 before the first): resume `matchEvents` with
    /// it as `afterSeq`.
    async fn last_seq(&self) -> i32 {
        self.0.last_seq as i32
    }
    /// 1 when created; rises by one on every change. Send it as `expectedVersion` to refuse a
    /// change based on a stale read, and as `sinceVersion` to resume `matchUpdated`.
    async fn version(&self) -> i64 {
        self.0.version as i64
    }
    /// When the match last changed (server time).
    async fn updated_at(&self) -> UtcDateTime {
        self.0.updated_at.into()
    }
}

pub struct MatchEventNode(pub MatchEvent);

/// One entry on a match's timeline: a goal, a card, a status change, a note, …
#[Object(name = "MatchEvent")]
impl MatchEventNode {
    /// The event's own id, `<matchId>:<seq>` (e.g. `soccer-live-1:7`), unique across matches, for
    /// client caches such as Apollo Client's. Match ids may contain `:` as well: read `matchId`
    /// and `seq` rather than splitting it.
    async fn id(&self) -> ID {
        ID(format!("{}:{}", self.0.match_id, self.0.seq))
    }
    /// The match it belongs to.
    async fn match_id(&self) -> ID {
        ID(self.0.match_id.to_string())
    }
    /// Numbers the match's events 1, 2, 3, … in order, with no gaps.
    async fn seq(&self) -> i32 {
        self.0.seq as i32
    }
    /// What happened.
    #[graphql(name = "type")]
    async fn event_type(&self) -> EventTypeGql {
        self.0.event_type.into()
    }
    /// The side whose score the event changes (for an OWN_GOAL, the team credited; for a card,
    /// the carded player's team); null when the event names no side (e.g. STATUS_CHANGE).
    async fn side(&self) -> Option<SideGql> {
        self.0.side.map(Into::into)
    }
    /// The player concerned; null when not given.
    async fn player(&self) -> Option<&str> {
        self.0.player.as_ref().map(|p| p.as_str())
    }
    /// Points the event added to `side`'s score; 0 for events that do not score.
    async fn points(&self) -> i32 {
        self.0.points as i32
    }
    /// The period it happened in; null when the match had no clock yet and none was given.
    async fn period(&self) -> Option<i32> {
        self.0.period.map(|p| p as i32)
    }
    /// The clock reading when it happened, in seconds; null when the match had no clock yet and
    /// none was given.
    async fn clock_seconds(&self) -> Option<i32> {
        self.0.clock_seconds.map(|s| s as i32)
    }
    /// Free text; for STATUS_CHANGE and SCORE_CORRECTION, what changed (e.g. "SCHEDULED →
    /// LIVE"). Null when there is none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_ref().map(|d| d.as_str())
    }
    /// When it was recorded (server time).
    async fn created_at(&self) -> UtcDateTime {
        self.0.created_at.into()
    }
}

/// Where a page sits in a listing (Relay).
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more matches may follow this page. A page that read its whole budget without
    /// filling up says true, and the next page may turn out empty.
    pub has_next_page: bool,
    /// Whether matches come before this page, i.e. it was requested with `after`.
    pub has_previous_page: bool,
    /// The cursor of the page's first match; null on an empty page.
    pub start_cursor: Option<String>,
    /// The cursor to pass as `after` for the next page: the page's last match's, or, when the
    /// page read its whole budget without filling up, the position reading reached (past the
    /// last match, set even on an empty page). Null on an empty last page.
    pub end_cursor: Option<String>,
}

/// A match in a listing, with its cursor.
#[derive(SimpleObject)]
pub struct MatchEdge {
    /// An opaque cursor: pass it as `after` to list the matches that follow this one.
    pub cursor: String,
    /// The match.
    pub node: MatchNode,
}

/// A page of matches in start-time order (a Relay connection).
#[derive(SimpleObject)]
pub struct MatchConnection {
    /// The matches of this page, in order.
    pub edges: Vec<MatchEdge>,
    /// Where this page sits, and the cursor for the next one.
    pub page_info: PageInfo,
}
