use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Duration as ChronoDuration;
use scoreline_core::store::{IdempotencyRecord, ReadBudget, IDEMPOTENCY_TTL_HOURS};

use scoreline_core::MatchStatus;

use super::*;
use crate::test_support::{a_match, at};

/// A clock the test moves by hand: seconds after `at(0)`.
fn manual_clock() -> (Clock, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(0));
    let read = now.clone();
    (Arc::new(move || at(read.load(Ordering::SeqCst))), now)
}

fn store_with(options: MemoryOptions) -> (MemoryStore, mpsc::Receiver<EventRecord>) {
    MemoryStore::with_options(options)
}

/// The next version of `m`, changed at `at(changed)`, with an idempotency key expiring at
/// `expires`.
fn keyed_write(m: &Match, key: &str, changed: i64, expires: DateTime<Utc>) -> MatchWrite {
    let mut next = m.clone();
    next.version += 1;
    next.updated_at = at(changed);
    MatchWrite {
        next,
        event: None,
        idempotency: Some(IdempotencyRecord {
            key: ClientMutationId::parse(key).unwrap(),
            expires_at: expires,
        }),
    }
}

#[tokio::test]
async fn idempotency_records_are_removed_once_their_ttl_has_passed() {
    let (clock, now) = manual_clock();
    let (store, _feed) = store_with(MemoryOptions {
        clock,
        ..Default::default()
    });
    let mut m = a_match("m1", 1, 0);
    store.create_match(&m).await.unwrap();
    let ttl = ChronoDuration::hours(IDEMPOTENCY_TTL_HOURS);
    for (i, key) in ["k1", "k2", "k3"].into_iter().enumerate() {
        let write = keyed_write(&m, key, i as i64, at(i as i64) + ttl);
        store.commit(&write).await.unwrap();
        m = write.next;
    }
    assert_eq!(store.idempotency_records(), 3);
    assert_eq!(store.metrics.idempotency_records.load(Ordering::Relaxed), 3);

    // A day later (and a second): k1 and k2 have expired. Reads treat them as absent at once;
    // the next write removes them.
    now.store(ttl.num_seconds() + 1, Ordering::SeqCst);
    let k1 = ClientMutationId::parse("k1").unwrap();
    let k3 = ClientMutationId::parse("k3").unwrap();
    assert_eq!(store.idempotent_result(&m.id, &k1).await.unwrap(), None);
    assert!(store.idempotent_result(&m.id, &k3).await.unwrap().is_some());
    let write = keyed_write(
        &m,
        "k4",
        ttl.num_seconds() + 1,
        at(ttl.num_seconds() + 1) + ttl,
    );
    store.commit(&write).await.unwrap();
    assert_eq!(store.idempotency_records(), 2, "k3 and k4 remain");
    assert_eq!(store.metrics.idempotency_expired.load(Ordering::Relaxed), 2);
    assert_eq!(store.metrics.idempotency_records.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_key_reused_after_it_expired_keeps_only_its_new_expiry() {
    let (clock, now) = manual_clock();
    let (store, _feed) = store_with(MemoryOptions {
        clock,
        ..Default::default()
    });
    let m = a_match("m1", 1, 0);
    store.create_match(&m).await.unwrap();
    let first = keyed_write(&m, "k", 0, at(10));
    store.commit(&first).await.unwrap();
    now.store(20, Ordering::SeqCst);
    let again = keyed_write(&first.next, "k", 20, at(100));
    store
        .commit(&again)
        .await
        .expect("an expired key may be used again");
    now.store(50, Ordering::SeqCst);
    let other = keyed_write(&again.next, "other", 50, at(1000));
    store.commit(&other).await.unwrap();
    let k = ClientMutationId::parse("k").unwrap();
    assert_eq!(
        store.idempotent_result(&m.id, &k).await.unwrap(),
        Some(again.next),
        "the old expiry did not remove the new record"
    );
}

#[tokio::test]
async fn a_commit_that_finds_the_feed_full_fails_as_unavailable_and_changes_nothing() {
    let (store, mut feed) = store_with(MemoryOptions {
        feed_capacity: MIN_FEED_CAPACITY,
        feed_wait: std::time::Duration::from_millis(10),
        ..Default::default()
    });
    let m = a_match("m1", 1, 0);
    store.create_match(&m).await.unwrap();
    // Fill the feed with matches nobody reads.
    let mut n = 0;
    while store.feed.free() >= 3 {
        store
            .create_match(&a_match(&format!("f{n}"), 1, 0))
            .await
            .unwrap();
        n += 1;
    }
    let write = keyed_write(&m, "k", 1, at(1000));
    let refused = store.commit(&write).await;
    assert!(
        matches!(refused, Err(CommitError::Store(StoreError::Unavailable(_)))),
        "{refused:?}"
    );
    assert_eq!(store.match_by_id(&m.id).await.unwrap(), Some(m.clone()));
    assert_eq!(store.metrics.change_feed_full.load(Ordering::Relaxed), 1);
    // Once the pipeline reads, the same write goes through, its records after the others.
    let mut drained = Vec::new();
    feed.recv_many(&mut drained, MIN_FEED_CAPACITY).await;
    store.commit(&write).await.unwrap();
    let next = feed.recv().await.unwrap();
    let sequence: u64 = next.change.sequence_number.unwrap().parse().unwrap();
    let before: u64 = drained
        .last()
        .and_then(|r| r.change.sequence_number.clone())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sequence, before + 1, "nothing lost in between");
}

async fn soccer_at(store: &MemoryStore, id: &str, start: DateTime<Utc>, status: MatchStatus) {
    let mut m = a_match(id, 1, 0);
    m.start_time = start;
    m.status = status;
    store.create_match(&m).await.unwrap();
}

fn budget(items: u32) -> ReadBudget {
    ReadBudget { items, requests: 0 }
}

#[tokio::test]
async fn a_page_examines_at_most_its_budget_and_resumes_where_it_stopped() {
    let (store, _feed) = MemoryStore::new();
    // Ten scheduled matches, then one live one: a LIVE filter reads past the ten.
    for i in 0..10 {
        soccer_at(&store, &format!("s{i}"), at(i), MatchStatus::Scheduled).await;
    }
    soccer_at(&store, "live", at(10), MatchStatus::Live).await;
    let filter = MatchFilter {
        statuses: vec![MatchStatus::Live],
        ..Default::default()
    };
    let mut request = PageRequest {
        first: 5,
        after: None,
        budget: budget(4),
    };
    let mut pages = Vec::new();
    loop {
        let page = store.matches(&filter, &request).await.unwrap();
        assert!(page.items.len() <= 5);
        pages.push(page.items.len());
        if !page.has_next_page {
            assert_eq!(page.items.len(), 1);
            assert_eq!(page.items[0].1.id.as_str(), "live");
            break;
        }
        assert!(
            page.end_cursor.is_some(),
            "a page with a next page says where"
        );
        assert_ne!(page.end_cursor, request.after, "every page gets further");
        request.after = page.end_cursor;
    }
    assert_eq!(pages, [0, 0, 1], "4 + 4 examined, then the last three");
}

#[tokio::test]
async fn a_window_examines_only_the_matches_inside_it() {
    let (store, _feed) = MemoryStore::new();
    for i in 0..50 {
        soccer_at(&store, &format!("a{i:02}"), at(i), MatchStatus::Scheduled).await;
    }
    let filter = MatchFilter {
        from: Some(at(40)),
        to: Some(at(43)),
        ..Default::default()
    };
    // With a budget of three, the three matches in the window fit one page: the forty before
    // it are not examined.
    let page = store
        .matches(
            &filter,
            &PageRequest {
                first: 10,
                after: None,
                budget: budget(3),
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|(_, m)| m.id.as_str()).collect();
    assert_eq!(ids, ["a40", "a41", "a42"]);
    assert!(!page.has_next_page, "the window ends with the budget");
}

#[tokio::test]
async fn extreme_and_crossed_windows_list_nothing_without_panicking() {
    let (store, _feed) = MemoryStore::new();
    soccer_at(&store, "m", at(0), MatchStatus::Scheduled).await;
    let earliest = scoreline_core::store::earliest_instant();
    let latest = scoreline_core::store::latest_instant();
    for (from, to, expected) in [
        (Some(earliest), Some(latest), 1),
        (Some(latest), None, 0),
        (None, Some(earliest), 0),
        (Some(at(5)), Some(at(1)), 0),
        (Some(at(0)), Some(at(0)), 0),
        (
            Some(DateTime::<Utc>::MIN_UTC),
            Some(DateTime::<Utc>::MAX_UTC),
            1,
        ),
    ] {
        let filter = MatchFilter {
            from,
            to,
            ..Default::default()
        };
        let page = store
            .matches(&filter, &PageRequest::new(10, None))
            .await
            .unwrap();
        assert_eq!(page.items.len(), expected, "{from:?}..{to:?}");
    }
    // A cursor past `to` lists nothing either.
    let after = cursor::encode(&(at(100), "z"));
    let page = store
        .matches(
            &MatchFilter {
                to: Some(at(50)),
                ..Default::default()
            },
            &PageRequest::new(10, Some(after)),
        )
        .await
        .unwrap();
    assert!(page.items.is_empty() && !page.has_next_page);
}
