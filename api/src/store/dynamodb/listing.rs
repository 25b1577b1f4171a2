//! Listings: reads that go through the indexes. A filter becomes a [`Plan`] of index partitions
//! (the by-sport index bucketed by month, so a window names its months), read in sort-key order
//! from a cursor, whose keys are then fetched with `BatchGetItem`; the live index serves
//! matches in play. The indexes project keys only, so every listing ends in a `BatchGetItem`.
//!
//! A page reads within its [`ReadBudget`]: a window's months are produced one at a time from
//! the cursor (never planned whole), and once the budget is spent the page answers with what it
//! found, `has_next_page`, and an `end_cursor` at the position reading reached. That position is
//! either the sort key of the last index entry read, or the start of the first month not read
//! (a bare time key, which sorts before every match starting at that instant).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Datelike, Months, SubsecRound, TimeDelta, TimeZone, Utc};
use futures::future::try_join_all;
use scoreline_core::item::{
    self, competition_pk, live_shard_key, team_pk, time_key, INDEXES, LIVE_SHARDS, PK, SK,
};
use scoreline_core::store::{
    cursor, earliest_instant, latest_instant, MatchFilter, Page, PageRequest, ReadBudget, Store,
    StoreError, MAX_PAGE_SIZE,
};
use scoreline_core::{Match, MatchId, Sport};

use super::{decode_match, key_of, s, sort_key, unavailable, Attrs, DynamoStore};

/// Listings without a competition or team filter cover this window around now unless the
/// filter gives `from`/`to` (with only one of them, the window reaches this far past the other
/// end, or past now): the by-sport index is bucketed by month and a query must name its buckets.
/// The memory store has no such window.
pub const DEFAULT_WINDOW_DAYS: i64 = 366;

/// The most index entries a listing reads in one round (one `BatchGetItem`).
const MAX_ROUND_READ: usize = 100;

/// Above every sort key (which start with a digit): the upper bound of an open window.
const ABOVE_ALL: &str = "\u{7f}";

/// One index partition to read, in sort-key order, within `(after, before)`.
#[derive(Clone, Debug)]
struct IndexRange {
    index: &'static str,
    pk_attr: &'static str,
    sk_attr: &'static str,
    pk: String,
}

fn index_range(index: &'static str, pk: String) -> IndexRange {
    let (_, pk_attr, sk_attr) = INDEXES
        .iter()
        .find(|(n, _, _)| *n == index)
        .copied()
        .expect("known index");
    IndexRange {
        index,
        pk_attr,
        sk_attr,
        pk,
    }
}

fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

/// What a page has read so far, against its budget.
#[derive(Default)]
struct Spent {
    items: u32,
    requests: u32,
}

impl Spent {
    fn exhausted(&self, budget: ReadBudget) -> bool {
        self.items >= budget.items || self.requests >= budget.requests
    }

    /// Whether `requests` more would go over the budget.
    fn cannot_afford(&self, budget: ReadBudget, requests: usize) -> bool {
        self.items >= budget.items || self.requests as usize + requests > budget.requests as usize
    }
}

/// A listing cursor: a sort key `<time>#<match id>`, or a bare `<time>` (a position before every
/// match starting then). The time must be exactly as sort keys write it.
fn parse_cursor(raw: &str) -> Result<String, StoreError> {
    let sk: String = cursor::decode(raw)?;
    let (time, id) = match sk.split_once('#') {
        Some((time, id)) => (time, Some(id)),
        None => (sk.as_str(), None),
    };
    let parsed = DateTime::parse_from_rfc3339(time).map_err(|_| StoreError::InvalidCursor)?;
    if time_key(parsed.to_utc()) != time {
        return Err(StoreError::InvalidCursor);
    }
    if let Some(id) = id {
        MatchId::parse(id).map_err(|_| StoreError::InvalidCursor)?;
    }
    Ok(sk)
}

