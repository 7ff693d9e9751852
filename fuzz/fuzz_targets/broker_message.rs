//! Bodies taken off the work queues are untrusted (anyone with publish rights, or an old
//! producer, may put anything there): parsing must return `Ok` or `Err`, never panic.
#![no_main]

use dispatchctl::broker::messages::WorkMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = WorkMessage::parse(data);
});
