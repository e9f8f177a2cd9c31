#![no_main]
//! Keyless frames from the network: the streaming decoder must never panic, and every packet it
//! accepts must encode back to a frame that decodes to the same packet.
use edgetls_keyless_proto::{Decoder, Packet};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Feed in two pieces, as a socket would.
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut decoder = Decoder::new();
    decoder.extend(&data[..cut]);
    decoder.extend(&data[cut..]);
    while let Some(result) = decoder.next() {
        if let Ok(packet) = result {
            if let Ok(bytes) = packet.to_bytes() {
                assert_eq!(Packet::decode(&bytes).as_ref(), Ok(&packet));
            }
        }
    }
});
