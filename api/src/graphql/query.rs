//! Queries: public, read-only views for mobile apps.

use async_graphql::{Context, Object, Result, ID};
use scoreline_core::store::{PageRequest, MAX_PAGE_SIZE};
use scoreline_core::{CompetitionId, MatchId, TeamId, ValidationError};

use crate::graphql::error::{invalid, store};
use crate::graphql::schema::Services;
use crate::graphql::types::inputs::MatchFilterInput;
use crate::graphql::types::matches::{MatchEdge, PageInfo};
use crate::graphql::types::{
    enums, CompetitionNode, MatchConnection, MatchNode, SportGql, TeamNode,
};

pub struct QueryRoot;

/// Names the argument a malformed id came in, rather than the id's kind.
fn argument(name: &'static str) -> impl Fn(ValidationError) -> async_graphql::Error {
    move |e| invalid(ValidationError::new(name, e.message().to_string()))
}

#[Object(name = "Query")]
impl QueryRoot {
    /// A match by id; null when there is none.
    #[graphql(name = "match")]
    async fn match_(&self, ctx: &Context<'_>, id: ID) -> Result<Option<MatchNode>> {
        let id = MatchId::parse(id.0).map_err(argument("id"))?;
        let services = ctx.data::<Services>()?;
        Ok(services
            .store
            .match_by_id(&id)
            .await
            .map_err(store)?
            .map(MatchNode))
    }

    /// Matches in start-time order, as a Relay connection (`first` ≤ 100).
    async fn matches(
        &self,
        ctx: &Context<'_>,
        filter: Option<MatchFilterInput>,
        #[graphql(default = 20)] first: i32,
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
        let page = services
            .store
            .matches(
                &filter,
                &PageRequest {
                    first: first as u32,
                    after: after.clone(),
                },
            )
            .await
            .map_err(store)?;
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
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
        })
    }

    /// Matches in play (LIVE or PAUSED), in start-time order.
    async fn live_matches(
        &self,
        ctx: &Context<'_>,
        sport: Option<SportGql>,
    ) -> Result<Vec<MatchNode>> {
        let services = ctx.data::<Services>()?;
        let live = services
            .store
            .live_matches(sport.map(enums::sport))
            .await
            .map_err(store)?;
        Ok(live.into_iter().map(MatchNode).collect())
    }

    async fn competition(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CompetitionNode>> {
        let id = CompetitionId::parse(id.0).map_err(argument("id"))?;
        let services = ctx.data::<Services>()?;
        Ok(services
            .store
            .competition(&id)
            .await
            .map_err(store)?
            .map(CompetitionNode))
    }

    async fn competitions(
        &self,
        ctx: &Context<'_>,
        sport: Option<SportGql>,
    ) -> Result<Vec<CompetitionNode>> {
        let services = ctx.data::<Services>()?;
        let all = services
            .store
            .competitions(sport.map(enums::sport))
            .await
            .map_err(store)?;
        Ok(all.into_iter().map(CompetitionNode).collect())
    }

    async fn team(&self, ctx: &Context<'_>, id: ID) -> Result<Option<TeamNode>> {
        let id = TeamId::parse(id.0).map_err(argument("id"))?;
        let services = ctx.data::<Services>()?;
        Ok(services.store.team(&id).await.map_err(store)?.map(TeamNode))
    }

    /// Teams, optionally of one sport and/or registered in one competition.
    async fn teams(
        &self,
        ctx: &Context<'_>,
        sport: Option<SportGql>,
        competition_id: Option<ID>,
    ) -> Result<Vec<TeamNode>> {
        let competition = competition_id
            .map(|id| CompetitionId::parse(id.0))
            .transpose()
            .map_err(invalid)?;
        let services = ctx.data::<Services>()?;
        let teams = services
            .store
            .teams(sport.map(enums::sport), competition.as_ref())
            .await
            .map_err(store)?;
        Ok(teams.into_iter().map(TeamNode).collect())
    }
}
