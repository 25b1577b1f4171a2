//! Listings: reads that go through the indexes. A filter becomes a [`Plan`] of index partitions
//! (the by-sport index bucketed by month, so a window names its months), read in sort-key order
//! from a cursor, whose keys are then fetched with `BatchGetItem`; the live index serves
//! matches in play. The indexes project keys only, so every listing ends in a `BatchGetItem`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Datelike, Duration as ChronoDuration, Months, SubsecRound, TimeZone, Utc};
use futures::future::try_join_all;
use scoreline_core::item::{
    self, competition_pk, live_shard_key, team_pk, time_key, INDEXES, LIVE_SHARDS, PK, SK,
};
use scoreline_core::store::{
    cursor, MatchFilter, Page, PageRequest, Store, StoreError, MAX_PAGE_SIZE,
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

/// One index partition to read, in sort-key order, within `(after, before)`.
#[derive(Clone, Debug)]
struct IndexRange {
    index: &'static str,
    pk_attr: &'static str,
    sk_attr: &'static str,
    pk: String,
}

fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(t)
}

impl DynamoStore {
    /// `Store::matches`: a page of a listing, from its cursor.
    pub(super) async fn list_matches(
        &self,
        filter: &MatchFilter,
        page: &PageRequest,
    ) -> Result<Page<Match>, StoreError> {
        let first = page.first.clamp(1, MAX_PAGE_SIZE) as usize;
        let cursor = match &page.after {
            Some(raw) => {
                let sk: String = cursor::decode(raw)?;
                // A cursor is a sort key of this layout: `<time>#<match id>`.
                let (time, id) = sk.split_once('#').ok_or(StoreError::InvalidCursor)?;
                DateTime::parse_from_rfc3339(time).map_err(|_| StoreError::InvalidCursor)?;
                MatchId::parse(id).map_err(|_| StoreError::InvalidCursor)?;
                Some(sk)
            }
            None => None,
        };
        let mut items: Vec<(String, Match)> = Vec::with_capacity(first + 1);
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
            let plan = self.plan(filter);
            let mut after = match cursor {
                Some(sk) => sk.max(plan.lo.clone()),
                None => plan.lo.clone(),
            };
            // Filters the indexes cannot apply (status, sport within a competition, …) are
            // applied to the fetched items. Reads go on until the page is full or the window is
            // exhausted (a short page with a next page would leave the client without a
            // cursor), reading more per round while the filter keeps refusing.
            let mut read = first + 1;
            loop {
                let want = first + 1 - items.len();
                read = read.max(want);
                let candidates = self.candidates(&plan, &after, read).await?;
                let exhausted = candidates.len() < read;
                let Some((last_sk, _)) = candidates.last().cloned() else {
                    break;
                };
                let fetched = self
                    .batch_get(candidates.iter().map(|(_, k)| k.clone()).collect())
                    .await?;
                let mut by_id: HashMap<String, Match> = HashMap::new();
                for a in &fetched {
                    let m = decode_match(a)?;
                    by_id.insert(m.id.to_string(), m);
                }
                for (sk, _) in &candidates {
                    let id = sk.split_once('#').map(|(_, id)| id).unwrap_or_default();
                    if let Some(m) = by_id.remove(id) {
                        // The index is eventually consistent: skip entries whose item moved.
                        if sort_key(&m) == *sk && filter.admits(&m) {
                            items.push((sk.clone(), m));
                        }
                    }
                }
                after = last_sk;
                if items.len() > first || exhausted {
                    break;
                }
                read = (read * 2).min(MAX_ROUND_READ);
            }
        }
        let has_next_page = items.len() > first;
        items.truncate(first);
        Ok(Page {
            items: items
                .into_iter()
                .map(|(sk, m)| (cursor::encode(&sk), m))
                .collect(),
            has_next_page,
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

    /// Index sort keys of one partition, ascending, strictly between `after` and `before`.
    async fn index_keys(
        &self,
        range: &IndexRange,
        after: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<(String, Attrs)>, StoreError> {
        let mut out = Vec::new();
        let lo = format!("{after}\u{1}");
        if lo.as_str() >= before {
            return Ok(out);
        }
        let mut start: Option<Attrs> = None;
        while out.len() < limit {
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
        Ok(out)
    }

    /// The index partitions a filter reads, in groups whose sort keys are disjoint and in
    /// ascending order (partitions within a group are merged), and the window of sort keys.
    fn plan(&self, filter: &MatchFilter) -> Plan {
        let range = |index: &'static str, pk: String| {
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
        };
        let unbounded = |ranges| Group { ranges, end: None };
        if filter.competition_id.is_some() || filter.team_id.is_some() {
            let lo = filter.from.map(time_key).unwrap_or_default();
            let hi = filter
                .to
                .map(upper_time_key)
                .unwrap_or_else(|| "\u{7f}".to_string());
            let group = match (&filter.competition_id, &filter.team_id) {
                (Some(c), _) => vec![range("gsi2", competition_pk(c))],
                (None, Some(t)) => vec![range("gsi3", team_pk(t)), range("gsi4", team_pk(t))],
                (None, None) => unreachable!("checked above"),
            };
            return Plan {
                groups: vec![unbounded(group)],
                lo,
                hi,
            };
        }
        // The by-sport index is bucketed by month: name the months of the window. Without
        // `from`/`to` the window is DEFAULT_WINDOW_DAYS either side of now; with only one of
        // them, it reaches that far beyond the other end (or now), so it is never empty.
        let now = Utc::now();
        let window = ChronoDuration::days(DEFAULT_WINDOW_DAYS);
        let (from, to) = match (filter.from, filter.to) {
            (Some(from), Some(to)) => (from, to),
            (Some(from), None) => (from, from.max(now) + window),
            (None, Some(to)) => (to.min(now) - window, to),
            (None, None) => (now - window, now + window),
        };
        let sports: Vec<Sport> = match filter.sport {
            Some(s) => vec![s],
            None => Sport::ALL.to_vec(),
        };
        let mut groups = Vec::new();
        let mut month = month_start(from);
        while month < to {
            let next = month + Months::new(1);
            groups.push(Group {
                ranges: sports
                    .iter()
                    .map(|sport| range("gsi1", item::sport_month_key(*sport, month)))
                    .collect(),
                end: Some(time_key(next)),
            });
            month = next;
        }
        Plan {
            groups,
            lo: time_key(from),
            hi: upper_time_key(to),
        }
    }

    /// Sort keys of a filter's window after `after`, in order, at most `limit`.
    async fn candidates(
        &self,
        plan: &Plan,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Attrs)>, StoreError> {
        let mut candidates: Vec<(String, Attrs)> = Vec::new();
        // Groups are in time order: skip those that end before the cursor, stop at the first
        // that completes the page.
        for group in &plan.groups {
            if group.end.as_deref().is_some_and(|end| end <= after) {
                continue;
            }
            let parts = try_join_all(
                group
                    .ranges
                    .iter()
                    .map(|range| self.index_keys(range, after, &plan.hi, limit)),
            )
            .await?;
            candidates.extend(parts.into_iter().flatten());
            if candidates.len() >= limit {
                break;
            }
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        candidates.dedup_by(|a, b| a.0 == b.0);
        candidates.truncate(limit);
        Ok(candidates)
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

/// The index reads of a listing.
struct Plan {
    groups: Vec<Group>,
    /// Sort keys at or below this are before the window.
    lo: String,
    /// Sort keys at or above this are after the window.
    hi: String,
}

/// Index partitions read together; `end` bounds their sort keys from above, when known.
struct Group {
    ranges: Vec<IndexRange>,
    end: Option<String>,
}

/// The sort-key bound below every match starting before `t`: sort keys hold whole seconds, so
/// a bound within a second must admit that second (the filter then checks exactly).
fn upper_time_key(t: DateTime<Utc>) -> String {
    let whole = t.trunc_subsecs(0);
    if whole == t {
        time_key(t)
    } else {
        time_key(whole + ChronoDuration::seconds(1))
    }
}