impl DynamoStore {
    /// `Store::matches`: a page of a listing, from its cursor, within its read budget.
    pub(super) async fn list_matches(
        &self,
        filter: &MatchFilter,
        page: &PageRequest,
    ) -> Result<Page<Match>, StoreError> {
        let first = page.first.clamp(1, MAX_PAGE_SIZE) as usize;
        let cursor = page.after.as_deref().map(parse_cursor).transpose()?;
        let mut items: Vec<(String, Match)> = Vec::with_capacity(first + 1);
        // Set when the budget ended the page: every sort key up to it has been read.
        let mut stopped_at: Option<String> = None;
        if !filter.statuses.is_empty() && filter.statuses.iter().all(|s| s.is_in_play()) {
            // Only matches in play: the small live index holds them all.
            let after = cursor.unwrap_or_default();
            items.extend(
                self.in_play(filter.sport)
                    .await?
                    .into_iter()
                    .filter(|(sk, m)| *sk > after && filter.admits(m))
                    .take(first + 1),
            );
        } else {
            let plan = Plan::new(filter, Utc::now());
            let mut after = match cursor {
                Some(sk) => sk.max(plan.lo.clone()),
                None => plan.lo.clone(),
            };
            // Filters the indexes cannot apply (status, sport within a competition, …) are
            // applied to the fetched items. Reads go on until the page is full, the window is
            // exhausted or the budget is spent, reading more per round while the filter keeps
            // refusing.
            let mut spent = Spent::default();
            let mut read = first + 1;
            loop {
                let want = first + 1 - items.len();
                read = read.max(want);
                let scan = self
                    .candidates(&plan, &after, read, page.budget, &mut spent)
                    .await?;
                let fetched = self
                    .batch_get(scan.keys.iter().map(|(_, k)| k.clone()).collect())
                    .await?;
                spent.requests += scan.keys.len().div_ceil(100) as u32;
                let mut by_id: HashMap<String, Match> = HashMap::new();
                for a in &fetched {
                    let m = decode_match(a)?;
                    by_id.insert(m.id.to_string(), m);
                }
                for (sk, _) in &scan.keys {
                    let id = sk.split_once('#').map(|(_, id)| id).unwrap_or_default();
                    if let Some(m) = by_id.remove(id) {
                        // The index is eventually consistent: skip entries whose item moved.
                        if sort_key(&m) == *sk && filter.admits(&m) {
                            items.push((sk.clone(), m));
                        }
                    }
                }
                if let Some(reached) = scan.reached {
                    after = reached;
                }
                if items.len() > first || scan.exhausted {
                    break;
                }
                if spent.exhausted(page.budget) {
                    stopped_at = Some(after);
                    break;
                }
                read = (read * 2).min(MAX_ROUND_READ);
            }
        }
        let has_next_page = items.len() > first || stopped_at.is_some();
        items.truncate(first);
        let end_cursor = match &stopped_at {
            Some(position) => Some(cursor::encode(position)),
            None => items.last().map(|(sk, _)| cursor::encode(sk)),
        };
        Ok(Page {
            items: items
                .into_iter()
                .map(|(sk, m)| (cursor::encode(&sk), m))
                .collect(),
            has_next_page,
            end_cursor,
        })
    }

