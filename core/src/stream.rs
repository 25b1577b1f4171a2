//! DynamoDB Streams records: decoding them into changes (the code the Lambda, the local poller
//! and the embedded pipeline all run) and building them (the memory store's change feed emits
//! records of exactly the shape DynamoDB does, with NEW_AND_OLD_IMAGES).

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use chrono::{DateTime, Utc};
use serde_dynamo::Item;

use crate::change::Change;
use crate::item::{self, ItemError, Record};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown eventName {0:?}")]
    UnknownEventName(String),
    #[error("{event_name} record without a NewImage")]
    MissingNewImage { event_name: String },
    #[error(transparent)]
    Item(#[from] ItemError),
}

/// Decodes one stream record. `Ok(None)` is a record that changes nothing subscribers see:
/// catalogue items, idempotency records, and REMOVE records (the API never deletes matches or
/// events; removals come from TTL expiry of idempotency records or from operators cleaning up,
/// and subscribers keep the last state they had).
pub fn decode_record(record: &EventRecord) -> Result<Option<Change>, DecodeError> {
    match record.event_name.as_str() {
        "INSERT" | "MODIFY" => {}
        "REMOVE" => return Ok(None),
        other => return Err(DecodeError::UnknownEventName(other.to_string())),
    }
    let image = &record.change.new_image;
    if image.as_ref().is_empty() {
        return Err(DecodeError::MissingNewImage {
            event_name: record.event_name.clone(),
        });
    }
    Ok(match item::decode(image)? {
        Record::Match(m) => Some(Change::Match(m)),
        Record::Event(e) => Some(Change::Event(e)),
        Record::Idempotency { .. }
        | Record::Competition(_)
        | Record::Team(_)
        | Record::Membership { .. } => None,
    })
}

/// The item keys a record names, for logs about records that could not be decoded.
pub fn record_keys(record: &EventRecord) -> String {
    let keys: &std::collections::HashMap<String, serde_dynamo::AttributeValue> =
        record.change.keys.as_ref();
    let mut parts: Vec<String> = keys
        .iter()
        .map(|(k, v)| match v {
            serde_dynamo::AttributeValue::S(s) => format!("{k}={s}"),
            other => format!("{k}={other:?}"),
        })
        .collect();
    parts.sort();
    parts.join(",")
}

/// What a write did to one item, for building its stream record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    Modify,
    Remove,
}

impl WriteKind {
    fn event_name(self) -> &'static str {
        match self {
            WriteKind::Insert => "INSERT",
            WriteKind::Modify => "MODIFY",
            WriteKind::Remove => "REMOVE",
        }
    }
}

/// Builds the stream record DynamoDB would emit for one item write with NEW_AND_OLD_IMAGES.
pub fn build_record(
    table: &str,
    sequence_number: u64,
    at: DateTime<Utc>,
    old: Option<Item>,
    new: Option<Item>,
) -> EventRecord {
    let kind = match (&old, &new) {
        (None, Some(_)) => WriteKind::Insert,
        (Some(_), Some(_)) => WriteKind::Modify,
        _ => WriteKind::Remove,
    };
    let keys = new
        .as_ref()
        .or(old.as_ref())
        .map(item::keys_of)
        .unwrap_or_default();
    let old_image = old.unwrap_or_default();
    let new_image = new.unwrap_or_default();
    let size_bytes = (serde_json::to_vec(&keys).map(|v| v.len()).unwrap_or(0)
        + serde_json::to_vec(&old_image).map(|v| v.len()).unwrap_or(0)
        + serde_json::to_vec(&new_image).map(|v| v.len()).unwrap_or(0)) as i64;
    let mut change = StreamRecord::default();
    change.approximate_creation_date_time = at;
    change.keys = keys;
    change.new_image = new_image;
    change.old_image = old_image;
    // DynamoDB sequence numbers are decimal strings of up to 40 digits, rising within a shard.
    change.sequence_number = Some(format!("{sequence_number:021}"));
    change.size_bytes = size_bytes;
    change.stream_view_type = Some(StreamViewType::NewAndOldImages);
    let mut record = EventRecord::default();
    record.aws_region = "local".into();
    record.change = change;
    record.event_id = format!("{sequence_number:x}");
    record.event_name = kind.event_name().into();
    record.event_source = Some("aws:dynamodb".into());
    record.event_version = Some("1.1".into());
    record.event_source_arn = Some(format!(
        "arn:aws:dynamodb:local:000000000000:table/{table}/stream/embedded"
    ));
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{competition_item, match_item, tests::sample_match};

    #[test]
    fn a_modified_match_decodes_to_its_new_state() {
        let old = sample_match();
        let mut new = old.clone();
        new.version += 1;
        new.score.home += 1;
        let record = build_record(
            "t",
            1,
            Utc::now(),
            Some(match_item(&old)),
            Some(match_item(&new)),
        );
        assert_eq!(record.event_name, "MODIFY");
        assert_eq!(
            decode_record(&record).unwrap(),
            Some(Change::Match(Box::new(new)))
        );
        assert_eq!(record_keys(&record), "pk=M#m-1,sk=M");
    }

    #[test]
    fn records_serialize_in_the_dynamodb_streams_json_shape() {
        let record = build_record("t", 7, Utc::now(), None, Some(match_item(&sample_match())));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["eventName"], "INSERT");
        assert_eq!(json["dynamodb"]["Keys"]["pk"]["S"], "M#m-1");
        assert_eq!(json["dynamodb"]["NewImage"]["version"]["N"], "7");
        assert_eq!(json["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
        let back: EventRecord = serde_json::from_value(json).unwrap();
        assert!(decode_record(&back).unwrap().is_some());
    }

    #[test]
    fn removals_and_catalogue_items_change_nothing_for_subscribers() {
        let removed = build_record("t", 1, Utc::now(), Some(match_item(&sample_match())), None);
        assert_eq!(removed.event_name, "REMOVE");
        assert_eq!(decode_record(&removed).unwrap(), None);
        let c = crate::model::Competition {
            id: crate::ids::CompetitionId::parse("epl").unwrap(),
            name: crate::text::Name::parse("Premier League").unwrap(),
            sport: crate::sport::Sport::Soccer,
            season: crate::text::Season::parse("2026-27").unwrap(),
            created_at: Utc::now(),
        };
        let inserted = build_record("t", 2, Utc::now(), None, Some(competition_item(&c)));
        assert_eq!(decode_record(&inserted).unwrap(), None);
    }

    #[test]
    fn an_unknown_event_name_is_an_error() {
        let mut record = build_record("t", 1, Utc::now(), None, Some(match_item(&sample_match())));
        record.event_name = "UPSERT".into();
        assert!(matches!(
            decode_record(&record),
            Err(DecodeError::UnknownEventName(_))
        ));
    }
}
