//! The DynamoDB item layout, shared by the DynamoDB store and the memory store (which emits
//! stream records of exactly these items). `docs/data-model.md` documents it.
//!
//! One table, keys `pk`/`sk`, a type attribute `t`, and overloaded secondary indexes:
//!
//! | item | pk | sk | indexes |
//! |---|---|---|---|
//! | match | `M#<id>` | `M` | gsi1 sport+month, gsi2 competition, gsi3 home team, gsi4 away team, gsi5 live shard |
//! | event | `M#<id>` | `E#<seq, 10 digits>` | |
//! | idempotency record | `M#<id>` | `I#<clientMutationId>` | (`ttl`) |
//! | competition | `C#<id>` | `C` | gsi1 `COMPETITIONS` / `<sport>#<id>` |
//! | team | `T#<id>` | `T` | gsi1 `TEAMS` / `<sport>#<id>` |
//! | membership | `C#<competitionId>` | `T#<teamId>` | |

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_dynamo::{AttributeValue, Item};

use crate::ids::{ClientMutationId, CompetitionId, MatchId, TeamId};
use crate::model::{Competition, Match, MatchEvent, Team};
use crate::sport::Sport;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TYPE: &str = "t";
pub const TTL: &str = "ttl";
pub const VERSION: &str = "version";

/// Shards of the live-matches index: live matches spread over this many partition keys so a
/// busy match day never funnels into one key; readers query them all in parallel.
pub const LIVE_SHARDS: u32 = 8;

/// The secondary indexes, by name, with their key attributes.
pub const INDEXES: [(&str, &str, &str); 5] = [
    ("gsi1", "gsi1pk", "gsi1sk"),
    ("gsi2", "gsi2pk", "gsi2sk"),
    ("gsi3", "gsi3pk", "gsi3sk"),
    ("gsi4", "gsi4pk", "gsi4sk"),
    ("gsi5", "gsi5pk", "gsi5sk"),
];

/// What an item is, from its `t` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemType {
    Match,
    Event,
    Idempotency,
    Competition,
    Team,
    Membership,
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Match => "MATCH",
            ItemType::Event => "EVENT",
            ItemType::Idempotency => "IDEM",
            ItemType::Competition => "COMPETITION",
            ItemType::Team => "TEAM",
            ItemType::Membership => "MEMBER",
        }
    }

    pub fn parse(raw: &str) -> Option<ItemType> {
        [
            ItemType::Match,
            ItemType::Event,
            ItemType::Idempotency,
            ItemType::Competition,
            ItemType::Team,
            ItemType::Membership,
        ]
        .into_iter()
        .find(|t| t.as_str() == raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("the item has no type attribute `t`")]
    MissingType,
    #[error("unknown item type {0:?}")]
    UnknownType(String),
    #[error("the item is not a {expected}: {source}")]
    Corrupt {
        expected: &'static str,
        source: serde_dynamo::Error,
    },
}

pub fn match_pk(id: &MatchId) -> String {
    format!("M#{id}")
}
pub fn event_sk(seq: u32) -> String {
    format!("E#{seq:010}")
}
pub fn idempotency_sk(key: &ClientMutationId) -> String {
    format!("I#{key}")
}
pub fn competition_pk(id: &CompetitionId) -> String {
    format!("C#{id}")
}
pub fn team_pk(id: &TeamId) -> String {
    format!("T#{id}")
}

/// Start times in sort keys: fixed width, so string order is time order.
pub fn time_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The sport+month partition of the by-sport index: a month of one sport per key keeps
/// partitions bounded while a date-range query touches only a few keys.
pub fn sport_month_key(sport: Sport, t: DateTime<Utc>) -> String {
    format!("S#{}#{:04}-{:02}", sport.as_str(), t.year(), t.month())
}

/// The live index shard of a match: a stable hash of its id (FNV-1a), so every write of one
/// match lands on the same shard.
pub fn live_shard(id: &MatchId) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % LIVE_SHARDS
}

