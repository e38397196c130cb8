//! A readiness probe that speaks just enough Kafka protocol to know the broker
//! answers requests, not merely accepts TCP connections.
//!
//! It sends ApiVersions v0 (api key 18), the first request every Kafka client
//! sends, and checks the correlation id and error code of the response.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::Duration;

const API_VERSIONS: i16 = 18;
const CORRELATION_ID: i32 = 0x0af2_e601;

/// True when a Kafka broker on 127.0.0.1:`port` answers ApiVersions without error.
pub fn broker_answers(port: u16) -> bool {
    probe(port).unwrap_or(false)
}

fn probe(port: u16) -> std::io::Result<bool> {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let mut stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    let client_id = b"afregning-stack";
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&API_VERSIONS.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes()); // api version 0
    body.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    stream.write_all(&request)?;
    let mut header = [0u8; 10]; // size, correlation id, error code
    stream.read_exact(&mut header)?;
    let correlation = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let error_code = i16::from_be_bytes([header[8], header[9]]);
    Ok(correlation == CORRELATION_ID && error_code == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_without_a_broker_does_not_answer() {
        let port = crate::ports::free_port().expect("free port");
        assert!(!broker_answers(port));
    }

    #[test]
    fn a_plain_tcp_listener_is_not_a_broker() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            // Accept and answer garbage, as a non-Kafka service would.
            if let Ok((mut socket, _)) = listener.accept() {
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        assert!(!broker_answers(port));
        let _ = server.join();
    }
}
