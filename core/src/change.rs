//! Changes: what the stream-handler decodes from stream records and what subscribers receive.
//! `ChangeBatch` is also the publish wire format (`POST /internal/publish`, Redis payloads),
//! and the Redis channels it travels on are named here, next to it.
//!
//! Channels: one per match, [`match_channel`] (`scoreline:m:{matchId}`). A message carries the
//! changes of one match from one batch, in order, as a [`ChangeBatch`] JSON with its format
//! version `v` ([`encode_changes`]). Subscribers to every match use the pattern
//! [`ALL_PATTERN`], so each change is published once.

use serde::{Deserialize, Serialize};

use crate::ids::MatchId;
use crate::model::{Match, MatchEvent};

/// The wire format version; readers refuse batches of a version they do not know.
pub const WIRE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "camelCase")]
pub enum Change {
    /// The new state of a match (created or changed).
    Match(Box<Match>),
    /// A new timeline event.
    Event(MatchEvent),
}

impl Change {
    pub fn match_id(&self) -> &MatchId {
        match self {
            Change::Match(m) => &m.id,
            Change::Event(e) => &e.match_id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub v: u32,
    pub changes: Vec<Change>,
}

impl ChangeBatch {
    pub fn new(changes: Vec<Change>) -> Self {
        Self {
            v: WIRE_VERSION,
            changes,
        }
    }
}

/// A batch as written to the wire, borrowing its changes: the same JSON as [`ChangeBatch`].
#[derive(Serialize)]
struct WireBatch<'a> {
    v: u32,
    changes: Vec<&'a Change>,
}

/// Encodes changes as one [`ChangeBatch`] of the current [`WIRE_VERSION`] (compact JSON), the
/// payload of a Redis pub/sub message.
pub fn encode_changes<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<u8> {
    let batch = WireBatch {
        v: WIRE_VERSION,
        changes: changes.into_iter().collect(),
    };
    serde_json::to_vec(&batch).expect("changes always serialise to JSON")
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Written by a release that speaks another format (e.g. a newer one during a rolling
    /// deploy): the reader cannot know what it says, only that something happened.
    #[error("unknown wire format version {0} (this release speaks {WIRE_VERSION})")]
    UnknownVersion(u32),
    #[error("not a change batch: {0}")]
    Malformed(String),
}

/// Decodes a payload written by [`encode_changes`] (or a `POST /internal/publish` body). The
/// version is read first, so a batch of another version is reported as such even when the
/// rest of it would not parse with this release's types.
pub fn decode_changes(bytes: &[u8]) -> Result<ChangeBatch, WireError> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let Version { v } =
        serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    if v != WIRE_VERSION {
        return Err(WireError::UnknownVersion(v));
    }
    serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Prefix of every Scoreline Redis channel.
pub const CHANNEL_PREFIX: &str = "scoreline:m:";
/// The Redis pattern matching every match channel.
pub const ALL_PATTERN: &str = "scoreline:m:*";

/// The Redis channel of one match.
pub fn match_channel(id: &MatchId) -> String {
    format!("{CHANNEL_PREFIX}{}", id.as_str())
}

/// The match a channel name belongs to, if it is a Scoreline match channel.
pub fn channel_match(channel: &str) -> Option<MatchId> {
    MatchId::parse(channel.strip_prefix(CHANNEL_PREFIX)?).ok()
}

/// The Redis messages of a batch: one per match, in the order each match first appears, each
/// match's changes kept in order, as `(channel, payload)`.
pub fn channel_messages<'a>(
    changes: impl IntoIterator<Item = &'a Change>,
) -> Vec<(String, Vec<u8>)> {
    let mut groups: Vec<(&MatchId, Vec<&Change>)> = Vec::new();
    for change in changes {
        let id = change.match_id();
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, list)) => list.push(change),
            None => groups.push((id, vec![change])),
        }
    }
    groups
        .into_iter()
        .map(|(id, list)| (match_channel(id), encode_changes(list)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u32) -> Change {
        event_of("m1", seq)
    }

    fn event_of(match_id: &str, seq: u32) -> Change {
        Change::Event(
            serde_json::from_value(serde_json::json!({
                "matchId": match_id, "seq": seq, "type": "GOAL", "side": "HOME", "player": null,
                "points": 1, "period": 1, "clockSeconds": 60, "description": null,
                "createdAt": "2026-11-22T15:01:00Z"
            }))
            .expect("a match event"),
        )
    }

    #[test]
    fn encoded_changes_decode_to_the_same_batch_with_the_current_version() {
        let changes = vec![event(1), event(2)];
        let bytes = encode_changes(&changes);
        let batch = decode_changes(&bytes).unwrap();
        assert_eq!(batch, ChangeBatch::new(changes));
        // The same JSON as a ChangeBatch, so one format serves HTTP and Redis.
        assert_eq!(
            bytes,
            serde_json::to_vec(&ChangeBatch::new(batch.changes)).unwrap()
        );
    }

    #[test]
    fn a_payload_of_another_version_is_reported_as_such_even_if_its_body_is_unknown() {
        let newer = br#"{"v":2,"changes":[{"kind":"somethingNew","data":7}]}"#;
        assert_eq!(decode_changes(newer), Err(WireError::UnknownVersion(2)));
    }

    #[test]
    fn a_payload_that_is_not_a_batch_is_malformed() {
        assert!(matches!(
            decode_changes(b"not json"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode_changes(br#"{"v":1,"changes":[{"kind":"nope"}]}"#),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn a_batch_becomes_one_message_per_match_keeping_each_matchs_order() {
        let changes = [
            event_of("a", 1),
            event_of("b", 1),
            event_of("a", 2),
            event_of("b", 2),
        ];
        let out = channel_messages(&changes);
        let channels: Vec<&str> = out.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(channels, ["scoreline:m:a", "scoreline:m:b"]);
        let a = decode_changes(&out[0].1).unwrap();
        assert_eq!(a.changes, vec![event_of("a", 1), event_of("a", 2)]);
    }

    #[test]
    fn a_match_channel_names_its_match() {
        let id = MatchId::parse("m-42").unwrap();
        assert_eq!(channel_match(&match_channel(&id)), Some(id));
        assert_eq!(channel_match("other:m-42"), None);
    }
}
