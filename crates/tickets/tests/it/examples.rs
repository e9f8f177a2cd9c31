//! The crate's example: two servers sharing a key file, resumed across by `openssl s_client`.

use crate::common::{reused, s_client};
use edgetls_testkit::examples::ServingExample;
use std::net::SocketAddr;

#[test]
fn shared_ring_resumes_a_ticket_of_one_server_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("tickets.key");
    let mut servers = ServingExample::start("shared_ring", &[keys.as_os_str()]);
    let a = servers.addr;
    let b = servers.next_line();
    let b: SocketAddr = b
        .strip_prefix("second server on ")
        .expect("B's address")
        .parse()
        .unwrap();
    // The file it wrote: three HAProxy lines, owner-only.
    let text = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let session = dir.path().join("session.pem");
    let first = s_client(a, "-tls1_3", None, Some(&session), &[]);
    assert!(!reused(&first), "{first}");
    assert_eq!(servers.next_line(), "A: full handshake");
    let second = s_client(b, "-tls1_3", Some(&session), None, &[]);
    assert!(reused(&second), "{second}");
    assert_eq!(servers.next_line(), "B: resumed");

    // A server with other keys does not resume it: the same example on another file.
    let other = ServingExample::start("shared_ring", &[dir.path().join("other.key").as_os_str()]);
    let third = s_client(other.addr, "-tls1_3", Some(&session), None, &[]);
    assert!(!reused(&third), "{third}");
}
