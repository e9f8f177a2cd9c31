//! A fault injector in front of pebble, for what pebble 2.4 lacks: rate-limit answers and
//! ACME Renewal Information (RFC 9773). An HTTPS server that passes every request through to
//! the real pebble unchanged — with the client's own `Host`, so that pebble's URLs point back
//! here and its checks of each JWS's `url` hold — except what a test switches on:
//!
//! - `rate_limit`: new orders are answered `429` with a `rateLimited` problem document;
//! - `window`: the directory offers `renewalInfo`, answered with that suggested window, and a
//!   new order's `replaces` is echoed in the order pebble returns (as an ARI CA does).
//!
//! It records every new order's payload (to see `replaces`) and every renewal-info request.

use crate::pebble::Pebble;
use openssl::ssl::{SslAcceptor, SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the front changes, and what it saw.
#[derive(Debug, Default)]
pub struct State {
    /// Answer new orders with a `rateLimited` problem carrying this detail.
    pub rate_limit: Option<String>,
    /// Offer `renewalInfo`, answering every certificate with this window (RFC 3339 start and
    /// end).
    pub window: Option<(String, String)>,
    /// The payload of every new order that reached the front (JSON).
    pub new_orders: Vec<String>,
    /// Rate-limit answers given.
    pub refused: usize,
    /// The certificate identifiers renewal information was asked for.
    pub ari_requests: Vec<String>,
}

/// The running front; it stops with the test process.
pub struct Front {
    /// The ACME directory URL, through the front.
    pub directory: String,
    state: Arc<Mutex<State>>,
}

impl Front {
    /// Starts a front for `pebble`, serving pebble's own API certificate (the client trusts
    /// the same root).
    pub fn start(pebble: &Pebble) -> Front {
        let (cert, key) = pebble.api_cert_files();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("TLS");
        acceptor
            .set_certificate_chain_file(&cert)
            .expect("the API certificate");
        acceptor
            .set_private_key_file(&key, SslFiletype::PEM)
            .expect("the API key");
        let acceptor = Arc::new(acceptor.build());
        let mut connector = SslConnector::builder(SslMethod::tls()).expect("TLS");
        connector.set_verify(SslVerifyMode::NONE);
        let connector = Arc::new(connector.build());
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = pebble.port;
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (acceptor, connector, state) = (
                    Arc::clone(&acceptor),
                    Arc::clone(&connector),
                    Arc::clone(&shared),
                );
                std::thread::spawn(move || {
                    if let Ok(mut tls) = acceptor.accept(conn) {
                        let _ = serve(&mut tls, &connector, upstream, &state);
                    }
                });
            }
        });
        Front {
            directory: format!("https://127.0.0.1:{port}/dir"),
            state,
        }
    }

    /// Reads or changes the front's state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct Request {
    method: String,
    path: String,
    host: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

fn read_request(conn: &mut impl Read) -> std::io::Result<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 || buf.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let mut host = String::new();
    let mut length = 0;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "host" => host = value.trim().to_owned(),
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "connection" => continue,
            _ => {}
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        host,
        head: head.into_bytes(),
        body,
    })
}

fn answer(conn: &mut impl Write, status: &str, headers: &str, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn serve(
    conn: &mut (impl Read + Write),
    connector: &SslConnector,
    upstream: u16,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let req = read_request(conn)?;
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let mut replaces = None;
    if req.method == "POST" && req.path == "/order-plz" {
        let payload = jws_payload(&req.body);
        replaces = payload
            .split("\"replaces\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_owned);
        let mut s = lock();
        s.new_orders.push(payload);
        if let Some(detail) = s.rate_limit.clone() {
            s.refused += 1;
            drop(s);
            let problem = format!(
                "{{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":{},\"status\":429}}",
                json_string(&detail)
            );
            return answer(
                conn,
                "429 Too Many Requests",
                "Content-Type: application/problem+json\r\nRetry-After: 600\r\n",
                &problem,
            );
        }
    }
    if let Some(id) = req.path.strip_prefix("/renewal-info/") {
        let mut s = lock();
        s.ari_requests.push(id.to_owned());
        let Some((start, end)) = s.window.clone() else {
            drop(s);
            return answer(conn, "404 Not Found", "", "");
        };
        drop(s);
        let body = format!("{{\"suggestedWindow\":{{\"start\":\"{start}\",\"end\":\"{end}\"}}}}");
        return answer(
            conn,
            "200 OK",
            "Content-Type: application/json\r\nRetry-After: 60\r\n",
            &body,
        );
    }
    let tcp = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut up = connector
        .connect("127.0.0.1", tcp)
        .map_err(std::io::Error::other)?;
    up.write_all(&req.head)?;
    up.write_all(&req.body)?;
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    let window = lock().window.is_some();
    if req.path == "/dir" && window {
        let url = format!("https://{}/renewal-info", req.host);
        response = with_field(&response, "renewalInfo", &url);
    }
    if let Some(id) = replaces.filter(|_| window) {
        response = with_field(&response, "replaces", &id);
    }
    conn.write_all(&response)?;
    conn.flush()
}

/// Pebble's JSON answer with the string field `key` added (its body re-measured).
fn with_field(response: &[u8], key: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return response.to_vec();
    };
    let Some(open) = body.find('{') else {
        return response.to_vec();
    };
    let body = format!(
        "{{{}:{},{}",
        json_string(key),
        json_string(value),
        &body[open + 1..]
    );
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{body}",
        head.join("\r\n"),
        body.len()
    )
    .into_bytes()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The decoded `payload` of a flattened JWS (`{"protected":…,"payload":"…","signature":…}`).
fn jws_payload(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let payload = text
        .split("\"payload\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or_default();
    String::from_utf8_lossy(&base64url_decode(payload)).into_owned()
}

fn base64url_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' | b'+' => Some(62),
        b'_' | b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_payloads_decode() {
        assert_eq!(base64url_decode("Zm9v"), b"foo");
        assert_eq!(base64url_decode("Zm8"), b"fo");
        assert_eq!(base64url_decode("-_8"), [0xfb, 0xff]);
        let body = br#"{"protected":"x","payload":"eyJhIjoxfQ","signature":"y"}"#;
        assert_eq!(jws_payload(body), r#"{"a":1}"#);
    }

    #[test]
    fn the_directory_gains_renewal_info() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"a\": \"b\"}\n";
        let out =
            String::from_utf8(with_field(r, "renewalInfo", "https://h:1/renewal-info")).unwrap();
        let (_, body) = out.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            body,
            "{\"renewalInfo\":\"https://h:1/renewal-info\",\"a\": \"b\"}\n"
        );
        assert!(out.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
