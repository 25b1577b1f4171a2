//! Subscriptions. Each one subscribes to the broker *before* reading the store, so nothing
//! committed in between can be missed, then drops whatever is not newer than what it already
//! sent: versions strictly rise on state subscriptions, and `seq` runs without gaps or repeats
//! on event subscriptions. A subscriber that falls behind its bounded queue resynchronises from
//! the store: state subscriptions skip to the newest state (conflation), event subscriptions
//! fetch the missing range.
//!
//! Each item's position (`version` or `seq`) goes to the execution's [`PositionTap`], and a
//! [`ReplayOnly`] execution ends after its resume part: that is how shared executions (see
//! `crate::fanout`) serve resume arguments per subscriber.

use std::collections::HashMap;

use async_graphql::{Context, Result, Subscription, ID};
use futures::Stream;
use scoreline_core::store::{MatchFilter, PageRequest, MAX_PAGE_SIZE};
use scoreline_core::{Change, MatchEvent, MatchId, ValidationError};

use crate::broker::{Received, Topic};
use crate::fanout::{PositionTap, ReplayOnly};
use crate::graphql::error::{invalid, not_found, store};
use crate::graphql::schema::Services;
use crate::graphql::types::inputs::MatchFilterInput;
use crate::graphql::types::{MatchEventNode, MatchNode};

/// Events fetched per store read when replaying or filling a gap.
const REPLAY_PAGE: u32 = 200;
/// Pages of matches a lagging `matchesUpdated` rereads to catch up.
const RESYNC_PAGES: usize = 20;

pub struct SubscriptionRoot;

fn parse_match_id(raw: ID, field: &'static str) -> Result<MatchId> {
    MatchId::parse(raw.0).map_err(|e| invalid(ValidationError::new(field, e.message().to_string())))
}

/// Live updates, public, over WebSocket at `/graphql` (`graphql-transport-ws` or the legacy
/// `graphql-ws`). A subscriber that keeps up receives every change; one that falls behind gets
/// the newest state (matches) or the missed events replayed (timeline).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every change of one match. With `sinceVersion`, a newer stored state is sent first (none
    /// when the client is already current); versions strictly rise. An unknown match fails with
    /// NOT_FOUND.
    async fn match_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match to follow.")] id: ID,
        #[graphql(
            desc = "The `version` the client already has, e.g. after a reconnect; a newer \
                    stored state is sent first."
        )]
        since_version: Option<i64>,
    ) -> Result<impl Stream<Item = Result<MatchNode>>> {
        let id = parse_match_id(id, "id")?;
        let services = ctx.data::<Services>()?.clone();
        let tap = ctx.data_opt::<PositionTap>().cloned().unwrap_or_default();
        let replay_only = ctx.data_opt::<ReplayOnly>().is_some();
        let mut sub = services.broker.subscribe(Topic::Match(id.clone()));
        let current = services
            .store
            .match_by_id(&id)
            .await
            .map_err(store)?
            .ok_or_else(|| not_found("match", id.as_str()))?;
        let mut last = current.version;
        let first = match since_version {
            Some(v) if (current.version as i64) > v => Some(current),
            _ => None,
        };
        Ok(async_stream::stream! {
            if let Some(m) = first {
                tap.set(m.version);
                yield Ok(MatchNode(m));
            }
            if replay_only {
                return;
            }
            loop {
                match sub.recv().await {
                    Received::Change(change) => {
                        if let Change::Match(m) = &*change {
                            if m.version > last {
                                last = m.version;
                                tap.set(m.version);
                                yield Ok(MatchNode((**m).clone()));
                            }
                        }
                    }
                    Received::Gap => match services.store.match_by_id(&id).await {
                        Ok(Some(m)) if m.version > last => {
                            last = m.version;
                            tap.set(m.version);
                            yield Ok(MatchNode(m));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            yield Err(store(e));
                            break;
                        }
                    },
                    Received::Closed => break,
                }
            }
        })
    }

    /// Every change of any match the filter admits, and the one change that takes a match out
    /// of the filter (e.g. LIVE → FINISHED under a LIVE filter), so lists can drop it. Each
    /// match's versions strictly rise.
    async fn matches_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which matches to follow; absent follows every match.")] filter: Option<
            MatchFilterInput,
        >,
    ) -> Result<impl Stream<Item = Result<MatchNode>>> {
        let filter = filter.unwrap_or_default().parse().map_err(invalid)?;
        let services = ctx.data::<Services>()?.clone();
        let tap = ctx.data_opt::<PositionTap>().cloned().unwrap_or_default();
        let mut sub = services.broker.subscribe(Topic::All);
        Ok(async_stream::stream! {
            // Per match: the newest version seen and whether the filter admitted it, so each
            // match's versions strictly rise and a match leaving the filter is sent once.
            let mut sent: HashMap<MatchId, (u64, bool)> = HashMap::new();
            loop {
                match sub.recv().await {
                    Received::Change(change) => {
                        if let Change::Match(m) = &*change {
                            if should_send(&mut sent, m, filter.admits(m)) {
                                tap.set(m.version);
                                yield Ok(MatchNode((**m).clone()));
                            }
                        }
                    }
                    Received::Gap => match resync(&services, &filter, &sent).await {
                        Ok(matches) => {
                            for m in matches {
                                if should_send(&mut sent, &m, filter.admits(&m)) {
                                    tap.set(m.version);
                                    yield Ok(MatchNode(m));
                                }
                            }
                        }
                        Err(e) => {
                            yield Err(e);
                            break;
                        }
                    },
                    Received::Closed => break,
                }
            }
        })
    }

    /// The timeline of one match. With `afterSeq`, stored events after it are replayed in order,
    /// then live ones follow, with no gap and no repeat. An unknown match fails with NOT_FOUND.
    async fn match_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The match whose timeline to follow.")] match_id: ID,
        #[graphql(
            desc = "The last `seq` the client has (0 or more), e.g. `Match.lastSeq`; absent \
                    sends only events recorded from now on."
        )]
        after_seq: Option<i32>,
    ) -> Result<impl Stream<Item = Result<MatchEventNode>>> {
        let id = parse_match_id(match_id, "matchId")?;
        if after_seq.is_some_and(|s| s < 0) {
            return Err(invalid(ValidationError::new(
                "afterSeq",
                "must not be negative",
            )));
        }
        let services = ctx.data::<Services>()?.clone();
        let tap = ctx.data_opt::<PositionTap>().cloned().unwrap_or_default();
        let replay_only = ctx.data_opt::<ReplayOnly>().is_some();
        let mut sub = services.broker.subscribe(Topic::Match(id.clone()));
        let current = services
            .store
            .match_by_id(&id)
            .await
            .map_err(store)?
            .ok_or_else(|| not_found("match", id.as_str()))?;
        let mut last = match after_seq {
            Some(s) => s as u32,
            None => current.last_seq,
        };
        Ok(async_stream::stream! {
            // Replay what the client missed, then go live.
            match fill(&services, &id, last, u32::MAX).await {
                Ok(events) => {
                    for e in events {
                        last = e.seq;
                        tap.set(u64::from(e.seq));
                        yield Ok(MatchEventNode(e));
                    }
                }
                Err(e) => {
                    yield Err(e);
                    return;
                }
            }
            if replay_only {
                return;
            }
            loop {
                let upto = match sub.recv().await {
                    Received::Change(change) => match &*change {
                        Change::Event(e) if e.seq == last + 1 => {
                            last = e.seq;
                            tap.set(u64::from(e.seq));
                            yield Ok(MatchEventNode(e.clone()));
                            continue;
                        }
                        Change::Event(e) if e.seq > last => e.seq,
                        // A state change can reveal events we missed (its lastSeq is ahead).
                        Change::Match(m) if m.last_seq > last => m.last_seq,
                        _ => continue,
                    },
                    Received::Gap => u32::MAX,
                    Received::Closed => break,
                };
                // A gap: the store has every event that was published, so read it from there.
                match fill(&services, &id, last, upto).await {
                    Ok(events) => {
                        for e in events {
                            last = e.seq;
                            tap.set(u64::from(e.seq));
                            yield Ok(MatchEventNode(e));
                        }
                    }
                    Err(e) => {
                        yield Err(e);
                        break;
                    }
                }
            }
        })
    }
}

