//! Rotation on an injected clock: derived keys, file reloads, the grace window, seal/open.

use edgetls_tickets::format::{self, Format};
use edgetls_tickets::{
    DerivedSource, FileSource, KeySet, KeySize, ManualClock, Opened, RingOptions, TicketKey,
    TicketKeys, open, seal,
};
use std::sync::Arc;

const HOUR: u64 = 3600;
const T0: u64 = 1_800_000_000 - 1_800_000_000 % HOUR; // the start of an hour

fn derived(secret: &[u8], clock: &Arc<ManualClock>) -> TicketKeys {
    TicketKeys::with_clock(
        DerivedSource::new(secret, HOUR, HOUR / 2, KeySize::Aes256).unwrap(),
        RingOptions::new(0, 0),
        Arc::clone(clock),
    )
    .unwrap()
}

#[test]
fn servers_sharing_a_secret_derive_the_same_keys_and_rotate_together() {
    let clock = Arc::new(ManualClock::new(T0 + 10));
    let (a, b) = (
        derived(b"fleet secret 0123456789abcdef", &clock),
        derived(b"fleet secret 0123456789abcdef", &clock),
    );
    let other = derived(b"another fleet's secret 0123456789", &clock);
    assert_eq!(a.encrypting(), b.encrypting());
    assert_ne!(a.encrypting().name(), other.encrypting().name());
    let first = a.encrypting();

    // Next period: a new encrypting key, the old one still decrypts (renew) within the grace.
    clock.advance(HOUR);
    let second = a.encrypting();
    assert_ne!(first.name(), second.name());
    assert_eq!(b.encrypting(), second);
    let found = a.find(first.name()).expect("previous key within grace");
    assert!(!found.current);
    // A ticket from a server whose clock runs ahead (next period's key) is accepted.
    clock.advance(1);
    let ahead = DerivedSource::new(
        b"fleet secret 0123456789abcdef",
        HOUR,
        HOUR / 2,
        KeySize::Aes256,
    )
    .unwrap()
    .key_for((T0 + 10) / HOUR + 2)
    .unwrap();
    assert!(a.find(ahead.name()).is_some());

    // Past the grace window the old key is gone: a full handshake, not an error.
    clock.set(T0 + HOUR + HOUR / 2 + 1);
    assert!(a.find(first.name()).is_none());
    assert!(a.find(second.name()).unwrap().current);
}

#[test]
fn a_rewritten_key_file_keeps_the_old_keys_for_the_grace_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticket.key");
    let old = KeySet::new(vec![TicketKey::generate(KeySize::Aes128).unwrap()], 0).unwrap();
    std::fs::write(&path, &*format::write(&old, Format::Ats).unwrap()).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let keys = TicketKeys::with_clock(
        FileSource::new(&path, Format::Ats),
        RingOptions::new(600, 5),
        Arc::clone(&clock),
    )
    .unwrap();
    let new = KeySet::new(vec![TicketKey::generate(KeySize::Aes128).unwrap()], 0).unwrap();
    std::fs::write(&path, &*format::write(&new, Format::Ats).unwrap()).unwrap();
    // Not looked at before the refresh interval...
    assert_eq!(keys.encrypting().name(), old.encrypting().name());
    // ...then the new key encrypts and the old one decrypts for 600 s.
    clock.advance(5);
    assert_eq!(keys.encrypting().name(), new.encrypting().name());
    assert!(!keys.find(old.encrypting().name()).unwrap().current);
    clock.advance(599);
    assert!(keys.find(old.encrypting().name()).is_some());
    clock.advance(2);
    assert!(keys.find(old.encrypting().name()).is_none());

    // A broken file is reported and changes nothing.
    std::fs::write(&path, b"short").unwrap();
    clock.advance(5);
    assert_eq!(keys.encrypting().name(), new.encrypting().name());
    let why = keys.last_error().expect("the failed reload is kept");
    assert!(
        why.contains("ticket.key") && why.contains("48-byte"),
        "{why}"
    );
    assert_eq!(
        keys.counters()
            .refresh_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn seal_and_open_follow_the_key_ring() {
    let clock = Arc::new(ManualClock::new(T0 + 1));
    let keys = derived(b"fleet secret 0123456789abcdef", &clock);
    let ticket = seal(&keys, b"session state").unwrap();
    match open(&keys, &ticket).unwrap() {
        Opened::State { plaintext, renew } => {
            assert_eq!(&plaintext[..], b"session state");
            assert!(!renew);
        }
        other => panic!("{other:?}"),
    }
    let mut bad = ticket.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(open(&keys, &bad).unwrap(), Opened::Invalid));
    clock.advance(HOUR);
    assert!(matches!(
        open(&keys, &ticket).unwrap(),
        Opened::State { renew: true, .. }
    ));
    clock.advance(HOUR);
    assert!(matches!(open(&keys, &ticket).unwrap(), Opened::UnknownKey));
    assert!(matches!(
        open(&keys, &ticket[..40]).unwrap(),
        Opened::Invalid
    ));
}
