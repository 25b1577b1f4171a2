//! Mutations: the catalogue (admin) and match-day changes (operator or admin). Each parses its
//! input, then calls the core's use case; none publishes anything: subscribers hear of the
//! change through the store's change stream.

use async_graphql::{Context, Object, Result};
use chrono::{SubsecRound, Utc};
use scoreline_core::model::{Details, MatchStatus, Score};
use scoreline_core::service;
use scoreline_core::{Competition, CompetitionId, Match, MatchId, Team, TeamId};

use crate::graphql::error::{invalid, service as service_error};
use crate::graphql::guard::RoleGuard;
use crate::graphql::schema::{Services, WriteRetry};
use crate::graphql::types::inputs::{
    CreateCompetitionInput, CreateMatchInput, CreateTeamInput, MatchDay, RecordEventInput,
    SetMatchStatusInput, UpdateClockInput, UpdateDetailsInput, UpdateScoreInput,
};
use crate::graphql::types::{enums, CompetitionNode, MatchNode, TeamNode};
use crate::ids::generate_id;

pub struct MutationRoot;

async fn match_day(
    ctx: &Context<'_>,
    parsed: std::result::Result<MatchDay, scoreline_core::ValidationError>,
) -> Result<MatchNode> {
    let MatchDay {
        match_id,
        command,
        mut options,
    } = parsed.map_err(invalid)?;
    let services = ctx.data::<Services>()?;
    if let Ok(retry) = ctx.data::<WriteRetry>() {
        options.retry_for = chrono::Duration::from_std(retry.0).ok();
    }
    let result = service::apply_command(
        services.store.as_ref(),
        &match_id,
        &command,
        &options,
        || Utc::now().trunc_subsecs(3),
    )
    .await;
    // Read-your-writes: cached reads of the match end before this answer goes out, whether
    // or not the write is known to have committed (a timed-out write may have).
    services.responses.match_changed(&match_id);
    Ok(MatchNode(result.map_err(service_error)?))
}