pub fn live_shard_key(shard: u32) -> String {
    format!("L#{shard}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn to_item<T: Serialize>(value: &T) -> Item {
    serde_dynamo::to_item(value).expect("domain records serialize to items")
}

fn with_keys(mut item: Item, t: ItemType, pk: String, sk: String) -> Item {
    let map: &mut HashMap<String, AttributeValue> = item.as_mut();
    map.insert(PK.into(), s(pk));
    map.insert(SK.into(), s(sk));
    map.insert(TYPE.into(), s(t.as_str()));
    item
}

fn insert(item: &mut Item, key: &str, value: String) {
    let map: &mut HashMap<String, AttributeValue> = item.as_mut();
    map.insert(key.into(), s(value));
}

/// The primary key of an item (`pk`, `sk`), as stream records carry it in `Keys`.
pub fn keys_of(item: &Item) -> Item {
    let map: &HashMap<String, AttributeValue> = item.as_ref();
    let keys: HashMap<String, AttributeValue> = map
        .iter()
        .filter(|(k, _)| k.as_str() == PK || k.as_str() == SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Item::from(keys)
}

pub fn match_item(m: &Match) -> Item {
    let mut item = with_keys(to_item(m), ItemType::Match, match_pk(&m.id), "M".into());
    let sort = format!("{}#{}", time_key(m.start_time), m.id);
    insert(&mut item, "gsi1pk", sport_month_key(m.sport, m.start_time));
    insert(&mut item, "gsi1sk", sort.clone());
    insert(&mut item, "gsi2pk", competition_pk(&m.competition_id));
    insert(&mut item, "gsi2sk", sort.clone());
    insert(&mut item, "gsi3pk", team_pk(&m.home_team_id));
    insert(&mut item, "gsi3sk", sort.clone());
    insert(&mut item, "gsi4pk", team_pk(&m.away_team_id));
    insert(&mut item, "gsi4sk", sort.clone());
    // Sparse: only matches in play are in the live index.
    if m.status.is_in_play() {
        insert(&mut item, "gsi5pk", live_shard_key(live_shard(&m.id)));
        insert(&mut item, "gsi5sk", format!("{}#{sort}", m.sport.as_str()));
    }
    item
}

pub fn event_item(e: &MatchEvent) -> Item {
    with_keys(
        to_item(e),
        ItemType::Event,
        match_pk(&e.match_id),
        event_sk(e.seq),
    )
}

#[derive(Serialize, Deserialize)]
struct IdempotencyBody {
    #[serde(rename = "matchId")]
    match_id: MatchId,
    key: ClientMutationId,
    result: Match,
    ttl: i64,
}

/// The record of a mutation's first result, expiring (DynamoDB TTL on `ttl`) at `expires_at`.
pub fn idempotency_item(key: &ClientMutationId, result: &Match, expires_at: DateTime<Utc>) -> Item {
    let body = IdempotencyBody {
        match_id: result.id.clone(),
        key: key.clone(),
        result: result.clone(),
        ttl: expires_at.timestamp(),
    };
    with_keys(
        to_item(&body),
        ItemType::Idempotency,
        match_pk(&result.id),
        idempotency_sk(key),
    )
}

pub fn competition_item(c: &Competition) -> Item {
    let mut item = with_keys(
        to_item(c),
        ItemType::Competition,
        competition_pk(&c.id),
        "C".into(),
    );
    insert(&mut item, "gsi1pk", "COMPETITIONS".into());
    insert(
        &mut item,
        "gsi1sk",
        format!("{}#{}", c.sport.as_str(), c.id),
    );
    item
}

pub fn team_item(t: &Team) -> Item {
    let mut item = with_keys(to_item(t), ItemType::Team, team_pk(&t.id), "T".into());
    insert(&mut item, "gsi1pk", "TEAMS".into());
    insert(
        &mut item,
        "gsi1sk",
        format!("{}#{}", t.sport.as_str(), t.id),
    );
    item
}

#[derive(Serialize, Deserialize)]
struct MembershipBody {
    #[serde(rename = "competitionId")]
    competition_id: CompetitionId,
    #[serde(rename = "teamId")]
    team_id: TeamId,
}

/// A team's registration in a competition (`teams(competitionId: …)`).
pub fn membership_item(competition: &CompetitionId, team: &TeamId) -> Item {
    let body = MembershipBody {
        competition_id: competition.clone(),
        team_id: team.clone(),
    };
    with_keys(
        to_item(&body),
        ItemType::Membership,
        competition_pk(competition),
        team_pk(team),
    )
}

pub fn item_type(item: &Item) -> Result<ItemType, ItemError> {
    let map: &HashMap<String, AttributeValue> = item.as_ref();
    match map.get(TYPE) {
        Some(AttributeValue::S(t)) => {
            ItemType::parse(t).ok_or_else(|| ItemError::UnknownType(t.clone()))
        }
        _ => Err(ItemError::MissingType),
    }
}

fn from_item<T: DeserializeOwned>(item: &Item, expected: &'static str) -> Result<T, ItemError> {
    serde_dynamo::from_item(item.clone()).map_err(|source| ItemError::Corrupt { expected, source })
}

/// A decoded item of any type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Match(Box<Match>),
    Event(MatchEvent),
    Idempotency {
        key: ClientMutationId,
        result: Box<Match>,
    },
    Competition(Competition),
    Team(Team),
    Membership {
        competition_id: CompetitionId,
        team_id: TeamId,
    },
}

pub fn decode(item: &Item) -> Result<Record, ItemError> {
    Ok(match item_type(item)? {
        ItemType::Match => Record::Match(Box::new(from_item(item, "match")?)),
        ItemType::Event => Record::Event(from_item(item, "match event")?),
        ItemType::Idempotency => {
            let body: IdempotencyBody = from_item(item, "idempotency record")?;
            Record::Idempotency {
                key: body.key,
                result: Box::new(body.result),
            }
        }
        ItemType::Competition => Record::Competition(from_item(item, "competition")?),
        ItemType::Team => Record::Team(from_item(item, "team")?),
        ItemType::Membership => {
            let body: MembershipBody = from_item(item, "membership")?;
            Record::Membership {
                competition_id: body.competition_id,
                team_id: body.team_id,
            }
        }
    })
}

/// The size DynamoDB counts for an item (the 400 KB item limit, capacity units, stream record
/// size), by AWS's rules: each attribute's name in UTF-8 bytes plus its value's size. Strings
/// and binaries count their bytes; a number about one byte per two significant digits plus one;
/// a boolean or null one byte; a map or list 3 bytes plus 1 per element plus its contents (a
/// map's contents include its attribute names); a set the sum of its elements.
pub fn item_size(item: &Item) -> usize {
    let map: &HashMap<String, AttributeValue> = item.as_ref();
    map.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => {
            3 + m.len()
                + m.iter()
                    .map(|(name, v)| name.len() + value_size(v))
                    .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.len() + l.iter().map(value_size).sum::<usize>(),
        AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
        AttributeValue::Ns(ns) => ns.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(bs) => bs.iter().map(Vec::len).sum(),
    }
}

/// A number's size: leading and trailing zeros are not stored; two digits share a byte, and
/// one byte more holds the exponent and sign.
fn number_size(n: &str) -> usize {
    let mantissa = n.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Details, MatchStatus, Score};
    use crate::sport::EventType;
    use crate::text::{Description, Venue};

    pub(crate) fn sample_match() -> Match {
        let t = DateTime::parse_from_rfc3339("2026-11-22T15:00:00Z")
            .unwrap()
            .to_utc();
        Match {
            id: MatchId::parse("m-1").unwrap(),
            sport: Sport::Soccer,
            competition_id: CompetitionId::parse("epl").unwrap(),
            home_team_id: TeamId::parse("ars").unwrap(),
            away_team_id: TeamId::parse("che").unwrap(),
            start_time: t,
            venue: Some(Venue::parse("Emirates Stadium").unwrap()),
            status: MatchStatus::Live,
            score: Score { home: 2, away: 1 },
            periods: vec![],
            clock: None,
            details: Details::initial(Sport::Soccer),
            last_seq: 4,
            version: 7,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn a_match_round_trips_through_its_item_with_keys_and_indexes() {
        let m = sample_match();
        let item = match_item(&m);
        let map: &HashMap<String, AttributeValue> = item.as_ref();
        assert_eq!(map["pk"], s("M#m-1"));
        assert_eq!(map["sk"], s("M"));
        assert_eq!(map["t"], s("MATCH"));
        assert_eq!(map["gsi1pk"], s("S#SOCCER#2026-11"));
        assert_eq!(map["gsi1sk"], s("2026-11-22T15:00:00Z#m-1"));
        assert_eq!(map["gsi3pk"], s("T#ars"));
        assert_eq!(map["gsi4pk"], s("T#che"));
        assert!(map.contains_key("gsi5pk"));
        assert_eq!(decode(&item).unwrap(), Record::Match(Box::new(m)));
    }

    #[test]
    fn ice_hockey_and_american_football_details_round_trip_through_the_item() {
        use crate::model::{AmericanFootballDetails, IceHockeyDetails, PowerPlay, Side};
        let hockey = Details::IceHockey(IceHockeyDetails {
            home_shots_on_goal: 23,
            away_shots_on_goal: 17,
            home_penalty_minutes: 4,
            away_penalty_minutes: 6,
            power_play: Some(PowerPlay {
                side: Side::Home,
                seconds_left: 87,
            }),
        });
        let football = Details::AmericanFootball(AmericanFootballDetails {
            possession: Some(Side::Away),
            down: Some(3),
            yards_to_go: Some(7),
            ball_on: Some(62),
            home_timeouts_left: 2,
            away_timeouts_left: 1,
        });
        let cases = [
            (Sport::IceHockey, Some(hockey), "ICE_HOCKEY"),
            (
                Sport::IceHockey,
                Details::initial(Sport::IceHockey),
                "ICE_HOCKEY",
            ),
            (Sport::AmericanFootball, Some(football), "AMERICAN_FOOTBALL"),
            (
                Sport::AmericanFootball,
                Details::initial(Sport::AmericanFootball),
                "AMERICAN_FOOTBALL",
            ),
        ];
        for (sport, details, kind) in cases {
            let mut m = sample_match();
            m.sport = sport;
            m.details = details;
            let item = match_item(&m);
            let map: &HashMap<String, AttributeValue> = item.as_ref();
            let AttributeValue::M(stored) = &map["details"] else {
                panic!("details are a map: {:?}", map["details"]);
            };
            assert_eq!(stored["kind"], s(kind));
            assert_eq!(decode(&item).unwrap(), Record::Match(Box::new(m)));
        }
    }

    #[test]
    fn empty_hockey_and_football_fields_are_stored_as_nulls() {
        let mut m = sample_match();
        m.sport = Sport::AmericanFootball;
        m.details = Details::initial(Sport::AmericanFootball);
        let item = match_item(&m);
        let map: &HashMap<String, AttributeValue> = item.as_ref();
        let AttributeValue::M(stored) = &map["details"] else {
            panic!("details are a map");
        };
        for field in ["possession", "down", "yardsToGo", "ballOn"] {
            assert_eq!(stored[field], AttributeValue::Null(true), "{field}");
        }
        assert_eq!(stored["homeTimeoutsLeft"], AttributeValue::N("3".into()));
    }

    #[test]
    fn a_hockey_match_stored_before_hockey_had_details_still_decodes_without_them() {
        let mut m = sample_match();
        m.sport = Sport::IceHockey;
        m.details = None;
        // Written before this change: `details` is NULL.
        let item = match_item(&m);
        let map: &HashMap<String, AttributeValue> = item.as_ref();
        assert_eq!(map["details"], AttributeValue::Null(true));
        assert_eq!(decode(&item).unwrap(), Record::Match(Box::new(m.clone())));
        // And an item with no `details` attribute at all decodes the same way.
        let mut without: HashMap<String, AttributeValue> = map.clone();
        without.remove("details");
        assert_eq!(
            decode(&Item::from(without)).unwrap(),
            Record::Match(Box::new(m))
        );
    }

    #[test]
    fn a_finished_match_leaves_the_live_index() {
        let mut m = sample_match();
        m.status = MatchStatus::Finished;
        let item = match_item(&m);
        let map: &HashMap<String, AttributeValue> = item.as_ref();
        assert!(!map.contains_key("gsi5pk"));
    }

    #[test]
    fn events_sort_by_a_fixed_width_seq() {
        let e = MatchEvent {
            match_id: MatchId::parse("m-1").unwrap(),
            seq: 42,
            event_type: EventType::Goal,
            side: Some(crate::model::Side::Home),
            player: None,
            points: 1,
            period: Some(1),
            clock_seconds: Some(600),
            description: Some(Description::parse("header").unwrap()),
            created_at: Utc::now(),
        };
        let item = event_item(&e);
        let map: &HashMap<String, AttributeValue> = item.as_ref();
        assert_eq!(map["sk"], s("E#0000000042"));
        assert_eq!(decode(&item).unwrap(), Record::Event(e));
    }

    #[test]
    fn an_idempotency_record_carries_the_first_result_and_a_ttl() {
        let m = sample_match();
        let key = ClientMutationId::parse("k1").unwrap();
        let expires = Utc::now();
        let item = idempotency_item(&key, &m, expires);
        let map: &HashMap<String, AttributeValue> = item.as_ref();
        assert_eq!(map["sk"], s("I#k1"));
        assert_eq!(
            map["ttl"],
            AttributeValue::N(expires.timestamp().to_string())
        );
        assert_eq!(
            decode(&item).unwrap(),
            Record::Idempotency {
                key,
                result: Box::new(m)
            }
        );
    }

    #[test]
    fn live_shards_are_stable_and_spread() {
        let id = MatchId::parse("m-1").unwrap();
        assert_eq!(live_shard(&id), live_shard(&id));
        let shards: std::collections::HashSet<u32> = (0..100)
            .map(|i| live_shard(&MatchId::parse(format!("m-{i}")).unwrap()))
            .collect();
        assert_eq!(shards.len() as u32, LIVE_SHARDS);
    }

    #[test]
    fn item_sizes_follow_the_dynamodb_rules() {
        let item = |pairs: Vec<(&str, AttributeValue)>| {
            Item::from(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<HashMap<_, _>>(),
            )
        };
        let n = |v: &str| AttributeValue::N(v.into());
        // Name bytes plus value bytes; UTF-8, not characters.
        assert_eq!(item_size(&item(vec![("pk", s("M#m-1"))])), 2 + 5);
        assert_eq!(item_size(&item(vec![("venue", s("Estádio"))])), 5 + 8);
        // Numbers: one byte per two significant digits, plus one.
        assert_eq!(item_size(&item(vec![("v", n("7"))])), 1 + 2);
        assert_eq!(item_size(&item(vec![("v", n("123"))])), 1 + 3);
        assert_eq!(item_size(&item(vec![("v", n("1234"))])), 1 + 3);
        assert_eq!(item_size(&item(vec![("v", n("1000"))])), 1 + 2);
        assert_eq!(item_size(&item(vec![("v", n("0"))])), 1 + 1);
        assert_eq!(item_size(&item(vec![("v", n("-12.50"))])), 1 + 3);
        // Booleans and nulls: one byte.
        assert_eq!(
            item_size(&item(vec![("running", AttributeValue::Bool(true))])),
            7 + 1
        );
        assert_eq!(
            item_size(&item(vec![("venue", AttributeValue::Null(true))])),
            5 + 1
        );
        // Maps and lists: 3 bytes, 1 per element, and the contents.
        let clock = AttributeValue::M(HashMap::from([
            ("period".to_string(), n("2")),
            ("running".to_string(), AttributeValue::Bool(false)),
        ]));
        assert_eq!(
            item_size(&item(vec![("clock", clock)])),
            5 + 3 + 2 + (6 + 2) + (7 + 1)
        );
        let periods = AttributeValue::L(vec![s("1H"), n("10"), AttributeValue::L(vec![])]);
        assert_eq!(
            item_size(&item(vec![("periods", periods)])),
            7 + 3 + 3 + 2 + 2 + 3
        );
        // The whole item is the sum of its attributes.
        assert_eq!(
            item_size(&item(vec![("pk", s("M#m-1")), ("v", n("7"))])),
            7 + 3
        );
        // A real match item: more than its JSON-free text, far below the 400 KB limit.
        let size = item_size(&match_item(&sample_match()));
        assert!((300..2_000).contains(&size), "{size}");
    }

    #[test]
    fn an_item_of_unknown_type_is_refused() {
        let mut item = match_item(&sample_match());
        insert(&mut item, TYPE, "WIDGET".into());
        assert!(matches!(decode(&item), Err(ItemError::UnknownType(t)) if t == "WIDGET"));
    }

    #[test]
    fn a_corrupt_match_item_is_refused() {
        let mut item = match_item(&sample_match());
        insert(&mut item, "status", "EXPLODED".into());
        assert!(matches!(decode(&item), Err(ItemError::Corrupt { .. })));
    }
}
