//! DynamoDB stream records (the Lambda's and the poller's input) decoded into changes. Nothing
//! may panic; a record that decodes to a change gives a change that survives the item codec
//! and the publish wire format unchanged.

#![no_main]

use aws_lambda_events::event::dynamodb::EventRecord;
use libfuzzer_sys::fuzz_target;
use scoreline_core::change::{decode_changes, encode_changes};
use scoreline_core::item::{self, Record};
use scoreline_core::stream::{decode_record, record_keys};
use scoreline_core::Change;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<EventRecord>(data) else {
        return;
    };
    let _ = record_keys(&record);
    let Ok(Some(change)) = decode_record(&record) else {
        return;
    };
    match &change {
        Change::Match(m) => assert_eq!(
            item::decode(&item::match_item(m)).expect("a match item decodes"),
            Record::Match(m.clone())
        ),
        Change::Event(e) => assert_eq!(
            item::decode(&item::event_item(e)).expect("an event item decodes"),
            Record::Event(e.clone())
        ),
    }
    let wire = encode_changes([&change]);
    assert_eq!(
        decode_changes(&wire)
            .expect("encoded changes decode")
            .changes,
        vec![change]
    );
});