/// Changes, for signed-in staff: send `Authorization: Bearer <jwt>` whose `cognito:groups`
/// holds `admin` (every mutation) or `operator` (the match-day ones). Mutations must be POSTed
/// (over GET they fail with BAD_REQUEST). Subscribers hear of each change. SERVICE_UNAVAILABLE
/// means the store was briefly unavailable or too busy with this match: retry.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a competition.
    /// Admin only: without a token UNAUTHENTICATED, with another role FORBIDDEN. Invalid input
    /// fails with BAD_USER_INPUT, `extensions.field` naming the input field.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn create_competition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new competition.")] input: CreateCompetitionInput,
    ) -> Result<CompetitionNode> {
        let sport = enums::sport(input.sport);
        let (id, name, season) = input.parse().map_err(invalid)?;
        let id = match id {
            Some(id) => id,
            None => CompetitionId::parse(generate_id("c")).expect("generated ids are valid"),
        };
        let services = ctx.data::<Services>()?;
        let competition = Competition {
            id,
            name,
            sport,
            season,
            created_at: Utc::now().trunc_subsecs(3),
        };
        let c = service::create_competition(services.store.as_ref(), competition)
            .await
            .map_err(service_error)?;
        Ok(CompetitionNode(c))
    }

    /// Creates a team, registered in the competitions given.
    /// Admin only: without a token UNAUTHENTICATED, with another role FORBIDDEN. Invalid input
    /// fails with BAD_USER_INPUT, `extensions.field` naming the input field.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new team.")] input: CreateTeamInput,
    ) -> Result<TeamNode> {
        let sport = enums::sport(input.sport);
        let new = input.parse().map_err(invalid)?;
        let id = match new.id {
            Some(id) => id,
            None => TeamId::parse(generate_id("t")).expect("generated ids are valid"),
        };
        let services = ctx.data::<Services>()?;
        let team = Team {
            id,
            name: new.name,
            short_name: new.short_name,
            sport,
            created_at: Utc::now().trunc_subsecs(3),
        };
        let t = service::create_team(services.store.as_ref(), team, &new.competitions)
            .await
            .map_err(service_error)?;
        Ok(TeamNode(t))
    }

    /// Creates a SCHEDULED match at version 1, with its sport's initial details; it takes its
    /// competition's sport, and registers both teams in the competition.
    /// Admin only: without a token UNAUTHENTICATED, with another role FORBIDDEN. Invalid input
    /// fails with BAD_USER_INPUT, `extensions.field` naming the input field.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn create_match(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new match.")] input: CreateMatchInput,
    ) -> Result<MatchNode> {
        let new = input.parse().map_err(invalid)?;
        let services = ctx.data::<Services>()?;
        let store = services.store.as_ref();
        // The sport comes from the competition; create_match checks the teams against it.
        let sport = match store.competition(&new.competition_id).await {
            Ok(Some(c)) => c.sport,
            Ok(None) => {
                return Err(invalid(scoreline_core::ValidationError::new(
                    "competitionId",
                    format!("no competition with id {}", new.competition_id),
                )))
            }
            Err(e) => return Err(crate::graphql::error::store(e)),
        };
        let now = Utc::now().trunc_subsecs(3);
        let m = Match {
            id: match new.id {
                Some(id) => id,
                None => MatchId::parse(generate_id("m")).expect("generated ids are valid"),
            },
            sport,
            competition_id: new.competition_id,
            home_team_id: new.home_team_id,
            away_team_id: new.away_team_id,
            start_time: new.start_time,
            venue: new.venue,
            status: MatchStatus::Scheduled,
            score: Score::default(),
            periods: Vec::new(),
            clock: None,
            details: Details::initial(sport),
            last_seq: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let id = m.id.clone();
        let result = service::create_match(store, m).await;
        // `match(id)` may have been answered with null, and listings change.
        services.responses.match_changed(&id);
        Ok(MatchNode(result.map_err(service_error)?))
    }

    /// Moves a match through its status machine and appends a STATUS_CHANGE event. Going LIVE
    /// from SCHEDULED starts the clock in period 1; PAUSED and FINISHED stop it.
    /// Operator or admin: without a token UNAUTHENTICATED, with another role FORBIDDEN. An
    /// unknown match is NOT_FOUND; a stale `expectedVersion` is VERSION_CONFLICT with
    /// `extensions.currentVersion`; anything the rules refuse is BAD_USER_INPUT with
    /// `extensions.field`. Returns the match after the change.
    #[graphql(guard = "RoleGuard::operator()")]
    async fn set_match_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match and its new status.")] input: SetMatchStatusInput,
    ) -> Result<MatchNode> {
        match_day(ctx, input.parse()).await
    }

    /// Appends a timeline event and applies its points to the score, in one atomic write.
    /// Operator or admin: without a token UNAUTHENTICATED, with another role FORBIDDEN. An
    /// unknown match is NOT_FOUND; a stale `expectedVersion` is VERSION_CONFLICT with
    /// `extensions.currentVersion`; anything the rules refuse is BAD_USER_INPUT with
    /// `extensions.field`. Returns the match after the change.
    #[graphql(guard = "RoleGuard::operator()")]
    async fn record_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event to record.")] input: RecordEventInput,
    ) -> Result<MatchNode> {
        match_day(ctx, input.parse()).await
    }

    /// Sets the score absolutely (a correction) and appends a SCORE_CORRECTION event.
    /// Operator or admin: without a token UNAUTHENTICATED, with another role FORBIDDEN. An
    /// unknown match is NOT_FOUND; a stale `expectedVersion` is VERSION_CONFLICT with
    /// `extensions.currentVersion`; anything the rules refuse is BAD_USER_INPUT with
    /// `extensions.field`. Returns the match after the change.
    #[graphql(guard = "RoleGuard::operator()")]
    async fn update_score(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match and its corrected score.")] input: UpdateScoreInput,
    ) -> Result<MatchNode> {
        match_day(ctx, input.parse()).await
    }

    /// Sets the match clock (period, reading, running); appends no event.
    /// Operator or admin: without a token UNAUTHENTICATED, with another role FORBIDDEN. An
    /// unknown match is NOT_FOUND; a stale `expectedVersion` is VERSION_CONFLICT with
    /// `extensions.currentVersion`; anything the rules refuse is BAD_USER_INPUT with
    /// `extensions.field`. Returns the match after the change.
    #[graphql(guard = "RoleGuard::operator()")]
    async fn update_clock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match and the clock fields to change.")] input: UpdateClockInput,
    ) -> Result<MatchNode> {
        match_day(ctx, input.parse()).await
    }

    /// Changes the sport-specific details (cards, count, fouls, power play, down and distance,
    /// …); appends no event.
    /// Operator or admin: without a token UNAUTHENTICATED, with another role FORBIDDEN. An
    /// unknown match is NOT_FOUND; a stale `expectedVersion` is VERSION_CONFLICT with
    /// `extensions.currentVersion`; anything the rules refuse is BAD_USER_INPUT with
    /// `extensions.field`. Returns the match after the change.
    #[graphql(guard = "RoleGuard::operator()")]
    async fn update_details(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match and the details to change, for its sport.")]
        input: UpdateDetailsInput,
    ) -> Result<MatchNode> {
        match_day(ctx, input.parse()).await
    }
}
