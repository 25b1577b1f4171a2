//! The store contract: one suite of tests over the `Store` port, run against every
//! implementation (the memory store, and the DynamoDB store on DynamoDB Local), so both answer
//! every access pattern the same way. `contract_tests!` instantiates the suite per store:
//! `memory::a_stale_version_is_refused`, `dynamodb::a_stale_version_is_refused`, ….
//!
//! Each test gets a fresh store (for DynamoDB, a fresh table). Start times are near now: the
//! DynamoDB store limits sport listings without `from`/`to` to a window around now.

use std::any::Any;
use std::sync::Arc;

use api::{DynamoConfig, DynamoStore, MemoryStore};
use scoreline_core::store::Store;
use scoreline_tests::dynamodb_local;

/// A store under test, with whatever must stay alive beside it.
pub struct Subject {
    pub store: Arc<dyn Store>,
    // The memory store's change feed: its store reports itself unready once it is dropped.
    _keep: Option<Box<dyn Any + Send>>,
}

async fn memory_store() -> Subject {
    let (store, feed) = MemoryStore::new();
    Subject {
        store: Arc::new(store),
        _keep: Some(Box::new(feed)),
    }
}

async fn dynamo_store() -> Subject {
    let store = DynamoStore::connect(&DynamoConfig {
        table: dynamodb_local::unique_table("contract"),
        endpoint: Some(dynamodb_local::endpoint().into()),
        region: None,
        local_credentials: true,
    })
    .await;
    assert!(
        store.init_table().await.expect("creating the table"),
        "a fresh table is created"
    );
    Subject {
        store: Arc::new(store),
        _keep: None,
    }
}

/// Instantiates every contract test for one store: `contract_tests!(module, make_store)`.
macro_rules! contract_tests {
    ($module:ident, $make:ident) => {
        contract_tests!(@expand $module, $make, [
            a_competition_is_created_once_and_read_back,
            competitions_are_listed_by_sport,
            a_team_is_created_once_and_read_back,
            a_refused_duplicate_team_registers_no_memberships,
            teams_are_listed_by_sport_and_by_competition_membership,
            a_competition_listed_twice_for_a_new_team_registers_it_once,
            creating_a_match_registers_both_teams_in_its_competition,
            teams_by_ids_returns_the_known_teams_of_many_ids,
            a_match_is_created_once_and_read_back,
            matches_are_filtered_by_sport_near_now,
            matches_are_filtered_by_sport_within_a_from_to_window,
            matches_are_filtered_by_competition,
            matches_are_filtered_by_team_home_and_away,
            matches_are_filtered_by_a_status_list,
            matches_are_filtered_by_from_and_to_alone,
            a_sub_second_to_bound_keeps_matches_starting_in_that_second,
            matches_page_through_in_start_time_then_id_order,
            pages_span_several_months,
            a_selective_filter_finds_a_match_behind_many_others,
            a_one_sided_window_far_from_now_lists_the_matches_inside_it,
            a_page_ended_by_its_read_budget_resumes_at_its_end_cursor,
            months_without_matches_come_back_as_short_pages_that_resume,
            windows_at_the_ends_of_the_supported_years_list_without_error,
            a_tampered_or_foreign_cursor_is_refused,
            live_matches_are_the_live_and_paused_ones_of_every_shard,
            events_are_listed_ascending_after_a_seq_with_a_limit,
            a_stale_version_is_refused,
            a_reused_idempotency_key_is_refused_and_its_first_result_kept,
            an_expired_idempotency_record_is_ignored,
            apply_command_refuses_a_stale_expected_version,
            apply_command_replays_a_mutation_with_its_first_result,
            apply_command_numbers_events_contiguously,
            concurrent_commands_lose_nothing,
            a_ready_store_passes_its_check,
        ]);
    };
    (@expand $module:ident, $make:ident, [$($test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let subject = super::$make().await;
                    super::contract::$test(subject.store.as_ref()).await;
                }
            )*
        }
    };
}

contract_tests!(memory, memory_store);
contract_tests!(dynamodb, dynamo_store);

/// The suite itself: every function takes the store under test.
mod contract {
    use std::collections::{BTreeSet, HashSet};

    use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
    use scoreline_core::command::{ClockUpdate, MatchCommand, NewEvent};
    use scoreline_core::item::{live_shard, LIVE_SHARDS};
    use scoreline_core::model::{Details, Score};
    use scoreline_core::service::{self, ServiceError, WriteOptions};
    use scoreline_core::store::{
        cursor, earliest_instant, latest_instant, CommitError, IdempotencyRecord, MatchFilter,
        MatchWrite, PageRequest, ReadBudget, Store, StoreError, LISTING_READ_BUDGET,
        MAX_WINDOW_DAYS,
    };
    use scoreline_core::text::{Name, Season, ShortName, Venue};
    use scoreline_core::{
        ClientMutationId, Competition, CompetitionId, EventType, Match, MatchId, MatchStatus, Side,
        Sport, Team, TeamId,
    };

    // ---- builders ----

    fn now() -> DateTime<Utc> {
        Utc::now()
            .duration_trunc(Duration::seconds(1))
            .expect("truncating to seconds")
    }

    /// A whole hour near now, so start times built from it sort predictably.
    fn base() -> DateTime<Utc> {
        Utc::now()
            .duration_trunc(Duration::hours(1))
            .expect("truncating to hours")
            + Duration::hours(1)
    }

    fn cid(raw: &str) -> CompetitionId {
        CompetitionId::parse(raw).unwrap()
    }
    fn tid(raw: &str) -> TeamId {
        TeamId::parse(raw).unwrap()
    }
    fn mid(raw: &str) -> MatchId {
        MatchId::parse(raw).unwrap()
    }
    fn key(raw: &str) -> ClientMutationId {
        ClientMutationId::parse(raw).unwrap()
    }

    fn competition(id: &str, sport: Sport) -> Competition {
        Competition {
            id: cid(id),
            name: Name::parse(format!("{id} league")).unwrap(),
            sport,
            season: Season::parse("2026").unwrap(),
            created_at: now(),
        }
    }

    fn team(id: &str, sport: Sport) -> Team {
        Team {
            id: tid(id),
            name: Name::parse(format!("{id} FC")).unwrap(),
            short_name: ShortName::parse("TST").unwrap(),
            sport,
            created_at: now(),
        }
    }

    fn a_match(
        id: &str,
        sport: Sport,
        competition: &str,
        home: &str,
        away: &str,
        start: DateTime<Utc>,
    ) -> Match {
        Match {
            id: mid(id),
            sport,
            competition_id: cid(competition),
            home_team_id: tid(home),
            away_team_id: tid(away),
            start_time: start,
            venue: Some(Venue::parse("Test Ground").unwrap()),
            status: MatchStatus::Scheduled,
            score: Score::default(),
            periods: vec![],
            clock: None,
            details: Details::initial(sport),
            last_seq: 0,
            version: 1,
            created_at: now(),
            updated_at: now(),
        }
    }

