//! Minimal outbound proxies for testing `upstream.proxy`: HTTP CONNECT and SOCKS5 (no auth or
//! user/password), each counting the tunnels it opened and recording the auth it was given.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct Seen {
    /// Targets of the tunnels opened, as `host:port`.
    pub targets: Mutex<Vec<String>>,
    /// `Proxy-Authorization` values (CONNECT) or `user:pass` (SOCKS5) received.
    pub auth: Mutex<Vec<String>>,
}

pub async fn connect_proxy() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = s.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(client);
                let mut first = String::new();
                reader.read_line(&mut first).await.unwrap();
                let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    if let Some(v) =
                        line.strip_prefix("proxy-authorization: ").or(line.strip_prefix("Proxy-Authorization: "))
                    {
                        seen.auth.lock().unwrap().push(v.trim().to_string());
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut client = reader.into_inner();
                let Ok(mut upstream) = TcpStream::connect(&target).await else { return };
                seen.targets.lock().unwrap().push(target);
                client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

pub async fn socks5_proxy() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = s.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 2];
                client.read_exact(&mut head).await.unwrap();
                let mut methods = vec![0u8; head[1] as usize];
                client.read_exact(&mut methods).await.unwrap();
                if methods.contains(&2) {
                    // Username/password (RFC 1929).
                    client.write_all(&[5, 2]).await.unwrap();
                    let mut ver_ulen = [0u8; 2];
                    client.read_exact(&mut ver_ulen).await.unwrap();
                    let mut user = vec![0u8; ver_ulen[1] as usize];
                    client.read_exact(&mut user).await.unwrap();
                    let mut plen = [0u8; 1];
                    client.read_exact(&mut plen).await.unwrap();
                    let mut pass = vec![0u8; plen[0] as usize];
                    client.read_exact(&mut pass).await.unwrap();
                    seen.auth.lock().unwrap().push(format!(
                        "{}:{}",
                        String::from_utf8_lossy(&user),
                        String::from_utf8_lossy(&pass)
                    ));
                    client.write_all(&[1, 0]).await.unwrap();
                } else {
                    client.write_all(&[5, 0]).await.unwrap();
                }
                let mut req = [0u8; 4];
                client.read_exact(&mut req).await.unwrap();
                let host = match req[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        client.read_exact(&mut ip).await.unwrap();
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut len = [0u8; 1];
                        client.read_exact(&mut len).await.unwrap();
                        let mut name = vec![0u8; len[0] as usize];
                        client.read_exact(&mut name).await.unwrap();
                        String::from_utf8_lossy(&name).into_owned()
                    }
                    _ => return,
                };
                let mut port = [0u8; 2];
                client.read_exact(&mut port).await.unwrap();
                let target = format!("{host}:{}", u16::from_be_bytes(port));
                let Ok(mut upstream) = TcpStream::connect(&target).await else { return };
                seen.targets.lock().unwrap().push(target);
                client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}
