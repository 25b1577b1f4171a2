//! Queries: public, read-only views for mobile apps.

use async_graphql::{Context, Object, Result, ID};
use scoreline_core::store::{PageRequest, MAX_PAGE_SIZE};
use scoreline_core::{CompetitionId, MatchId, TeamId, ValidationError};

use crate::graphql::error::{invalid, store};
use crate::graphql::response_cache::{read_listing, read_match, read_uncacheable};
use crate::graphql::schema::Services;
use crate::graphql::types::inputs::MatchFilterInput;
use crate::graphql::types::matches::{MatchEdge, PageInfo};
use crate::graphql::types::{
    enums, CompetitionNode, MatchConnection, MatchNode, SportGql, TeamNode,
};
use crate::metrics::Metrics;

pub struct QueryRoot;

/// Names the argument a malformed id came in, rather than the id's kind.
fn argument(name: &'static str) -> impl Fn(ValidationError) -> async_graphql::Error {
    move |e| invalid(ValidationError::new(name, e.message().to_string()))
}

/// Public, read-only entry points: no token needed. A malformed id or argument fails with
/// BAD_USER_INPUT (`extensions.field` names it where it can).
#[Object(name = "Query")]
impl QueryRoot {
    /// A match by id; null when there is none.
    #[graphql(name = "match")]
    async fn match_(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match's id.")] id: ID,
    ) -> Result<Option<MatchNode>> {
        let id = MatchId::parse(id.0).map_err(argument("id"))?;
        let services = ctx.data::<Services>()?;
        read_match(ctx, &id);
        Ok(services
            .store
            .match_by_id(&id)
            .await
            .map_err(store)?
            .map(MatchNode))
    }

    /// Matches in start-time order (then by id), a page at a time as a Relay connection. Pass a
    /// page's `pageInfo.endCursor` as `after` for the next page. A page reads a bounded number
    /// of stored matches: when a selective filter runs out of that budget, the page comes back
    /// shorter than `first` (even empty) with `hasNextPage: true`, and its `endCursor` resumes
    /// where reading stopped. A bad filter, page size or cursor fails with BAD_USER_INPUT.
    async fn matches(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which matches to list; absent lists them all.")] filter: Option<
            MatchFilterInput,
        >,
        #[graphql(default = 20, desc = "The page size, 1 to 100.")] first: i32,
        #[graphql(
            desc = "The cursor after which the page starts (an `endCursor` or edge `cursor` \
                    this server returned); absent starts at the beginning."
        )]
        after: Option<String>,
    ) -> Result<MatchConnection> {
        if !(1..=MAX_PAGE_SIZE as i32).contains(&first) {
            return Err(invalid(ValidationError::new(
                "first",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            )));
        }
        let filter = filter.unwrap_or_default().parse().map_err(invalid)?;
        let services = ctx.data::<Services>()?;
        read_listing(ctx);
        let page = services
            .store
            .matches(&filter, &PageRequest::new(first as u32, after.clone()))
            .await
            .map_err(store)?;
        if page.has_next_page && page.items.len() < first as usize {
            Metrics::inc(&services.metrics.listing_budget_stops);
        }
        let edges: Vec<MatchEdge> = page
            .items
            .into_iter()
            .map(|(cursor, m)| MatchEdge {
                cursor,
                node: MatchNode(m),
            })
            .collect();
        Ok(MatchConnection {
            page_info: PageInfo {
                has_next_page: page.has_next_page,
                has_previous_page: after.is_some(),
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                // Past the last edge when the read budget ended the page early.
                end_cursor: page.end_cursor,
            },
            edges,
        })
    }

    /// Every match in play (LIVE or PAUSED), in start-time order (then by id); not paged.
    async fn live_matches(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only matches of this sport; absent lists every sport.")] sport: Option<
            SportGql,
        >,
    ) -> Result<Vec<MatchNode>> {
        let services = ctx.data::<Services>()?;
        read_listing(ctx);
        let live = services
            .store
            .live_matches(sport.map(enums::sport))
            .await
            .map_err(store)?;
        Ok(live.into_iter().map(MatchNode).collect())
    }

    /// A competition by id; null when there is none.
    async fn competition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The competition's id.")] id: ID,
    ) -> Result<Option<CompetitionNode>> {
        let id = CompetitionId::parse(id.0).map_err(argument("id"))?;
        let services = ctx.data::<Services>()?;
        let found = services.store.competition(&id).await.map_err(store)?;
        if found.is_none() {
            // It may be created later, and creations reach no other instance's cache.
            read_uncacheable(ctx);
        }
        Ok(found.map(CompetitionNode))
    }

    /// Every competition, ordered by sport (in `Sport` order) then id; not paged.
    async fn competitions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only competitions of this sport.")] sport: Option<SportGql>,
    ) -> Result<Vec<CompetitionNode>> {
        let services = ctx.data::<Services>()?;
        read_uncacheable(ctx);
        let all = services
            .store
            .competitions(sport.map(enums::sport))
            .await
            .map_err(store)?;
        Ok(all.into_iter().map(CompetitionNode).collect())
    }

    /// A team by id; null when there is none.
    async fn team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's id.")] id: ID,
    ) -> Result<Option<TeamNode>> {
        let id = TeamId::parse(id.0).map_err(argument("id"))?;
        let services = ctx.data::<Services>()?;
        let found = services.store.team(&id).await.map_err(store)?;
        if found.is_none() {
            read_uncacheable(ctx);
        }
        Ok(found.map(TeamNode))
    }

    /// Teams, ordered by sport (in `Sport` order) then id; not paged. Both filters may be
    /// combined.
    async fn teams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only teams of this sport.")] sport: Option<SportGql>,
        #[graphql(
            desc = "Only teams registered in this competition (at creation or by playing a \
                    match in it); an unknown id lists none."
        )]
        competition_id: Option<ID>,
    ) -> Result<Vec<TeamNode>> {
        let competition = competition_id
            .map(|id| CompetitionId::parse(id.0))
            .transpose()
            .map_err(invalid)?;
        let services = ctx.data::<Services>()?;
        read_uncacheable(ctx);
        let teams = services
            .store
            .teams(sport.map(enums::sport), competition.as_ref())
            .await
            .map_err(store)?;
        Ok(teams.into_iter().map(TeamNode).collect())
    }
}