    /// A competition of `sport` with teams `<prefix>-a`..`<prefix>-d`.
    async fn league(store: &dyn Store, id: &str, sport: Sport) {
        store
            .create_competition(&competition(id, sport))
            .await
            .unwrap();
        for suffix in ["a", "b", "c", "d"] {
            store
                .create_team(&team(&format!("{id}-{suffix}"), sport), &[cid(id)])
                .await
                .unwrap();
        }
    }

    async fn add_match(store: &dyn Store, m: &Match) {
        store.create_match(m).await.unwrap();
    }

    async fn run(store: &dyn Store, id: &MatchId, command: MatchCommand) -> Match {
        service::apply_command(store, id, &command, &WriteOptions::default(), Utc::now)
            .await
            .unwrap_or_else(|e| panic!("{} on {id}: {e}", command.name()))
    }

    async fn set_status(store: &dyn Store, id: &MatchId, statuses: &[MatchStatus]) {
        for s in statuses {
            run(store, id, MatchCommand::SetStatus(*s)).await;
        }
    }

    fn scoring(event_type: EventType, side: Side) -> MatchCommand {
        MatchCommand::RecordEvent(NewEvent::new(event_type).side(side))
    }

    /// Every match a filter admits, page by page, checking that cursors resume exactly.
    async fn all_pages(store: &dyn Store, filter: &MatchFilter, first: u32) -> Vec<Match> {
        all_pages_within(store, filter, first, LISTING_READ_BUDGET)
            .await
            .0
    }

    /// [`all_pages`] with a read budget per page; also returns how many pages it took.
    async fn all_pages_within(
        store: &dyn Store,
        filter: &MatchFilter,
        first: u32,
        budget: ReadBudget,
    ) -> (Vec<Match>, usize) {
        let mut out: Vec<Match> = Vec::new();
        let mut after = None;
        for pages in 1..=2000 {
            let page = store
                .matches(
                    filter,
                    &PageRequest {
                        first,
                        after: after.clone(),
                        budget,
                    },
                )
                .await
                .unwrap();
            assert!(
                page.items.len() <= first as usize,
                "a page holds at most `first`"
            );
            let last = page.items.last().map(|(c, _)| c.clone());
            out.extend(page.items.into_iter().map(|(_, m)| m));
            if !page.has_next_page {
                assert_eq!(page.end_cursor, last, "the last page ends at its last item");
                return (out, pages);
            }
            // A page the budget ended early may be short, even empty: its end cursor says
            // where reading stopped, and following it always gets further.
            let next = page
                .end_cursor
                .expect("a page with a next page has an end cursor");
            assert_ne!(Some(&next), after.as_ref(), "every page gets further");
            after = Some(next);
        }
        panic!("pagination did not end");
    }

    fn ids(matches: &[Match]) -> Vec<String> {
        matches.iter().map(|m| m.id.to_string()).collect()
    }

    fn sorted_ids(mut matches: Vec<Match>) -> Vec<String> {
        matches.sort_by(|a, b| (a.start_time, &a.id).cmp(&(b.start_time, &b.id)));
        ids(&matches)
    }

    fn team_ids(teams: &[Team]) -> Vec<String> {
        teams.iter().map(|t| t.id.to_string()).collect()
    }

    async fn listing(store: &dyn Store, filter: MatchFilter) -> Vec<String> {
        ids(&all_pages(store, &filter, 100).await)
    }

    // ---- catalogue ----

