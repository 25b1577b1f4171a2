//! Subscriptions. Each one subscribes to the broker *before* reading the store, so nothing
//! committed in between can be missed, then drops whatever is not newer than what it already
//! sent: versions strictly rise on state subscriptions, and `seq` runs without gaps or repeats
//! on event subscriptions. A subscriber that falls behind its bounded queue resynchronises from
//! the store: state subscriptions skip to the newest state (conflation), event subscriptions
//! fetch the missing range.
//!
//! What a subscription holds or reads is bounded whatever the client asks: `matchesUpdated`
//! remembers at most [`MATCHES_UPDATED_MEMORY`] matches and catches up within a read budget,
//! and event replays are read and sent a page at a time.
//!
//! Each item's position (`version` or `seq`) goes to the execution's [`PositionTap`], and a
//! [`ReplayOnly`] execution ends after its resume part: that is how shared executions (see
//! `crate::fanout`) serve resume arguments per subscriber.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Result, Subscription, ID};
use futures::Stream;
use scoreline_core::store::{MatchFilter, PageRequest, ReadBudget, MAX_PAGE_SIZE};
use scoreline_core::{Change, Match, MatchEvent, MatchId, ValidationError};

use crate::broker::{Received, Topic};
use crate::fanout::{PositionTap, ReplayOnly, ResumeFrom};
use crate::graphql::error::{invalid, not_found, store};
use crate::graphql::schema::Services;
use crate::graphql::types::inputs::MatchFilterInput;
use crate::graphql::types::{MatchEventNode, MatchNode};
use crate::metrics::Metrics;
use crate::recent::{RecentMatches, Seen};

