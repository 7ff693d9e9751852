//! Request bodies of `POST /api/v1/notifications` and `POST /api/v1/notifications/batch`
//! are untrusted: decoding and validating any byte string must return `Ok` or `Err`,
//! never panic.
#![no_main]

use dispatchctl::api::handlers::{decode_json, BatchRequest};
use dispatchctl::domain::NotificationRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_json::<NotificationRequest>(data) {
        let _ = request.validate(None, 5);
    }
    if let Ok(batch) = decode_json::<BatchRequest>(data) {
        for item in batch.notifications.iter().flatten() {
            let _ = item.validate(None, 5);
        }
    }
});
