//! A keep-alive HTTP/1.1 sink on 127.0.0.1 for the benches: answers 204 to every request and
//! counts them, checking nothing, so the receiving side costs as little as it can.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// A keep-alive HTTP/1.1 sink on 127.0.0.1: one thread per connection, 204 to every request.
pub(crate) struct Server {
    addr: SocketAddr,
    /// Requests answered.
    pub(crate) requests: Arc<AtomicUsize>,
    /// Connections accepted.
    pub(crate) connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listens on a free port of 127.0.0.1, a thread per connection.
    pub(crate) fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (requests.clone(), connections.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                thread::spawn(move || sink(stream, &r));
            }
        });
        Server {
            addr,
            requests,
            connections,
            stop,
        }
    }

    /// The URL to deliver to.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads requests (Content-Length bodies) and answers 204 until the peer closes.
fn sink(stream: TcpStream, requests: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut length = 0;
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if first {
                first = false;
                continue;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        if writer
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