/// Events fetched per store read when replaying or filling a gap.
const REPLAY_PAGE: u32 = 200;
/// Matches one `matchesUpdated` subscription remembers (newest version, and whether its filter
/// admitted it): about 1.5 MB at most. Beyond it the least recently changed are forgotten behind
/// a floor, so versions still rise (see `crate::recent`).
pub const MATCHES_UPDATED_MEMORY: usize = 10_000;
/// Pages of matches a lagging `matchesUpdated` rereads to catch up, each within
/// [`RESYNC_PAGE_BUDGET`]: at most 2,000 stored matches and 200 database requests in all.
const RESYNC_PAGES: usize = 20;
const RESYNC_PAGE_BUDGET: ReadBudget = ReadBudget {
    items: 100,
    requests: 10,
};
/// Matches a catch-up rereads one by one because the filter admitted them before and the
/// listing no longer shows them (they may have left the filter): the most recently changed.
const RESYNC_REREADS: usize = 100;

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
        // An HTTP stream's `Last-Event-ID` resumes as `sinceVersion` does.
        let resumed = ctx
            .data_opt::<ResumeFrom>()
            .map(|r| i64::try_from(r.0).unwrap_or(i64::MAX));
        let since_version = match (since_version, resumed) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
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
        tap.started();
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
        tap.started();
        Ok(async_stream::stream! {
            // Per match: the newest version seen and whether the filter admitted it, so each
            // match's versions strictly rise and a match leaving the filter is sent once.
            let mut sent = SeenMatches::new(MATCHES_UPDATED_MEMORY, services.metrics.clone());
            loop {
                match sub.recv().await {
                    Received::Change(change) => {
                        if let Change::Match(m) = &*change {
                            if sent.should_send(m, filter.admits(m)) {
                                tap.set(m.version);
                                yield Ok(MatchNode((**m).clone()));
                            }
                        }
                    }
                    Received::Gap => match resync(&services, &filter, &sent).await {
                        Ok(matches) => {
                            for m in matches {
                                if sent.should_send(&m, filter.admits(&m)) {
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
        // An HTTP stream's `Last-Event-ID` resumes as `afterSeq` does.
        let resumed = ctx
            .data_opt::<ResumeFrom>()
            .map(|r| i32::try_from(r.0).unwrap_or(i32::MAX));
        let after_seq = match (after_seq, resumed) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
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
        tap.started();
        let mut last = match after_seq {
            Some(s) => s as u32,
            None => current.last_seq,
        };
        Ok(async_stream::stream! {
            // Replay what the client missed, a page at a time (a client asking for a long
            // timeline costs one page of memory, not the timeline), then go live.
            loop {
                match events_page(&services, &id, last, u32::MAX).await {
                    Ok((events, more)) => {
                        for e in events {
                            last = e.seq;
                            tap.set(u64::from(e.seq));
                            yield Ok(MatchEventNode(e));
                        }
                        if !more {
                            break;
                        }
                    }
                    Err(e) => {
                        yield Err(e);
                        return;
                    }
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
                // A gap: the store has every event that was published, so read it from there,
                // a page at a time.
                let mut failed = false;
                loop {
                    match events_page(&services, &id, last, upto).await {
                        Ok((events, more)) => {
                            for e in events {
                                last = e.seq;
                                tap.set(u64::from(e.seq));
                                yield Ok(MatchEventNode(e));
                            }
                            if !more {
                                break;
                            }
                        }
                        Err(e) => {
                            yield Err(e);
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    break;
                }
            }
        })
    }
}

/// One page of the stored events with `after < seq <= upto`, in order, and whether more may
/// follow it.
async fn events_page(
    services: &Services,
    id: &MatchId,
    after: u32,
    upto: u32,
) -> Result<(Vec<MatchEvent>, bool)> {
    let page = services
        .store
        .events(id, after, REPLAY_PAGE)
        .await
        .map_err(store)?;
    let full = page.len() as u32 == REPLAY_PAGE;
    let mut out = Vec::with_capacity(page.len());
    for e in page {
        if e.seq > upto {
            return Ok((out, false));
        }
        out.push(e);
    }
    Ok((out, full))
}

/// What one `matchesUpdated` subscription remembers of the matches it has seen, within
/// [`MATCHES_UPDATED_MEMORY`] matches, counted in the metrics while it lives.
struct SeenMatches {
    memory: RecentMatches<(u64, bool)>,
    metrics: Arc<Metrics>,
}

impl SeenMatches {
    fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            memory: RecentMatches::new(capacity),
            metrics,
        }
    }

    /// Whether the subscriber gets this state: it must be newer than the last one seen, and
    /// either admitted by the filter or the first one to leave it. A state no newer than a
    /// forgotten match's (an old copy) is not sent.
    fn should_send(&mut self, m: &Match, admits: bool) -> bool {
        let (last, was_admitted) = match self.memory.lookup(&m.id, m.updated_at) {
            Seen::Known(seen) => *seen,
            Seen::New => (0, false),
            Seen::Stale => {
                Metrics::inc(&self.metrics.matches_updated_stale_drops);
                return false;
            }
        };
        if m.version <= last {
            return false;
        }
        let before = self.memory.len();
        let forgotten = self
            .memory
            .remember(m.id.clone(), m.updated_at, (m.version, admits));
        if forgotten > 0 {
            self.metrics
                .matches_updated_evictions
                .fetch_add(forgotten as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Metrics::add(
            &self.metrics.matches_updated_tracked,
            self.memory.len() as i64 - before as i64,
        );
        admits || was_admitted
    }
}

impl Drop for SeenMatches {
    fn drop(&mut self) {
        Metrics::add(
            &self.metrics.matches_updated_tracked,
            -(self.memory.len() as i64),
        );
    }
}

/// The matches a lagging `matchesUpdated` subscriber may have missed, within a read budget:
/// those in play first (what changes during a gap), then those the filter admits in listing
/// order, then those it admitted before and no longer lists (they may have left the filter).
/// A filter admitting more than one catch-up can read gets the matches in play and as many
/// others as the budget allows; the shortfall is logged and counted.
async fn resync(
    services: &Services,
    filter: &MatchFilter,
    sent: &SeenMatches,
) -> Result<Vec<Match>> {
    let mut out: Vec<Match> = services
        .store
        .live_matches(filter.sport)
        .await
        .map_err(store)?
        .into_iter()
        .filter(|m| filter.admits(m))
        .collect();
    let mut listed: HashSet<MatchId> = out.iter().map(|m| m.id.clone()).collect();
    let mut after = None;
    let mut complete = false;
    for _ in 0..RESYNC_PAGES {
        let page = services
            .store
            .matches(
                filter,
                &PageRequest {
                    first: MAX_PAGE_SIZE,
                    after: after.take(),
                    budget: RESYNC_PAGE_BUDGET,
                },
            )
            .await
            .map_err(store)?;
        for (_, m) in page.items {
            if listed.insert(m.id.clone()) {
                out.push(m);
            }
        }
        if !page.has_next_page {
            complete = true;
            break;
        }
        after = page.end_cursor;
    }
    let mut before: Vec<(&MatchId, chrono::DateTime<chrono::Utc>)> = sent
        .memory
        .iter()
        .filter(|(id, _, (_, admitted))| *admitted && !listed.contains(*id))
        .map(|(id, changed, _)| (id, changed))
        .collect();
    if before.len() > RESYNC_REREADS {
        complete = false;
        before.sort_by_key(|(_, changed)| std::cmp::Reverse(*changed));
        before.truncate(RESYNC_REREADS);
    }
    for (id, _) in before {
        if let Some(m) = services.store.match_by_id(id).await.map_err(store)? {
            out.push(m);
        }
    }
    if !complete {
        Metrics::inc(&services.metrics.resyncs_truncated);
        tracing::warn!(
            "a matchesUpdated catch-up stopped at its read budget: its filter admits more \
             matches than one catch-up reads; those in play were caught up"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use scoreline_core::store::Store;
    use scoreline_core::MatchStatus;

    use super::*;
    use crate::broker::MemoryBroker;
    use crate::store::MemoryStore;
    use crate::test_support::{a_match, at};

    fn seen(capacity: usize) -> (SeenMatches, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        (SeenMatches::new(capacity, metrics.clone()), metrics)
    }

    #[test]
    fn a_forgotten_match_never_gets_an_old_state_again_and_its_new_states_still_arrive() {
        let (mut sent, metrics) = seen(4);
        assert!(sent.should_send(&a_match("old", 7, 0), true));
        for i in 1..=4 {
            assert!(sent.should_send(&a_match(&format!("m{i}"), 1, i), true));
        }
        assert_eq!(metrics.matches_updated_evictions.load(Ordering::Relaxed), 1);
        // `old` is forgotten: a late copy of its state, or an older one, is not sent again.
        assert!(!sent.should_send(&a_match("old", 7, 0), true));
        assert!(!sent.should_send(&a_match("old", 6, -5), true));
        assert_eq!(
            metrics.matches_updated_stale_drops.load(Ordering::Relaxed),
            2
        );
        // Its next change is.
        assert!(sent.should_send(&a_match("old", 8, 10), true));
        assert!(!sent.should_send(&a_match("old", 8, 10), true), "no repeat");
    }

    #[test]
    fn the_memory_is_counted_while_it_lives_and_released_when_it_ends() {
        let (mut sent, metrics) = seen(100);
        for i in 0..1_000 {
            sent.should_send(&a_match(&format!("m{i}"), 1, i), i % 2 == 0);
            let tracked = metrics.matches_updated_tracked.load(Ordering::Relaxed);
            assert!(tracked <= 100 && tracked == sent.memory.len() as i64);
        }
        drop(sent);
        assert_eq!(metrics.matches_updated_tracked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_match_leaving_the_filter_is_sent_once_and_versions_rise() {
        let (mut sent, _) = seen(10);
        assert!(sent.should_send(&a_match("m", 2, 0), true));
        assert!(!sent.should_send(&a_match("m", 2, 0), true), "a repeat");
        assert!(!sent.should_send(&a_match("m", 1, 0), true), "an older one");
        assert!(
            sent.should_send(&a_match("m", 3, 1), false),
            "leaving the filter"
        );
        assert!(!sent.should_send(&a_match("m", 4, 2), false), "out of it");
        assert!(!sent.should_send(&a_match("n", 1, 2), false), "never in it");
    }

    #[tokio::test]
    async fn a_catch_up_over_more_matches_than_its_budget_sends_those_in_play_and_counts_it() {
        let (store, _feed) = MemoryStore::new();
        // 2,500 scheduled matches, then a live one that lists last.
        for i in 0..2_500 {
            let mut m = a_match(&format!("s{i:04}"), 1, 0);
            m.start_time = at(i);
            store.create_match(&m).await.unwrap();
        }
        let mut live = a_match("live", 3, 0);
        live.start_time = at(10_000);
        live.status = MatchStatus::Live;
        store.create_match(&live).await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let services = Services {
            store: Arc::new(store),
            broker: Arc::new(MemoryBroker::default()),
            metrics: metrics.clone(),
            responses: Arc::new(crate::graphql::response_cache::ResponseCache::off()),
        };
        let (sent, _) = seen(10);
        let out = resync(&services, &MatchFilter::default(), &sent)
            .await
            .unwrap();
        assert!(out.iter().any(|m| m.id.as_str() == "live"));
        assert!(out.len() <= 2_001, "{}", out.len());
        assert_eq!(metrics.resyncs_truncated.load(Ordering::Relaxed), 1);

        // A filter the catch-up covers is complete, and not counted.
        let narrow = MatchFilter {
            from: Some(at(100)),
            to: Some(at(200)),
            ..Default::default()
        };
        let out = resync(&services, &narrow, &sent).await.unwrap();
        assert_eq!(out.len(), 100);
        assert_eq!(metrics.resyncs_truncated.load(Ordering::Relaxed), 1);
    }
}
