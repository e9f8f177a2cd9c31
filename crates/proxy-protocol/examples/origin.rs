//! An origin behind a load balancer that sends the PROXY protocol: it reads the header each
//! connection starts with and answers, over plain HTTP, who the client really is.
//!
//! ```text
//! cargo run -p edgetls-proxy-protocol --example origin            # prints "listening on ADDR"
//! curl --haproxy-protocol http://ADDR/                           # HAProxy's send-proxy, v1
//! ```
//!
//! HAProxy's `server origin ADDR send-proxy-v2` (or edgetls's `send_proxy = "v2"`) gets the
//! v2 header read the same way, its TLS facts included.

use edgetls_proxy_protocol::{Parsed, parse};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&listen)?;
    println!("listening on {}", listener.local_addr()?);
    for conn in listener.incoming() {
        let mut conn = conn?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let answer = match read_header(&mut conn) {
            Ok(text) => format!("HTTP/1.1 200 OK\r\n{}", body(&text)),
            Err(why) => format!("HTTP/1.1 400 Bad Request\r\n{}", body(&why)),
        };
        println!("{}", answer.lines().last().unwrap_or_default());
        conn.write_all(answer.as_bytes())?;
        // Close only after the client has sent what it meant to (the request behind the
        // header): closing with unread bytes makes the kernel reset the connection, and the
        // client may lose the answer.
        let _ = conn.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut conn, &mut std::io::sink());
    }
    Ok(())
}

/// Reads until the header is complete and says what it carried.
fn read_header(conn: &mut TcpStream) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match parse(&buf).map_err(|e| e.to_string())? {
            Parsed::Header(header, _used) => {
                // The connection's own data (here: the HTTP request) starts at `_used`.
                let client = header.source.map_or("unknown".into(), |a| a.to_string());
                let server = header
                    .destination
                    .map_or("unknown".into(), |a| a.to_string());
                let mut text = format!("PROXY v{}: client {client}, to {server}", header.version);
                if let Some(name) = header.authority() {
                    text += &format!(", server name {name}");
                }
                if let Some(ssl) = header.ssl() {
                    text += &format!(", TLS (client flags {:#04x})", ssl.client);
                }
                return Ok(text);
            }
            Parsed::NotProxy => return Err("no PROXY header".into()),
            Parsed::Incomplete(_) => match conn.read(&mut chunk) {
                Ok(0) => return Err("closed before the header was complete".into()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("reading the header: {e}")),
            },
        }
    }
}

fn body(text: &str) -> String {
    format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{text}\n",
        text.len() + 1
    )
}
