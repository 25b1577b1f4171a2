//! The DynamoDB item codec on arbitrary items (DynamoDB JSON). Nothing may panic; an item that
//! decodes re-encodes to an item that decodes to the same record, also through its JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scoreline_core::item::{self, Record};
use serde_dynamo::Item;

fuzz_target!(|data: &[u8]| {
    let Ok(item) = serde_json::from_slice::<Item>(data) else {
        return;
    };
    let _ = item::item_size(&item);
    let _ = item::keys_of(&item);
    let _ = item::item_type(&item);
    let Ok(record) = item::decode(&item) else {
        return;
    };
    let again = match &record {
        Record::Match(m) => item::match_item(m),
        Record::Event(e) => item::event_item(e),
        Record::Idempotency { key, result } => {
            item::idempotency_item(key, result, chrono::DateTime::UNIX_EPOCH)
        }
        Record::Competition(c) => item::competition_item(c),
        Record::Team(t) => item::team_item(t),
        Record::Membership {
            competition_id,
            team_id,
        } => item::membership_item(competition_id, team_id),
    };
    assert_eq!(
        item::decode(&again).expect("a re-encoded item decodes"),
        record
    );
    let json = serde_json::to_vec(&again).expect("an item serializes");
    let back: Item = serde_json::from_slice(&json).expect("its JSON reads back");
    assert_eq!(item::decode(&back).expect("and decodes"), record);
});
