//! Properties of the codecs every process relies on, over generated values: the DynamoDB item
//! codec, stream records, the change wire format, and publish signatures. Case counts are
//! modest so the main test pass stays fast; `fuzz/` explores the same code on arbitrary bytes.

use chrono::{DateTime, Utc};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use scoreline_core::change::{decode_changes, encode_changes, ChangeBatch};
use scoreline_core::ids::{CompetitionId, MatchId, TeamId};
use scoreline_core::item::{self, Record};
use scoreline_core::model::{
    AmericanFootballDetails, BaseballDetails, Bases, BasketballDetails, Clock, Details,
    IceHockeyDetails, InningHalf, PeriodScore, PowerPlay, Score, SoccerDetails,
};
use scoreline_core::publish::{sign, verify, SignatureError, SIGNATURE_MAX_AGE_SECS};
use scoreline_core::stream::{build_record, decode_record};
use scoreline_core::text::{Description, PlayerName, Venue};
use scoreline_core::{Change, EventType, Match, MatchEvent, MatchStatus, Side, Sport};

const CASES: u32 = 64;

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-]{1,64}"
}

/// Any instant of years 0001 to 9999 (what RFC 3339 inputs can name), to the nanosecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).expect("in range"))
}

fn text<T>(max: usize, parse: fn(String) -> Option<T>) -> impl Strategy<Value = T>
where
    T: std::fmt::Debug,
{
    proptest::string::string_regex(&format!("[\\PC]{{1,{max}}}"))
        .expect("a valid pattern")
        .prop_filter_map("valid text", parse)
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Home), Just(Side::Away)]
}

fn details() -> impl Strategy<Value = Details> {
    let n = || any::<u32>();
    prop_oneof![
        (n(), n(), n(), n(), option::of(n())).prop_map(|(a, b, c, d, e)| Details::Soccer(
            SoccerDetails {
                home_yellow_cards: a,
                away_yellow_cards: b,
                home_red_cards: c,
                away_red_cards: d,
                added_time_minutes: e,
            }
        )),
        (n(), any::<bool>(), n(), n(), n(), any::<[bool; 3]>()).prop_map(
            |(inning, top, outs, balls, strikes, [first, second, third])| {
                Details::Baseball(BaseballDetails {
                    inning,
                    half: if top {
                        InningHalf::Top
                    } else {
                        InningHalf::Bottom
                    },
                    outs,
                    balls,
                    strikes,
                    bases: Bases {
                        first,
                        second,
                        third,
                    },
                })
            }
        ),
        (n(), n(), n(), n()).prop_map(|(a, b, c, d)| Details::Basketball(BasketballDetails {
            home_team_fouls: a,
            away_team_fouls: b,
            home_timeouts_left: c,
            away_timeouts_left: d,
        })),
        (n(), n(), n(), n(), option::of((side(), n()))).prop_map(|(a, b, c, d, pp)| {
            Details::IceHockey(IceHockeyDetails {
                home_shots_on_goal: a,
                away_shots_on_goal: b,
                home_penalty_minutes: c,
                away_penalty_minutes: d,
                power_play: pp.map(|(side, seconds_left)| PowerPlay { side, seconds_left }),
            })
        }),
        (
            option::of(side()),
            option::of(n()),
            option::of(n()),
            option::of(n()),
            n(),
            n()
        )
            .prop_map(|(possession, down, yards_to_go, ball_on, h, a)| {
                Details::AmericanFootball(AmericanFootballDetails {
                    possession,
                    down,
                    yards_to_go,
                    ball_on,
                    home_timeouts_left: h,
                    away_timeouts_left: a,
                })
            }),
    ]
}

fn period() -> impl Strategy<Value = PeriodScore> {
    (any::<u32>(), ".{0,12}", 0u32..=999, 0u32..=999).prop_map(|(period, label, home, away)| {
        PeriodScore {
            period,
            label,
            home,
            away,
        }
    })
}

fn a_match() -> impl Strategy<Value = Match> {
    let ids = (id(), id(), id(), id());
    let scalars = (
        proptest::sample::select(Sport::ALL.to_vec()),
        proptest::sample::select(MatchStatus::ALL.to_vec()),
        (0u32..=999, 0u32..=999),
        any::<u32>(),
        any::<u64>(),
    );
    let parts = (
        option::of(text(120, |s| Venue::parse(s).ok())),
        vec(period(), 0..4),
        option::of((any::<u32>(), any::<u32>(), any::<bool>())),
        option::of(details()),
        (instant(), instant(), instant()),
    );
    (ids, scalars, parts).prop_map(
        |(
            (id, competition, home, away),
            (sport, status, (h, a), last_seq, version),
            (venue, periods, clock, details, (start_time, created_at, updated_at)),
        )| Match {
            id: MatchId::parse(id).unwrap(),
            sport,
            competition_id: CompetitionId::parse(competition).unwrap(),
            home_team_id: TeamId::parse(home).unwrap(),
            away_team_id: TeamId::parse(away).unwrap(),
            start_time,
            venue,
            status,
            score: Score { home: h, away: a },
            periods,
            clock: clock.map(|(period, elapsed_seconds, running)| Clock {
                period,
                elapsed_seconds,
                running,
            }),
            details,
            last_seq,
            version,
            created_at,
            updated_at,
        },
    )
}