    pub async fn a_competition_is_created_once_and_read_back(store: &dyn Store) {
        let c = competition("epl", Sport::Soccer);
        store.create_competition(&c).await.unwrap();
        assert_eq!(store.competition(&c.id).await.unwrap(), Some(c.clone()));
        assert_eq!(store.competition(&cid("nope")).await.unwrap(), None);

        let mut again = competition("epl", Sport::Basketball);
        again.name = Name::parse("Another").unwrap();
        assert!(matches!(
            store.create_competition(&again).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(
            store.competition(&c.id).await.unwrap(),
            Some(c),
            "a refused duplicate changes nothing"
        );
    }

    pub async fn competitions_are_listed_by_sport(store: &dyn Store) {
        assert!(store.competitions(None).await.unwrap().is_empty());
        for (id, sport) in [
            ("laliga", Sport::Soccer),
            ("nba", Sport::Basketball),
            ("epl", Sport::Soccer),
            ("mlb", Sport::Baseball),
        ] {
            store
                .create_competition(&competition(id, sport))
                .await
                .unwrap();
        }
        let all = store.competitions(None).await.unwrap();
        let listed: Vec<(Sport, String)> =
            all.iter().map(|c| (c.sport, c.id.to_string())).collect();
        let mut expected = listed.clone();
        expected.sort();
        assert_eq!(listed, expected, "ordered by sport then id");
        assert_eq!(all.len(), 4);

        let soccer = store.competitions(Some(Sport::Soccer)).await.unwrap();
        assert_eq!(
            soccer.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(),
            ["epl", "laliga"]
        );
        assert_eq!(soccer[0], competition_like(&soccer[0], "epl"));
        assert!(store
            .competitions(Some(Sport::IceHockey))
            .await
            .unwrap()
            .is_empty());
    }

    fn competition_like(c: &Competition, id: &str) -> Competition {
        Competition {
            id: cid(id),
            name: Name::parse(format!("{id} league")).unwrap(),
            sport: Sport::Soccer,
            season: Season::parse("2026").unwrap(),
            created_at: c.created_at,
        }
    }

    pub async fn a_team_is_created_once_and_read_back(store: &dyn Store) {
        let t = team("ars", Sport::Soccer);
        store.create_team(&t, &[]).await.unwrap();
        assert_eq!(store.team(&t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(store.team(&tid("nope")).await.unwrap(), None);
        assert!(matches!(
            store.create_team(&team("ars", Sport::Soccer), &[]).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(store.team(&t.id).await.unwrap(), Some(t));
    }

    pub async fn a_refused_duplicate_team_registers_no_memberships(store: &dyn Store) {
        store
            .create_competition(&competition("epl", Sport::Soccer))
            .await
            .unwrap();
        store
            .create_competition(&competition("cup", Sport::Soccer))
            .await
            .unwrap();
        store
            .create_team(&team("ars", Sport::Soccer), &[cid("epl")])
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_team(&team("ars", Sport::Soccer), &[cid("cup")])
                .await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(
            store
                .teams(None, Some(&cid("cup")))
                .await
                .unwrap()
                .is_empty(),
            "the refused write is refused whole"
        );
    }

    pub async fn teams_are_listed_by_sport_and_by_competition_membership(store: &dyn Store) {
        store
            .create_competition(&competition("epl", Sport::Soccer))
            .await
            .unwrap();
        store
            .create_competition(&competition("cup", Sport::Soccer))
            .await
            .unwrap();
        store
            .create_competition(&competition("nba", Sport::Basketball))
            .await
            .unwrap();
        store
            .create_team(&team("che", Sport::Soccer), &[cid("epl"), cid("cup")])
            .await
            .unwrap();
        store
            .create_team(&team("ars", Sport::Soccer), &[cid("epl")])
            .await
            .unwrap();
        store
            .create_team(&team("free", Sport::Soccer), &[])
            .await
            .unwrap();
        store
            .create_team(&team("lal", Sport::Basketball), &[cid("nba")])
            .await
            .unwrap();

        assert_eq!(
            team_ids(&store.teams(None, None).await.unwrap()),
            ["ars", "che", "free", "lal"],
            "ordered by sport then id"
        );
        assert_eq!(
            team_ids(&store.teams(Some(Sport::Soccer), None).await.unwrap()),
            ["ars", "che", "free"]
        );
        assert_eq!(
            team_ids(&store.teams(None, Some(&cid("epl"))).await.unwrap()),
            ["ars", "che"]
        );
        assert_eq!(
            team_ids(&store.teams(None, Some(&cid("cup"))).await.unwrap()),
            ["che"]
        );
        assert_eq!(
            team_ids(
                &store
                    .teams(Some(Sport::Soccer), Some(&cid("epl")))
                    .await
                    .unwrap()
            ),
            ["ars", "che"]
        );
        assert!(store
            .teams(Some(Sport::Basketball), Some(&cid("epl")))
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .teams(None, Some(&cid("unknown")))
            .await
            .unwrap()
            .is_empty());
        let lal = store.teams(None, Some(&cid("nba"))).await.unwrap();
        assert_eq!(lal, vec![team_like(&lal[0], "lal", Sport::Basketball)]);
    }

    fn team_like(t: &Team, id: &str, sport: Sport) -> Team {
        Team {
            created_at: t.created_at,
            ..team(id, sport)
        }
    }

    pub async fn a_competition_listed_twice_for_a_new_team_registers_it_once(store: &dyn Store) {
        store
            .create_competition(&competition("epl", Sport::Soccer))
            .await
            .unwrap();
        store
            .create_team(&team("ars", Sport::Soccer), &[cid("epl"), cid("epl")])
            .await
            .expect("a repeated competition id is harmless");
        assert_eq!(
            team_ids(&store.teams(None, Some(&cid("epl"))).await.unwrap()),
            ["ars"]
        );
    }

    pub async fn creating_a_match_registers_both_teams_in_its_competition(store: &dyn Store) {
        store
            .create_competition(&competition("friendlies", Sport::Soccer))
            .await
            .unwrap();
        for id in ["ars", "che", "tot"] {
            store
                .create_team(&team(id, Sport::Soccer), &[])
                .await
                .unwrap();
        }
        assert!(store
            .teams(None, Some(&cid("friendlies")))
            .await
            .unwrap()
            .is_empty());
        let start = base();
        add_match(
            store,
            &a_match("m1", Sport::Soccer, "friendlies", "che", "ars", start),
        )
        .await;
        assert_eq!(
            team_ids(&store.teams(None, Some(&cid("friendlies"))).await.unwrap()),
            ["ars", "che"]
        );
        // A second match between registered teams registers nothing twice.
        add_match(
            store,
            &a_match("m2", Sport::Soccer, "friendlies", "ars", "che", start),
        )
        .await;
        add_match(
            store,
            &a_match("m3", Sport::Soccer, "friendlies", "tot", "ars", start),
        )
        .await;
        assert_eq!(
            team_ids(&store.teams(None, Some(&cid("friendlies"))).await.unwrap()),
            ["ars", "che", "tot"]
        );
    }

    pub async fn teams_by_ids_returns_the_known_teams_of_many_ids(store: &dyn Store) {
        // More than one BatchGetItem holds (100 keys).
        let mut wanted = Vec::new();
        for i in 0..130 {
            let id = format!("t{i:03}");
            store
                .create_team(&team(&id, Sport::Soccer), &[])
                .await
                .unwrap();
            wanted.push(tid(&id));
        }
        wanted.push(tid("unknown-1"));
        wanted.push(tid("unknown-2"));
        let mut found = team_ids(&store.teams_by_ids(&wanted).await.unwrap());
        found.sort();
        let expected: Vec<String> = (0..130).map(|i| format!("t{i:03}")).collect();
        assert_eq!(found, expected);

        let few = store
            .teams_by_ids(&[tid("t007"), tid("nobody")])
            .await
            .unwrap();
        assert_eq!(few, vec![team_like(&few[0], "t007", Sport::Soccer)]);
        assert!(store.teams_by_ids(&[]).await.unwrap().is_empty());
    }

    // ---- matches ----

    pub async fn a_match_is_created_once_and_read_back(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        let m = a_match("m1", Sport::Soccer, "epl", "epl-a", "epl-b", base());
        add_match(store, &m).await;
        assert_eq!(store.match_by_id(&m.id).await.unwrap(), Some(m.clone()));
        assert_eq!(store.match_by_id(&mid("nope")).await.unwrap(), None);
        let mut again = a_match("m1", Sport::Soccer, "epl", "epl-c", "epl-d", base());
        again.venue = None;
        assert!(matches!(
            store.create_match(&again).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(store.match_by_id(&m.id).await.unwrap(), Some(m));
        assert!(
            !team_ids(&store.teams(None, Some(&cid("epl"))).await.unwrap()).is_empty(),
            "the league's teams are still there"
        );
    }

    /// Soccer and basketball matches around now, a few days apart.
    async fn two_sports(store: &dyn Store) -> Vec<Match> {
        league(store, "epl", Sport::Soccer).await;
        league(store, "nba", Sport::Basketball).await;
        let b = base();
        let all = vec![
            a_match(
                "s1",
                Sport::Soccer,
                "epl",
                "epl-a",
                "epl-b",
                b - Duration::days(3),
            ),
            a_match("s2", Sport::Soccer, "epl", "epl-c", "epl-d", b),
            a_match(
                "s3",
                Sport::Soccer,
                "epl",
                "epl-b",
                "epl-c",
                b + Duration::days(2),
            ),
            a_match(
                "b1",
                Sport::Basketball,
                "nba",
                "nba-a",
                "nba-b",
                b - Duration::days(1),
            ),
            a_match("b2", Sport::Basketball, "nba", "nba-c", "nba-d", b),
        ];
        for m in &all {
            add_match(store, m).await;
        }
        all
    }

    pub async fn matches_are_filtered_by_sport_near_now(store: &dyn Store) {
        two_sports(store).await;
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    sport: Some(Sport::Soccer),
                    ..Default::default()
                }
            )
            .await,
            ["s1", "s2", "s3"]
        );
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    sport: Some(Sport::Basketball),
                    ..Default::default()
                }
            )
            .await,
            ["b1", "b2"]
        );
        assert_eq!(
            listing(store, MatchFilter::default()).await,
            ["s1", "b1", "b2", "s2", "s3"],
            "every sport, by start time then id"
        );
        assert!(listing(
            store,
            MatchFilter {
                sport: Some(Sport::IceHockey),
                ..Default::default()
            }
        )
        .await
        .is_empty());
    }

    pub async fn matches_are_filtered_by_sport_within_a_from_to_window(store: &dyn Store) {
        two_sports(store).await;
        let b = base();
        let soccer = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| MatchFilter {
            sport: Some(Sport::Soccer),
            from,
            to,
            ..Default::default()
        };
        // `from` is inclusive, `to` exclusive.
        assert_eq!(
            listing(store, soccer(Some(b), Some(b + Duration::days(2)))).await,
            ["s2"]
        );
        assert_eq!(
            listing(
                store,
                soccer(Some(b), Some(b + Duration::days(2) + Duration::seconds(1)))
            )
            .await,
            ["s2", "s3"]
        );
        assert_eq!(
            listing(store, soccer(Some(b + Duration::seconds(1)), None)).await,
            ["s3"]
        );
        assert_eq!(listing(store, soccer(None, Some(b))).await, ["s1"]);
        assert!(listing(
            store,
            soccer(Some(b + Duration::days(10)), Some(b + Duration::days(20)))
        )
        .await
        .is_empty());
    }

    pub async fn matches_are_filtered_by_competition(store: &dyn Store) {
        two_sports(store).await;
        // A match far from now: competition listings have no window.
        let far = a_match(
            "s-far",
            Sport::Soccer,
            "epl",
            "epl-d",
            "epl-a",
            base() + Duration::days(800),
        );
        add_match(store, &far).await;
        let by = |c: &str| MatchFilter {
            competition_id: Some(cid(c)),
            ..Default::default()
        };
        assert_eq!(listing(store, by("epl")).await, ["s1", "s2", "s3", "s-far"]);
        assert_eq!(listing(store, by("nba")).await, ["b1", "b2"]);
        assert!(listing(store, by("unknown")).await.is_empty());
        // With a sport the competition does not play, nothing.
        assert!(listing(
            store,
            MatchFilter {
                sport: Some(Sport::Basketball),
                ..by("epl")
            }
        )
        .await
        .is_empty());
        // With a window.
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    from: Some(base()),
                    to: Some(base() + Duration::days(3)),
                    ..by("epl")
                }
            )
            .await,
            ["s2", "s3"]
        );
    }

    pub async fn matches_are_filtered_by_team_home_and_away(store: &dyn Store) {
        two_sports(store).await;
        // epl-b is away in s1 and home in s3; epl-c is away in s3 and home in s2.
        let by = |t: &str| MatchFilter {
            team_id: Some(tid(t)),
            ..Default::default()
        };
        assert_eq!(listing(store, by("epl-b")).await, ["s1", "s3"]);
        assert_eq!(listing(store, by("epl-c")).await, ["s2", "s3"]);
        assert_eq!(listing(store, by("epl-a")).await, ["s1"]);
        assert_eq!(listing(store, by("nba-d")).await, ["b2"]);
        assert!(listing(store, by("nobody")).await.is_empty());
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    competition_id: Some(cid("epl")),
                    ..by("epl-b")
                }
            )
            .await,
            ["s1", "s3"],
            "team and competition together"
        );
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    from: Some(base()),
                    ..by("epl-b")
                }
            )
            .await,
            ["s3"]
        );
    }

    pub async fn matches_are_filtered_by_a_status_list(store: &dyn Store) {
        two_sports(store).await;
        use MatchStatus::*;
        set_status(store, &mid("s1"), &[Live, Finished]).await;
        set_status(store, &mid("s2"), &[Live]).await;
        set_status(store, &mid("b1"), &[Live, Paused]).await;
        set_status(store, &mid("b2"), &[Postponed]).await;
        let with = |statuses: Vec<MatchStatus>| MatchFilter {
            statuses,
            ..Default::default()
        };
        assert_eq!(listing(store, with(vec![Live])).await, ["s2"]);
        assert_eq!(listing(store, with(vec![Live, Paused])).await, ["b1", "s2"]);
        assert_eq!(listing(store, with(vec![Scheduled])).await, ["s3"]);
        assert_eq!(
            listing(store, with(vec![Finished, Postponed, Cancelled])).await,
            ["s1", "b2"]
        );
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    sport: Some(Sport::Basketball),
                    ..with(vec![Live, Paused])
                }
            )
            .await,
            ["b1"]
        );
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    team_id: Some(tid("epl-c")),
                    ..with(vec![Live])
                }
            )
            .await,
            ["s2"]
        );
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    competition_id: Some(cid("epl")),
                    ..with(vec![Scheduled, Finished])
                }
            )
            .await,
            ["s1", "s3"]
        );
        // The listing shows each match as it is now.
        let page = store
            .matches(&with(vec![Paused]), &PageRequest::new(10, None))
            .await
            .unwrap();
        assert_eq!(page.items[0].1.status, Paused);
        assert_eq!(page.items[0].1.version, 3);
    }

    pub async fn matches_are_filtered_by_from_and_to_alone(store: &dyn Store) {
        two_sports(store).await;
        let b = base();
        let window = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| MatchFilter {
            from,
            to,
            ..Default::default()
        };
        assert_eq!(
            listing(store, window(Some(b - Duration::days(1)), Some(b))).await,
            ["b1"]
        );
        assert_eq!(
            listing(store, window(Some(b), None)).await,
            ["b2", "s2", "s3"]
        );
        assert_eq!(listing(store, window(None, Some(b))).await, ["s1", "b1"]);
        assert_eq!(
            listing(
                store,
                window(Some(b - Duration::days(30)), Some(b + Duration::days(30)))
            )
            .await,
            ["s1", "b1", "b2", "s2", "s3"]
        );
    }

    pub async fn a_sub_second_to_bound_keeps_matches_starting_in_that_second(store: &dyn Store) {
        two_sports(store).await;
        let b = base();
        // s2 starts at `b`, which is before `b + 0.5 s`.
        let to = b + Duration::milliseconds(500);
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    sport: Some(Sport::Soccer),
                    from: Some(b - Duration::days(1)),
                    to: Some(to),
                    ..Default::default()
                }
            )
            .await,
            ["s2"]
        );
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    competition_id: Some(cid("epl")),
                    from: Some(b - Duration::days(1)),
                    to: Some(to),
                    ..Default::default()
                }
            )
            .await,
            ["s2"]
        );
    }

    /// 25 soccer matches of one competition (with shared start times, so ids break ties) and a
    /// few basketball ones in between, around now.
    async fn many_matches(store: &dyn Store) -> Vec<Match> {
        league(store, "epl", Sport::Soccer).await;
        league(store, "nba", Sport::Basketball).await;
        let b = base();
        let mut all = Vec::new();
        for i in 0..25 {
            // Ids in reverse of time order within a slot, so the id tie-break is visible.
            let start = b + Duration::hours(6 * (i / 3)) - Duration::days(2);
            let (home, away) = if i % 2 == 0 {
                ("epl-a", "epl-b")
            } else {
                ("epl-c", "epl-a")
            };
            all.push(a_match(
                &format!("s{:02}", 30 - i),
                Sport::Soccer,
                "epl",
                home,
                away,
                start,
            ));
        }
        for i in 0..6 {
            all.push(a_match(
                &format!("b{i}"),
                Sport::Basketball,
                "nba",
                "nba-a",
                "nba-b",
                b + Duration::hours(7 * i) - Duration::days(1),
            ));
        }
        for m in &all {
            add_match(store, m).await;
        }
        all
    }

    pub async fn matches_page_through_in_start_time_then_id_order(store: &dyn Store) {
        let all = many_matches(store).await;
        let soccer: Vec<Match> = all
            .iter()
            .filter(|m| m.sport == Sport::Soccer)
            .cloned()
            .collect();
        let epl_a: Vec<Match> = soccer
            .iter()
            .filter(|m| m.involves(&tid("epl-a")))
            .cloned()
            .collect();
        let cases = [
            (MatchFilter::default(), sorted_ids(all.clone())),
            (
                MatchFilter {
                    sport: Some(Sport::Soccer),
                    ..Default::default()
                },
                sorted_ids(soccer.clone()),
            ),
            (
                MatchFilter {
                    competition_id: Some(cid("epl")),
                    ..Default::default()
                },
                sorted_ids(soccer.clone()),
            ),
            (
                MatchFilter {
                    team_id: Some(tid("epl-a")),
                    ..Default::default()
                },
                sorted_ids(epl_a),
            ),
            (
                MatchFilter {
                    team_id: Some(tid("epl-c")),
                    ..Default::default()
                },
                sorted_ids(
                    soccer
                        .iter()
                        .filter(|m| m.involves(&tid("epl-c")))
                        .cloned()
                        .collect(),
                ),
            ),
        ];
        for (filter, expected) in cases {
            for first in [1, 4, 7, 100] {
                let got = ids(&all_pages(store, &filter, first).await);
                let unique: HashSet<&String> = got.iter().collect();
                assert_eq!(
                    unique.len(),
                    got.len(),
                    "no duplicates ({filter:?}, {first})"
                );
                assert_eq!(
                    got, expected,
                    "every match once, in order ({filter:?}, {first})"
                );
            }
        }
        // `first` is clamped: 0 still returns a page of one.
        let page = store
            .matches(&MatchFilter::default(), &PageRequest::new(0, None))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(page.has_next_page);
    }

    pub async fn pages_span_several_months(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        league(store, "nba", Sport::Basketball).await;
        // Far from now, on month edges, with an explicit window.
        let at = |y, mo, d, h| Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap();
        let starts = [
            at(2030, 1, 1, 0),
            at(2030, 1, 31, 23),
            at(2030, 2, 1, 0),
            at(2030, 2, 14, 12),
            at(2030, 4, 30, 23),
            at(2030, 5, 1, 0),
            at(2030, 12, 31, 23),
            at(2031, 1, 1, 0),
        ];
        let mut all = Vec::new();
        for (i, start) in starts.iter().enumerate() {
            all.push(a_match(
                &format!("s{i}"),
                Sport::Soccer,
                "epl",
                "epl-a",
                "epl-b",
                *start,
            ));
            all.push(a_match(
                &format!("b{i}"),
                Sport::Basketball,
                "nba",
                "nba-a",
                "nba-b",
                *start + Duration::minutes(30),
            ));
        }
        for m in &all {
            add_match(store, m).await;
        }
        let window = MatchFilter {
            from: Some(at(2029, 12, 1, 0)),
            to: Some(at(2031, 2, 1, 0)),
            ..Default::default()
        };
        for first in [1, 3, 5, 100] {
            assert_eq!(
                ids(&all_pages(store, &window, first).await),
                sorted_ids(all.clone())
            );
            assert_eq!(
                ids(&all_pages(
                    store,
                    &MatchFilter {
                        sport: Some(Sport::Soccer),
                        ..window.clone()
                    },
                    first
                )
                .await),
                sorted_ids(
                    all.iter()
                        .filter(|m| m.sport == Sport::Soccer)
                        .cloned()
                        .collect()
                )
            );
        }
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    sport: Some(Sport::Soccer),
                    from: Some(at(2030, 2, 1, 0)),
                    to: Some(at(2030, 5, 1, 0)),
                    ..Default::default()
                }
            )
            .await,
            ["s2", "s3", "s4"]
        );
    }

    pub async fn a_selective_filter_finds_a_match_behind_many_others(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        let b = base();
        for i in 0..80 {
            add_match(
                store,
                &a_match(
                    &format!("m{i:03}"),
                    Sport::Soccer,
                    "epl",
                    "epl-a",
                    "epl-b",
                    b + Duration::minutes(i),
                ),
            )
            .await;
        }
        set_status(store, &mid("m077"), &[MatchStatus::Live]).await;
        set_status(
            store,
            &mid("m078"),
            &[MatchStatus::Live, MatchStatus::Finished],
        )
        .await;
        set_status(
            store,
            &mid("m079"),
            &[MatchStatus::Live, MatchStatus::Paused],
        )
        .await;
        let with = |statuses: Vec<MatchStatus>| MatchFilter {
            sport: Some(Sport::Soccer),
            statuses,
            ..Default::default()
        };
        use MatchStatus::*;
        for (statuses, expected) in [
            (vec![Live], vec!["m077"]),
            (vec![Live, Paused], vec!["m077", "m079"]),
            (vec![Finished], vec!["m078"]),
            (vec![Finished, Paused], vec!["m078", "m079"]),
            (vec![Live, Finished, Paused], vec!["m077", "m078", "m079"]),
        ] {
            let filter = with(statuses);
            let page = store
                .matches(&filter, &PageRequest::new(1, None))
                .await
                .unwrap();
            assert_eq!(page.items.len(), 1, "{filter:?}");
            assert_eq!(page.items[0].1.id.as_str(), expected[0], "{filter:?}");
            assert_eq!(page.has_next_page, expected.len() > 1, "{filter:?}");
            assert_eq!(
                ids(&all_pages(store, &filter, 1).await),
                expected,
                "{filter:?}"
            );
            assert_eq!(
                ids(&all_pages(store, &filter, 2).await),
                expected,
                "{filter:?}"
            );
            assert_eq!(
                ids(&all_pages(
                    store,
                    &MatchFilter {
                        competition_id: Some(cid("epl")),
                        ..filter.clone()
                    },
                    1
                )
                .await),
                expected,
                "{filter:?} in a competition"
            );
            assert_eq!(
                ids(&all_pages(
                    store,
                    &MatchFilter {
                        team_id: Some(tid("epl-b")),
                        sport: None,
                        ..filter.clone()
                    },
                    1
                )
                .await),
                expected,
                "{filter:?} of a team"
            );
        }
        // With a window that leaves the first one out.
        assert_eq!(
            listing(
                store,
                MatchFilter {
                    from: Some(b + Duration::minutes(78)),
                    ..with(vec![Live, Paused, Finished])
                }
            )
            .await,
            ["m078", "m079"]
        );
    }

    pub async fn a_one_sided_window_far_from_now_lists_the_matches_inside_it(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        let b = base();
        for (id, start) in [
            ("past", b - Duration::days(400)),
            ("now", b),
            ("future", b + Duration::days(400)),
        ] {
            add_match(
                store,
                &a_match(id, Sport::Soccer, "epl", "epl-a", "epl-b", start),
            )
            .await;
        }
        let soccer = |from, to| MatchFilter {
            sport: Some(Sport::Soccer),
            from,
            to,
            ..Default::default()
        };
        assert_eq!(
            listing(store, soccer(Some(b + Duration::days(390)), None)).await,
            ["future"]
        );
        assert_eq!(
            listing(store, soccer(None, Some(b - Duration::days(390)))).await,
            ["past"]
        );
        assert_eq!(
            listing(
                store,
                soccer(Some(b - Duration::days(500)), Some(b + Duration::days(500)))
            )
            .await,
            ["past", "now", "future"]
        );
    }

    pub async fn a_page_ended_by_its_read_budget_resumes_at_its_end_cursor(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        let b = base();
        // Forty scheduled matches with a live one every ten: a LIVE-or-FINISHED filter reads
        // past many refused matches per match it keeps.
        let mut expected = Vec::new();
        for i in 0..40 {
            let id = format!("m{i:02}");
            add_match(
                store,
                &a_match(
                    &id,
                    Sport::Soccer,
                    "epl",
                    "epl-a",
                    "epl-b",
                    b + Duration::minutes(i),
                ),
            )
            .await;
            if i % 10 == 9 {
                set_status(
                    store,
                    &mid(&id),
                    &[MatchStatus::Live, MatchStatus::Finished],
                )
                .await;
                expected.push(id);
            }
        }
        let filter = MatchFilter {
            sport: Some(Sport::Soccer),
            statuses: vec![MatchStatus::Finished, MatchStatus::Postponed],
            ..Default::default()
        };
        let small = ReadBudget {
            items: 5,
            requests: 4,
        };
        for first in [1, 3, 100] {
            let (got, pages) = all_pages_within(store, &filter, first, small).await;
            assert_eq!(
                ids(&got),
                expected,
                "every match once, in order (first {first})"
            );
            assert!(
                pages > expected.len().div_ceil(first as usize),
                "the budget ended pages early (first {first}: {pages} pages)"
            );
        }
        // With the listing budget, the same filter fits one page.
        let (got, pages) = all_pages_within(store, &filter, 100, LISTING_READ_BUDGET).await;
        assert_eq!((ids(&got), pages), (expected, 1));
    }

    pub async fn months_without_matches_come_back_as_short_pages_that_resume(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        let at = |y, mo, d| Utc.with_ymd_and_hms(y, mo, d, 12, 0, 0).unwrap();
        for (id, start) in [("jan", at(2030, 1, 10)), ("dec", at(2030, 12, 10))] {
            add_match(
                store,
                &a_match(id, Sport::Soccer, "epl", "epl-a", "epl-b", start),
            )
            .await;
        }
        // A year of one sport is twelve month partitions on DynamoDB: with two requests a page,
        // the empty months in between take several pages, each one further.
        let filter = MatchFilter {
            sport: Some(Sport::Soccer),
            from: Some(at(2030, 1, 1)),
            to: Some(at(2031, 1, 1)),
            ..Default::default()
        };
        let tiny = ReadBudget {
            items: 1,
            requests: 2,
        };
        let (got, _) = all_pages_within(store, &filter, 10, tiny).await;
        assert_eq!(ids(&got), ["jan", "dec"]);
        let first = store
            .matches(
                &filter,
                &PageRequest {
                    first: 10,
                    after: None,
                    budget: tiny,
                },
            )
            .await
            .unwrap();
        assert!(first.has_next_page, "the budget ended the first page");
        assert!(first.end_cursor.is_some());
    }

    pub async fn windows_at_the_ends_of_the_supported_years_list_without_error(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        let earliest = earliest_instant();
        let latest = latest_instant();
        let span = Duration::days(MAX_WINDOW_DAYS);
        add_match(
            store,
            &a_match("first", Sport::Soccer, "epl", "epl-a", "epl-b", earliest),
        )
        .await;
        add_match(
            store,
            &a_match(
                "last",
                Sport::Soccer,
                "epl",
                "epl-a",
                "epl-b",
                Utc.with_ymd_and_hms(9999, 12, 30, 12, 0, 0).unwrap(),
            ),
        )
        .await;
        let window = |from, to| MatchFilter {
            from,
            to,
            ..Default::default()
        };
        for (filter, expected) in [
            (window(Some(earliest), Some(earliest + span)), vec!["first"]),
            (window(Some(latest - span), Some(latest)), vec!["last"]),
            (
                window(Some(latest - Duration::days(30)), None),
                vec!["last"],
            ),
            (
                window(None, Some(earliest + Duration::days(30))),
                vec!["first"],
            ),
            (window(Some(latest), None), vec![]),
            (window(None, Some(earliest)), vec![]),
        ] {
            assert_eq!(
                ids(&all_pages(store, &filter, 100).await),
                expected,
                "{filter:?}"
            );
        }
        // By competition: one partition, no months.
        let by_competition = MatchFilter {
            competition_id: Some(cid("epl")),
            ..window(Some(earliest), Some(latest))
        };
        assert_eq!(
            ids(&all_pages(store, &by_competition, 100).await),
            ["first", "last"]
        );
    }

    pub async fn a_tampered_or_foreign_cursor_is_refused(store: &dyn Store) {
        two_sports(store).await;
        let filter = MatchFilter::default();
        let first = store
            .matches(&filter, &PageRequest::new(2, None))
            .await
            .unwrap();
        let genuine = first.items.last().unwrap().0.clone();
        // The genuine cursor resumes.
        let second = store
            .matches(&filter, &PageRequest::new(10, Some(genuine.clone())))
            .await
            .unwrap();
        assert_eq!(second.items.len(), 3);

        // A cursor in the other store's format is foreign to this one.
        let shape: serde_json::Value = cursor::decode(&genuine).unwrap();
        let t = base().to_rfc3339();
        let foreign = if shape.is_string() {
            cursor::encode(&(t.clone(), "s2"))
        } else {
            cursor::encode(&format!("{}#s2", base().format("%Y-%m-%dT%H:%M:%SZ")))
        };
        let mut truncated = genuine.clone();
        truncated.truncate(genuine.len() / 2);
        for bad in [
            "not a cursor!".to_string(),
            format!("{genuine}*"),
            truncated,
            foreign,
            cursor::encode(&42),
            cursor::encode(&serde_json::json!({"after": "s1"})),
            cursor::encode(&"no-separator"),
            cursor::encode(&"not-a-time#s1"),
            cursor::encode(&("not-a-time", "s1")),
            cursor::encode(&(t.clone(), "bad id with spaces")),
            cursor::encode(&format!("{}#bad id", base().format("%Y-%m-%dT%H:%M:%SZ"))),
            String::new(),
        ] {
            let result = store
                .matches(&filter, &PageRequest::new(10, Some(bad.clone())))
                .await;
            assert!(
                matches!(result, Err(StoreError::InvalidCursor)),
                "cursor {bad:?}: {result:?}"
            );
        }
    }

    pub async fn live_matches_are_the_live_and_paused_ones_of_every_shard(store: &dyn Store) {
        league(store, "epl", Sport::Soccer).await;
        league(store, "nba", Sport::Basketball).await;
        let b = base();
        let mut live = Vec::new();
        let mut shards = BTreeSet::new();
        for i in 0..40 {
            let (sport, c) = if i % 4 == 0 {
                (Sport::Basketball, "nba")
            } else {
                (Sport::Soccer, "epl")
            };
            let m = a_match(
                &format!("m{i:02}"),
                sport,
                c,
                &format!("{c}-a"),
                &format!("{c}-b"),
                b + Duration::minutes(40 - i),
            );
            add_match(store, &m).await;
            use MatchStatus::*;
            let path: &[MatchStatus] = match i % 5 {
                0 => &[],
                1 => &[Live],
                2 => &[Live, Paused],
                3 => &[Live, Finished],
                _ => &[Live, Paused, Live],
            };
            set_status(store, &m.id, path).await;
            if matches!(i % 5, 1 | 2 | 4) {
                shards.insert(live_shard(&m.id));
                live.push(store.match_by_id(&m.id).await.unwrap().unwrap());
            }
        }
        assert_eq!(
            shards.len() as u32,
            LIVE_SHARDS,
            "the live matches use every shard"
        );
        let listed = store.live_matches(None).await.unwrap();
        assert_eq!(ids(&listed), sorted_ids(live.clone()));
        assert!(listed.iter().all(|m| m.status.is_in_play()));
        assert_eq!(
            listed.iter().find(|m| m.id == mid("m02")).unwrap().version,
            3,
            "listed as stored now"
        );
        assert_eq!(
            ids(&store.live_matches(Some(Sport::Basketball)).await.unwrap()),
            sorted_ids(
                live.iter()
                    .filter(|m| m.sport == Sport::Basketball)
                    .cloned()
                    .collect()
            )
        );
        assert_eq!(
            ids(&store.live_matches(Some(Sport::Soccer)).await.unwrap()),
            sorted_ids(
                live.iter()
                    .filter(|m| m.sport == Sport::Soccer)
                    .cloned()
                    .collect()
            )
        );
        assert!(store
            .live_matches(Some(Sport::Baseball))
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn events_are_listed_ascending_after_a_seq_with_a_limit(store: &dyn Store) {
        league(store, "nba", Sport::Basketball).await;
        let m = a_match("g1", Sport::Basketball, "nba", "nba-a", "nba-b", base());
        add_match(store, &m).await;
        assert!(store.events(&m.id, 0, 100).await.unwrap().is_empty());
        set_status(store, &m.id, &[MatchStatus::Live]).await;
        for i in 0..24 {
            let side = if i % 3 == 0 { Side::Away } else { Side::Home };
            run(store, &m.id, scoring(EventType::FieldGoal, side)).await;
        }
        let seqs = |events: Vec<scoreline_core::MatchEvent>| -> Vec<u32> {
            events.iter().map(|e| e.seq).collect()
        };
        let all = store.events(&m.id, 0, 1000).await.unwrap();
        assert_eq!(seqs(all.clone()), (1..=25).collect::<Vec<_>>());
        assert_eq!(all[0].event_type, EventType::StatusChange);
        assert_eq!(all[1].event_type, EventType::FieldGoal);
        assert_eq!(all[1].points, 2);
        assert!(all.iter().all(|e| e.match_id == m.id));
        assert_eq!(seqs(store.events(&m.id, 5, 3).await.unwrap()), [6, 7, 8]);
        assert_eq!(seqs(store.events(&m.id, 23, 10).await.unwrap()), [24, 25]);
        assert!(store.events(&m.id, 25, 10).await.unwrap().is_empty());
        assert!(store.events(&m.id, 0, 0).await.unwrap().is_empty());
        assert!(store.events(&m.id, u32::MAX, 10).await.unwrap().is_empty());
        assert!(store.events(&mid("nope"), 0, 10).await.unwrap().is_empty());

        // Paging with the last seq seen collects every event once.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = store.events(&m.id, after, 4).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().unwrap().seq;
            paged.extend(page);
        }
        assert_eq!(paged, all);
    }

    // ---- commits ----

    async fn live_soccer_match(store: &dyn Store) -> Match {
        league(store, "epl", Sport::Soccer).await;
        let m = a_match("m1", Sport::Soccer, "epl", "epl-a", "epl-b", base());
        add_match(store, &m).await;
        set_status(store, &m.id, &[MatchStatus::Live]).await;
        store.match_by_id(&m.id).await.unwrap().unwrap()
    }

    fn write_from(
        current: &Match,
        command: &MatchCommand,
        key_: Option<(&str, DateTime<Utc>)>,
    ) -> MatchWrite {
        let applied = command.apply(current, Utc::now()).unwrap();
        MatchWrite {
            next: applied.next,
            event: applied.event,
            idempotency: key_.map(|(k, expires_at)| IdempotencyRecord {
                key: key(k),
                expires_at,
            }),
        }
    }

    pub async fn a_stale_version_is_refused(store: &dyn Store) {
        let current = live_soccer_match(store).await;
        assert_eq!(current.version, 2);
        let goal = scoring(EventType::Goal, Side::Home);
        let first = write_from(&current, &goal, None);
        let racing = write_from(&current, &scoring(EventType::Goal, Side::Away), None);
        store.commit(&first).await.unwrap();
        assert!(matches!(
            store.commit(&racing).await,
            Err(CommitError::VersionMismatch)
        ));
        // A write from the future is refused too.
        let mut ahead = first.clone();
        ahead.next.version += 5;
        ahead.event = None;
        assert!(matches!(
            store.commit(&ahead).await,
            Err(CommitError::VersionMismatch)
        ));
        let stored = store.match_by_id(&current.id).await.unwrap().unwrap();
        assert_eq!(stored, first.next);
        assert_eq!(stored.score, Score { home: 1, away: 0 });
        let events = store.events(&current.id, 0, 100).await.unwrap();
        assert_eq!(events.len(), 2, "the refused write appended nothing");
        assert_eq!(events[1], first.event.unwrap());
    }

    pub async fn a_reused_idempotency_key_is_refused_and_its_first_result_kept(store: &dyn Store) {
        let current = live_soccer_match(store).await;
        let expires = Utc::now() + Duration::hours(24);
        let first = write_from(
            &current,
            &scoring(EventType::Goal, Side::Home),
            Some(("k1", expires)),
        );
        store.commit(&first).await.unwrap();
        assert_eq!(
            store
                .idempotent_result(&current.id, &key("k1"))
                .await
                .unwrap(),
            Some(first.next.clone())
        );
        assert_eq!(
            store
                .idempotent_result(&current.id, &key("k2"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .idempotent_result(&mid("other"), &key("k1"))
                .await
                .unwrap(),
            None,
            "keys are per match"
        );

        let now = store.match_by_id(&current.id).await.unwrap().unwrap();
        let reuse = write_from(
            &now,
            &scoring(EventType::Goal, Side::Away),
            Some(("k1", expires)),
        );
        assert!(matches!(
            store.commit(&reuse).await,
            Err(CommitError::DuplicateMutation)
        ));
        assert_eq!(
            store.match_by_id(&current.id).await.unwrap().unwrap(),
            first.next,
            "the refused write changed nothing"
        );
        assert_eq!(store.events(&current.id, 0, 100).await.unwrap().len(), 2);
        assert_eq!(
            store
                .idempotent_result(&current.id, &key("k1"))
                .await
                .unwrap(),
            Some(first.next.clone()),
            "the first result is kept"
        );

        // A stale write reusing the key: refused either way, nothing changes.
        let stale = write_from(
            &current,
            &scoring(EventType::Goal, Side::Away),
            Some(("k1", expires)),
        );
        assert!(store.commit(&stale).await.is_err());

        // Another key commits.
        let other = write_from(
            &now,
            &scoring(EventType::Goal, Side::Away),
            Some(("k2", expires)),
        );
        store.commit(&other).await.unwrap();
        assert_eq!(
            store
                .idempotent_result(&current.id, &key("k2"))
                .await
                .unwrap(),
            Some(other.next)
        );
    }

    pub async fn an_expired_idempotency_record_is_ignored(store: &dyn Store) {
        let current = live_soccer_match(store).await;
        let expired = Utc::now() - Duration::seconds(5);
        let first = write_from(
            &current,
            &scoring(EventType::Goal, Side::Home),
            Some(("old", expired)),
        );
        store.commit(&first).await.unwrap();
        assert_eq!(
            store
                .idempotent_result(&current.id, &key("old"))
                .await
                .unwrap(),
            None
        );
        let again = write_from(
            &first.next,
            &scoring(EventType::Goal, Side::Home),
            Some(("old", Utc::now() + Duration::hours(1))),
        );
        store
            .commit(&again)
            .await
            .expect("an expired key may be used again");
        assert_eq!(
            store
                .idempotent_result(&current.id, &key("old"))
                .await
                .unwrap(),
            Some(again.next)
        );
    }

    // ---- the service over the store ----

    pub async fn apply_command_refuses_a_stale_expected_version(store: &dyn Store) {
        let current = live_soccer_match(store).await;
        let goal = scoring(EventType::Goal, Side::Home);
        let options = |v| WriteOptions {
            expected_version: Some(v),
            client_mutation_id: None,
            retry_for: None,
        };
        let next = service::apply_command(store, &current.id, &goal, &options(2), Utc::now)
            .await
            .unwrap();
        assert_eq!(next.version, 3);
        let err = service::apply_command(store, &current.id, &goal, &options(2), Utc::now)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::VersionConflict { current: 3 }),
            "{err:?}"
        );
        let err = service::apply_command(store, &current.id, &goal, &options(9), Utc::now)
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::VersionConflict { current: 3 }));
        assert_eq!(
            store.match_by_id(&current.id).await.unwrap().unwrap().score,
            Score { home: 1, away: 0 }
        );
        let err = service::apply_command(store, &mid("nope"), &goal, &options(1), Utc::now)
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::NotFound { .. }));
    }

    pub async fn apply_command_replays_a_mutation_with_its_first_result(store: &dyn Store) {
        let current = live_soccer_match(store).await;
        let goal = scoring(EventType::Goal, Side::Home);
        let keyed = WriteOptions {
            expected_version: Some(2),
            client_mutation_id: Some(key("offline-1")),
            retry_for: None,
        };
        let first = service::apply_command(store, &current.id, &goal, &keyed, Utc::now)
            .await
            .unwrap();
        assert_eq!(first.version, 3);
        // Someone else changes the match.
        run(store, &current.id, scoring(EventType::Goal, Side::Away)).await;

        // The replay (its expectedVersion stale by now) returns the first result.
        let replay = service::apply_command(store, &current.id, &goal, &keyed, Utc::now)
            .await
            .unwrap();
        assert_eq!(replay, first);
        // Without expectedVersion too.
        let replay = service::apply_command(
            store,
            &current.id,
            &goal,
            &WriteOptions {
                expected_version: None,
                client_mutation_id: Some(key("offline-1")),
                retry_for: None,
            },
            Utc::now,
        )
        .await
        .unwrap();
        assert_eq!(replay, first);
        let stored = store.match_by_id(&current.id).await.unwrap().unwrap();
        assert_eq!(stored.version, 4, "replays change nothing");
        assert_eq!(stored.score, Score { home: 1, away: 1 });
        assert_eq!(store.events(&current.id, 0, 100).await.unwrap().len(), 3);

        // Two concurrent deliveries of one mutation apply it once.
        let options = WriteOptions {
            expected_version: None,
            client_mutation_id: Some(key("twice")),
            retry_for: None,
        };
        let (a, b) = tokio::join!(
            service::apply_command(store, &current.id, &goal, &options, Utc::now),
            service::apply_command(store, &current.id, &goal, &options, Utc::now),
        );
        assert_eq!(a.unwrap(), b.unwrap());
        let stored = store.match_by_id(&current.id).await.unwrap().unwrap();
        assert_eq!(stored.version, 5);
        assert_eq!(stored.score, Score { home: 2, away: 1 });
    }

    pub async fn apply_command_numbers_events_contiguously(store: &dyn Store) {
        let current = live_soccer_match(store).await;
        let id = current.id.clone();
        run(store, &id, scoring(EventType::Goal, Side::Home)).await;
        run(
            store,
            &id,
            MatchCommand::UpdateClock(ClockUpdate {
                period: Some(1),
                elapsed_seconds: Some(1800),
                running: Some(true),
            }),
        )
        .await;
        run(store, &id, scoring(EventType::YellowCard, Side::Away)).await;
        run(store, &id, MatchCommand::SetStatus(MatchStatus::Paused)).await;
        run(store, &id, MatchCommand::SetStatus(MatchStatus::Live)).await;
        run(store, &id, MatchCommand::UpdateScore { home: 3, away: 2 }).await;
        run(store, &id, scoring(EventType::Goal, Side::Away)).await;
        let stored = store.match_by_id(&id).await.unwrap().unwrap();
        assert_eq!(stored.version, 9, "one version per change");
        assert_eq!(stored.score, Score { home: 3, away: 3 });
        let events = store.events(&id, 0, 100).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>(),
            "the clock update appends no event"
        );
        assert_eq!(stored.last_seq, 7);
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                EventType::StatusChange,
                EventType::Goal,
                EventType::YellowCard,
                EventType::StatusChange,
                EventType::StatusChange,
                EventType::ScoreCorrection,
                EventType::Goal,
            ]
        );
    }

    pub async fn concurrent_commands_lose_nothing(store: &dyn Store) {
        // The port is `&dyn Store`; concurrency within one task through `join_all`.
        let current = live_soccer_match(store).await;
        let n = 30;
        let commands = (0..n).map(|i| {
            let side = if i % 2 == 0 { Side::Home } else { Side::Away };
            let id = current.id.clone();
            async move {
                service::apply_command(
                    store,
                    &id,
                    &scoring(EventType::Goal, side),
                    &WriteOptions::default(),
                    Utc::now,
                )
                .await
            }
        });
        for result in futures::future::join_all(commands).await {
            result.unwrap();
        }
        let stored = store.match_by_id(&current.id).await.unwrap().unwrap();
        assert_eq!(stored.version, 2 + n);
        assert_eq!(stored.score, Score { home: 15, away: 15 });
        let events = store.events(&current.id, 0, 1000).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=(n as u32 + 1)).collect::<Vec<_>>()
        );
    }

    pub async fn a_ready_store_passes_its_check(store: &dyn Store) {
        store.check().await.unwrap();
    }
}