/// Stored events with `after < seq <= upto`, in order.
async fn fill(services: &Services, id: &MatchId, after: u32, upto: u32) -> Result<Vec<MatchEvent>> {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let page = services
            .store
            .events(id, cursor, REPLAY_PAGE)
            .await
            .map_err(store)?;
        let full = page.len() as u32 == REPLAY_PAGE;
        for e in page {
            if e.seq > upto {
                return Ok(out);
            }
            cursor = e.seq;
            out.push(e);
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Whether a `matchesUpdated` subscriber gets this state: it must be newer than the last one
/// seen, and either admitted by the filter or the first one to leave it.
fn should_send(
    sent: &mut HashMap<MatchId, (u64, bool)>,
    m: &scoreline_core::Match,
    admits: bool,
) -> bool {
    let (last, was_admitted) = sent.get(&m.id).copied().unwrap_or((0, false));
    if m.version <= last {
        return false;
    }
    sent.insert(m.id.clone(), (m.version, admits));
    admits || was_admitted
}

/// The matches a lagging `matchesUpdated` subscriber may have missed: those the filter admits
/// now, and those it admitted before (which may have left it meanwhile).
async fn resync(
    services: &Services,
    filter: &MatchFilter,
    sent: &HashMap<MatchId, (u64, bool)>,
) -> Result<Vec<scoreline_core::Match>> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..RESYNC_PAGES {
        let page = services
            .store
            .matches(
                filter,
                &PageRequest {
                    first: MAX_PAGE_SIZE,
                    after: after.take(),
                },
            )
            .await
            .map_err(store)?;
        let more = page.has_next_page;
        for (cursor, m) in page.items {
            after = Some(cursor);
            out.push(m);
        }
        if !more {
            break;
        }
    }
    let listed: std::collections::HashSet<MatchId> = out.iter().map(|m| m.id.clone()).collect();
    for (id, _) in sent
        .iter()
        .filter(|(id, (_, admitted))| *admitted && !listed.contains(*id))
    {
        if let Some(m) = services.store.match_by_id(id).await.map_err(store)? {
            out.push(m);
        }
    }
    Ok(out)
}