fn an_event() -> impl Strategy<Value = MatchEvent> {
    (
        (
            id(),
            any::<u32>(),
            proptest::sample::select(EventType::ALL.to_vec()),
            option::of(side()),
        ),
        (
            option::of(text(80, |s| PlayerName::parse(s).ok())),
            any::<u32>(),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
        ),
        option::of(text(500, |s| Description::parse(s).ok())),
        instant(),
    )
        .prop_map(
            |(
                (match_id, seq, event_type, side),
                (player, points, period, clock_seconds),
                description,
                created_at,
            )| MatchEvent {
                match_id: MatchId::parse(match_id).unwrap(),
                seq,
                event_type,
                side,
                player,
                points,
                period,
                clock_seconds,
                description,
                created_at,
            },
        )
}

fn a_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        a_match().prop_map(|m| Change::Match(Box::new(m))),
        an_event().prop_map(Change::Event),
    ]
}

/// An item as DynamoDB's JSON carries it (stream records, the Lambda's event), and back.
fn through_json(item: &serde_dynamo::Item) -> serde_dynamo::Item {
    serde_json::from_str(&serde_json::to_string(item).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn a_match_round_trips_through_its_item_and_the_items_json(m in a_match()) {
        let item = item::match_item(&m);
        prop_assert_eq!(item::decode(&item).unwrap(), Record::Match(Box::new(m.clone())));
        prop_assert_eq!(
            item::decode(&through_json(&item)).unwrap(),
            Record::Match(Box::new(m))
        );
        prop_assert!(item::item_size(&item) > 0);
    }

    #[test]
    fn an_event_round_trips_through_its_item(e in an_event()) {
        let item = item::event_item(&e);
        prop_assert_eq!(item::decode(&item).unwrap(), Record::Event(e.clone()));
        prop_assert_eq!(item::decode(&through_json(&item)).unwrap(), Record::Event(e));
    }

    #[test]
    fn a_stream_record_of_a_write_decodes_to_the_written_state(
        old in a_match(),
        new in a_match(),
        e in an_event(),
        sequence in any::<u64>(),
        at in (0i64..4_000_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
    ) {
        let modified = build_record("t", sequence, at, Some(item::match_item(&old)),
            Some(item::match_item(&new)));
        prop_assert_eq!(decode_record(&modified).unwrap(), Some(Change::Match(Box::new(new))));
        let inserted = build_record("t", sequence, at, None, Some(item::event_item(&e)));
        // As the Lambda receives it: the DynamoDB Streams JSON.
        let json = serde_json::to_string(&inserted).unwrap();
        let back = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(decode_record(&back).unwrap(), Some(Change::Event(e)));
        let removed = build_record("t", sequence, at, Some(item::match_item(&old)), None);
        prop_assert_eq!(decode_record(&removed).unwrap(), None);
    }

    #[test]
    fn encoded_changes_decode_to_the_same_batch(changes in vec(a_change(), 0..4)) {
        let bytes = encode_changes(&changes);
        prop_assert_eq!(decode_changes(&bytes).unwrap(), ChangeBatch::new(changes));
    }

    #[test]
    fn a_signature_verifies_within_the_window_and_nowhere_else(
        secret in ".{1,40}",
        body in vec(any::<u8>(), 0..256),
        ts in any::<i64>(),
        offset in -SIGNATURE_MAX_AGE_SECS..=SIGNATURE_MAX_AGE_SECS,
        now in any::<i64>(),
    ) {
        let signature = sign(&secret, ts, &body);
        let timestamp = ts.to_string();
        let check = |now| verify(&secret, Some(&timestamp), Some(&signature), &body, now);
        prop_assert_eq!(check(ts.saturating_add(offset)), Ok(()));
        let fresh = now.abs_diff(ts) <= SIGNATURE_MAX_AGE_SECS.unsigned_abs();
        prop_assert_eq!(check(now).is_ok(), fresh);
        if !fresh {
            prop_assert_eq!(check(now), Err(SignatureError::Stale));
        }
    }

    #[test]
    fn any_single_byte_changed_in_the_body_timestamp_or_signature_fails(
        secret in ".{1,40}",
        body in vec(any::<u8>(), 1..256),
        ts in 0i64..4_000_000_000,
        which in 0usize..3,
        position in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut signature = sign(&secret, ts, &body).into_bytes();
        let mut timestamp = ts.to_string().into_bytes();
        let mut body = body;
        let target = match which {
            0 => &mut body,
            1 => &mut timestamp,
            _ => &mut signature,
        };
        let i = position.index(target.len());
        let original = target[i];
        target[i] ^= flip;
        // Hex is read in either case: a letter's case names the same tag.
        prop_assume!(which != 2 || !target[i].eq_ignore_ascii_case(&original));
        let result = verify(
            &secret,
            std::str::from_utf8(&timestamp).ok(),
            std::str::from_utf8(&signature).ok(),
            &body,
            ts,
        );
        prop_assert!(result.is_err(), "{:?}", result);
    }
}