    /// Items by key, in no particular order, with unprocessed keys retried.
    pub(super) async fn batch_get(&self, mut keys: Vec<Attrs>) -> Result<Vec<Attrs>, StoreError> {
        // BatchGetItem refuses a request that names one key twice.
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| {
            seen.insert((
                k.get(PK).and_then(|v| v.as_s().ok()).cloned(),
                k.get(SK).and_then(|v| v.as_s().ok()).cloned(),
            ))
        });
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .build()
                    .expect("complete keys");
                let result = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(items) = result.responses().and_then(|r| r.get(&self.table)) {
                    out.extend(items.iter().cloned());
                }
                pending = result
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::Unavailable(
                            "BatchGetItem left keys unprocessed".into(),
                        ));
                    }
                    self.contention_backoff(attempt).await;
                }
            }
        }
        Ok(out)
    }

    /// Reads every item of a query.
    pub(super) async fn query_all(
        &self,
        index: Option<&str>,
        condition: &str,
        names: HashMap<String, String>,
        values: Attrs,
    ) -> Result<Vec<Attrs>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(condition)
                .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Keys of the catalogue listing `pk` on gsi1, optionally of one sport.
    pub(super) async fn catalogue_keys(
        &self,
        pk: &str,
        sport: Option<Sport>,
    ) -> Result<Vec<Attrs>, StoreError> {
        let mut values = HashMap::from([(":pk".to_string(), s(pk))]);
        let condition = match sport {
            Some(sport) => {
                values.insert(":prefix".into(), s(format!("{}#", sport.as_str())));
                "gsi1pk = :pk AND begins_with(gsi1sk, :prefix)"
            }
            None => "gsi1pk = :pk",
        };
        let items = self
            .query_all(Some("gsi1"), condition, HashMap::new(), values)
            .await?;
        Ok(items.iter().map(key_of).collect())
    }

    /// Index sort keys of one partition, ascending, strictly between `after` and `before`, and
    /// the number of requests that took.
    async fn index_keys(
        &self,
        range: &IndexRange,
        after: &str,
        before: &str,
        limit: usize,
    ) -> Result<(Vec<(String, Attrs)>, u32), StoreError> {
        let mut out = Vec::new();
        let mut requests = 0;
        let lo = format!("{after}\u{1}");
        if lo.as_str() >= before {
            return Ok((out, requests));
        }
        let mut start: Option<Attrs> = None;
        while out.len() < limit {
            requests += 1;
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(range.index)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#pk", range.pk_attr)
                .expression_attribute_names("#sk", range.sk_attr)
                .expression_attribute_values(":pk", s(range.pk.clone()))
                // BETWEEN is inclusive; the bounds are nudged to make it exclusive.
                .expression_attribute_values(":lo", s(lo.clone()))
                .expression_attribute_values(":hi", s(before.to_string()))
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                if let Some(AttributeValue::S(sk)) = item.get(range.sk_attr) {
                    if sk.as_str() < before {
                        out.push((sk.clone(), key_of(item)));
                    }
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok((out, requests))
    }

    /// Sort keys of a plan after `after`, in order, at most `limit`, group by group until the
    /// limit is reached or the budget cannot pay for the next group (the first is always read,
    /// so every call gets further).
    async fn candidates(
        &self,
        plan: &Plan,
        after: &str,
        limit: usize,
        budget: ReadBudget,
        spent: &mut Spent,
    ) -> Result<Scan, StoreError> {
        let mut keys: Vec<(String, Attrs)> = Vec::new();
        let mut stopped_before: Option<String> = None;
        let mut complete = true;
        for (n, group) in plan.groups_from(after).enumerate() {
            if n > 0 && spent.cannot_afford(budget, group.ranges.len()) {
                // Every key before this group has been read.
                stopped_before = Some(group.start);
                complete = false;
                break;
            }
            let parts = try_join_all(
                group
                    .ranges
                    .iter()
                    .map(|range| self.index_keys(range, after, &plan.hi, limit)),
            )
            .await?;
            for (part, requests) in parts {
                spent.requests += requests;
                spent.items += part.len() as u32;
                keys.extend(part);
            }
            if keys.len() >= limit {
                break;
            }
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        keys.truncate(limit);
        if keys.len() == limit {
            // Ranges were cut at `limit`: only what is up to the last key is known to be read.
            let reached = keys.last().map(|(sk, _)| sk.clone());
            return Ok(Scan {
                keys,
                reached,
                exhausted: false,
            });
        }
        let reached = stopped_before.or_else(|| keys.last().map(|(sk, _)| sk.clone()));
        Ok(Scan {
            keys,
            reached,
            exhausted: complete,
        })
    }

    /// Keys of every match in the live index, optionally of one sport.
    async fn live_keys(&self, sport: Option<Sport>) -> Result<Vec<Attrs>, StoreError> {
        let shards = (0..LIVE_SHARDS).map(|shard| {
            let mut values = HashMap::from([(":pk".to_string(), s(live_shard_key(shard)))]);
            let condition = match sport {
                Some(sport) => {
                    values.insert(":sport".into(), s(format!("{}#", sport.as_str())));
                    "gsi5pk = :pk AND begins_with(gsi5sk, :sport)"
                }
                None => "gsi5pk = :pk",
            };
            self.query_all(Some("gsi5"), condition, HashMap::new(), values)
        });
        Ok(try_join_all(shards)
            .await?
            .into_iter()
            .flatten()
            .map(|a| key_of(&a))
            .collect())
    }

    /// Matches in play, as stored now (the index may lag), ordered by sort key.
    pub(super) async fn in_play(
        &self,
        sport: Option<Sport>,
    ) -> Result<Vec<(String, Match)>, StoreError> {
        let mut out = Vec::new();
        for a in self.batch_get(self.live_keys(sport).await?).await? {
            let m = decode_match(&a)?;
            if m.status.is_in_play() && sport.is_none_or(|s| s == m.sport) {
                out.push((sort_key(&m), m));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// What one call of `candidates` read.
struct Scan {
    /// Sort keys and item keys, ascending.
    keys: Vec<(String, Attrs)>,
    /// Every sort key up to this one has been read.
    reached: Option<String>,
    /// Nothing is left in the plan after `keys`.
    exhausted: bool,
}

/// The index reads of a listing, produced lazily: a window of many months is never planned
/// whole, only read month by month from the cursor.
struct Plan {
    kind: PlanKind,
    /// Sort keys at or below this are before the window.
    lo: String,
    /// Sort keys at or above this are after the window.
    hi: String,
}

enum PlanKind {
    /// A competition's or a team's partitions, read together.
    Partitions(Vec<IndexRange>),
    /// The by-sport index: one group per month of `[from, to)`, each of every sport named.
    Months {
        sports: Vec<Sport>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// Index partitions read together, whose sort keys all come after `start`.
struct Group {
    ranges: Vec<IndexRange>,
    start: String,
}

impl Plan {
    /// The partitions `filter` reads, with instants kept within years 1 to 9999 by checked
    /// arithmetic (a window is never moved past what sort keys can hold).
    fn new(filter: &MatchFilter, now: DateTime<Utc>) -> Plan {
        let (earliest, latest) = (earliest_instant(), latest_instant());
        let clamp = |t: DateTime<Utc>| t.clamp(earliest, latest);
        let lo_key = |from: Option<DateTime<Utc>>| from.map(|t| time_key(clamp(t)));
        let hi_key = |to: Option<DateTime<Utc>>| match to {
            Some(t) => upper_time_key(clamp(t)),
            None => ABOVE_ALL.to_string(),
        };
        if filter.competition_id.is_some() || filter.team_id.is_some() {
            let ranges = match (&filter.competition_id, &filter.team_id) {
                (Some(c), _) => vec![index_range("gsi2", competition_pk(c))],
                (None, Some(t)) => vec![
                    index_range("gsi3", team_pk(t)),
                    index_range("gsi4", team_pk(t)),
                ],
                (None, None) => unreachable!("checked above"),
            };
            return Plan {
                kind: PlanKind::Partitions(ranges),
                lo: lo_key(filter.from).unwrap_or_default(),
                hi: hi_key(filter.to),
            };
        }
        // The by-sport index is bucketed by month: name the months of the window. Without
        // `from`/`to` the window is DEFAULT_WINDOW_DAYS either side of now; with only one of
        // them, it reaches that far beyond the other end (or now), so it is never empty.
        let window = TimeDelta::days(DEFAULT_WINDOW_DAYS);
        let later = |t: DateTime<Utc>| t.checked_add_signed(window).unwrap_or(latest);
        let earlier = |t: DateTime<Utc>| t.checked_sub_signed(window).unwrap_or(earliest);
        let (from, to) = match (filter.from, filter.to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, later(from.max(now))),
            (None, Some(to)) => (earlier(to.min(now)), to),
            (None, None) => (earlier(now), later(now)),
        };
        let (from, to) = (clamp(from), clamp(to));
        Plan {
            kind: PlanKind::Months {
                sports: match filter.sport {
                    Some(s) => vec![s],
                    None => Sport::ALL.to_vec(),
                },
                from,
                to,
            },
            lo: time_key(from),
            hi: upper_time_key(to),
        }
    }

    /// The groups that may hold sort keys after `after`, in order.
    fn groups_from<'a>(&'a self, after: &str) -> Box<dyn Iterator<Item = Group> + Send + 'a> {
        match &self.kind {
            PlanKind::Partitions(ranges) => Box::new(std::iter::once(Group {
                ranges: ranges.clone(),
                start: self.lo.clone(),
            })),
            PlanKind::Months { sports, from, to } => {
                // Start at the month of the cursor: earlier months hold nothing after it.
                let cursor_time = after
                    .get(..20)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc());
                let first = month_start(cursor_time.map_or(*from, |t| t.max(*from)));
                let to = *to;
                let months =
                    std::iter::successors(Some(first), |m| m.checked_add_months(Months::new(1)))
                        .take_while(move |m| *m < to);
                Box::new(months.map(move |month| {
                    Group {
                        ranges: sports
                            .iter()
                            .map(|sport| index_range("gsi1", item::sport_month_key(*sport, month)))
                            .collect(),
                        start: time_key(month),
                    }
                }))
            }
        }
    }
}

/// The sort-key bound below every match starting before `t`: sort keys hold whole seconds, so
/// a bound within a second must admit that second (the filter then checks exactly). Within the
/// last second of year 9999 there is no next second to name: then every key is below it.
fn upper_time_key(t: DateTime<Utc>) -> String {
    let whole = t.trunc_subsecs(0);
    if whole == t {
        return time_key(t);
    }
    match whole.checked_add_signed(TimeDelta::seconds(1)) {
        Some(next) if next <= latest_instant() => time_key(next),
        _ => ABOVE_ALL.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
    }

    fn months(plan: &Plan, after: &str) -> Vec<String> {
        plan.groups_from(after)
            .map(|g| g.ranges[0].pk.clone())
            .collect()
    }

    #[test]
    fn a_window_names_its_months_and_starts_at_the_cursors_month() {
        let filter = MatchFilter {
            sport: Some(Sport::Soccer),
            from: Some(instant("2030-01-15T00:00:00Z")),
            to: Some(instant("2030-04-01T00:00:00Z")),
            ..Default::default()
        };
        let plan = Plan::new(&filter, Utc::now());
        assert_eq!(
            months(&plan, &plan.lo),
            ["S#SOCCER#2030-01", "S#SOCCER#2030-02", "S#SOCCER#2030-03"]
        );
        assert_eq!(
            months(&plan, "2030-03-02T10:00:00Z#m1"),
            ["S#SOCCER#2030-03"]
        );
        assert_eq!(months(&plan, "2030-03-01T00:00:00Z"), ["S#SOCCER#2030-03"]);
    }

    #[test]
    fn the_widest_one_sided_windows_are_produced_lazily_without_overflow() {
        let now = Utc::now();
        for (from, to) in [
            (Some(earliest_instant()), None),
            (None, Some(latest_instant())),
            (Some(DateTime::<Utc>::MIN_UTC), None),
            (None, Some(DateTime::<Utc>::MAX_UTC)),
            (Some(latest_instant()), None),
            (None, Some(earliest_instant())),
        ] {
            let filter = MatchFilter {
                from,
                to,
                ..Default::default()
            };
            let plan = Plan::new(&filter, now);
            // Taking a few groups costs a few groups, however wide the window.
            let some: Vec<Group> = plan.groups_from(&plan.lo).take(3).collect();
            assert!(some.len() <= 3);
            assert!(plan.lo.len() == 20 && plan.lo.as_str() < plan.hi.as_str() || some.is_empty());
            for g in &some {
                assert_eq!(g.ranges.len(), Sport::ALL.len());
                assert_eq!(g.start.len(), 20, "a four-digit year: {}", g.start);
            }
        }
    }

    #[test]
    fn the_last_month_of_year_9999_is_read_and_nothing_after_it() {
        let filter = MatchFilter {
            sport: Some(Sport::Soccer),
            from: Some(instant("9999-11-20T00:00:00Z")),
            ..Default::default()
        };
        let plan = Plan::new(&filter, Utc::now());
        assert_eq!(
            months(&plan, &plan.lo),
            ["S#SOCCER#9999-11", "S#SOCCER#9999-12"]
        );
        assert_eq!(plan.hi, ABOVE_ALL);
    }

    #[test]
    fn an_upper_bound_within_the_last_second_admits_every_key() {
        assert_eq!(upper_time_key(latest_instant()), ABOVE_ALL);
        assert_eq!(
            upper_time_key(instant("2026-11-22T15:00:00.5Z")),
            "2026-11-22T15:00:01Z"
        );
        assert_eq!(
            upper_time_key(instant("2026-11-22T15:00:00Z")),
            "2026-11-22T15:00:00Z"
        );
    }

    #[test]
    fn cursors_are_sort_keys_or_bare_positions_written_as_sort_keys_write_times() {
        let ok = |sk: &str| parse_cursor(&cursor::encode(&sk)).is_ok();
        assert!(ok("2026-11-22T15:00:00Z#m1"));
        assert!(ok("2026-11-01T00:00:00Z"));
        assert!(!ok("2026-11-22T15:00:00+01:00#m1"));
        assert!(!ok("2026-11-22T15:00:00Z#"));
        assert!(!ok("not a time#m1"));
        assert!(!ok("+10000-01-01T00:00:00Z"));
    }
}
