//! `POST /internal/publish`: the body (`decode_changes`) and the signature check. The input is
//! `timestamp \n signature \n body`. Nothing may panic; a decoded batch re-encodes to the same
//! batch; a correctly signed request verifies exactly when its timestamp is within 300 s of the
//! clock, whatever the two values (the check once overflowed near `i64::MIN`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scoreline_core::change::{decode_changes, encode_changes};
use scoreline_core::publish::{is_fresh, sign, verify_any, SIGNATURE_MAX_AGE_SECS};

const SECRETS: [&str; 2] = ["current-secret", "previous-secret"];

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = decode_changes(data) {
        let again = decode_changes(&encode_changes(&batch.changes)).expect("re-encoded decodes");
        assert_eq!(again, batch);
    }

    let mut parts = data.splitn(3, |b| *b == b'\n');
    let timestamp = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let signature = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let body = parts.next().unwrap_or_default();
    let now = 1_700_000_000;
    let _ = verify_any(&SECRETS, timestamp, signature, body, now);

    let Some(ts) = timestamp.and_then(|t| t.trim().parse::<i64>().ok()) else {
        return;
    };
    let text = ts.to_string();
    for (i, secret) in SECRETS.iter().enumerate() {
        let good = sign(secret, ts, body);
        for now in [
            now,
            0,
            i64::MIN,
            i64::MAX,
            ts,
            ts.wrapping_add(i64::MIN),
            ts.wrapping_sub(301),
        ] {
            let fresh =
                (i128::from(now) - i128::from(ts)).abs() <= i128::from(SIGNATURE_MAX_AGE_SECS);
            assert_eq!(is_fresh(ts, now), fresh, "{ts} at {now}");
            let verified = verify_any(&SECRETS, Some(&text), Some(&good), body, now);
            assert_eq!(verified.is_ok(), fresh, "{ts} at {now}: {verified:?}");
            if let Ok(v) = verified {
                assert_eq!((v.timestamp, v.secret_index), (ts, i));
            }
        }
    }
});
