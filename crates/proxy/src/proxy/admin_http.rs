//! The runtime certificate API over HTTP (`[admin] http`, with `token_file`): the same JSON
//! requests as the Unix socket, `POST /` with `Authorization: Bearer TOKEN`, for an agent that
//! cannot reach the socket (a sidecar in another mount namespace). One request per connection,
//! a body of at most 1 MiB, 10 s to send it; a wrong or missing token is 401 and nothing else
//! is read. Plain HTTP: bind it to loopback (a non-loopback address is refused at load).

use crate::proxy::Shared;
use crate::proxy::admin::{AdminSection, Request, handle};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const MOST: usize = 1 << 20;

/// Binds `addr` and answers it on a thread of its own.
pub(crate) fn serve(
    addr: SocketAddr,
    token: Arc<[u8]>,
    section: AdminSection,
    shared: Arc<Shared>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("edgetls-admin-http".into())
        .spawn(move || {
            crate::proxy::background();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if let Err(e) = answer(conn, &token, &section, &shared) {
                    tracing::debug!("admin HTTP: {e}");
                }
            }
        })?;
    Ok(bound)
}

fn reply(mut conn: &TcpStream, status: &str, body: &serde_json::Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len() + 1
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(&body)?;
    conn.write_all(b"\n")
}

fn answer(
    conn: TcpStream,
    token: &[u8],
    section: &AdminSection,
    shared: &Shared,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new((&conn).take(MOST as u64 + 16 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (mut length, mut authorized) = (None, false);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("authorization") {
            let given = value.strip_prefix("Bearer ").unwrap_or("").as_bytes();
            authorized = given.len() == token.len() && openssl::memcmp::eq(given, token);
        }
    }
    if !authorized {
        return reply(
            &conn,
            "401 Unauthorized",
            &json!({"ok": false, "error": "a valid bearer token is required"}),
        );
    }
    if !line.starts_with("POST ") {
        return reply(
            &conn,
            "405 Method Not Allowed",
            &json!({"ok": false, "error": "POST a request"}),
        );
    }
    let Some(length) = length.filter(|&n| n <= MOST) else {
        return reply(
            &conn,
            "413 Payload Too Large",
            &json!({"ok": false, "error": format!("a Content-Length of at most {MOST}")}),
        );
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    match serde_json::from_slice::<Request>(&body) {
        Ok(req) => {
            let answer = handle(req, section, shared);
            let status = if answer["ok"] == json!(true) {
                "200 OK"
            } else {
                "422 Unprocessable Entity"
            };
            reply(&conn, status, &answer)
        }
        Err(e) => reply(
            &conn,
            "400 Bad Request",
            &json!({"ok": false, "error": format!("not a request: {e}")}),
        ),
    }
}
