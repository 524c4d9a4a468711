//! Faulty receivers on 127.0.0.1 ([`Peer`]): one that accepts connections and never answers,
//! one that resets every connection, one that trickles its answer a byte a second, one that
//! answers correctly but slowly, one that answers `429 Too Many Requests`; and
//! [`closed_port`], one that is down. Dropping a peer stops its threads and closes its
//! connections (a slow one then answers at once).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What a [`Peer`] does with a connection.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Keeps it open and never reads or writes (until dropped).
    Hang,
    /// Reads a few bytes of the request and closes with the rest unread: the kernel answers
    /// with a reset.
    Reset,
    /// Reads the request, then writes a `204` one byte a second.
    Trickle,
    /// Reads the request, waits this long, then answers `204` (at once once dropped).
    Slow(Duration),
    /// Reads the request and answers `429` with `Retry-After` of this many seconds.
    Throttle(u64),
}

/// A faulty receiver on 127.0.0.1 (which fault: its constructor); dropping it stops its
/// threads and closes its connections.
#[derive(Debug)]
pub struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    /// The `X-Djinn-CI-Delivery` of each request read in full, with when it came.
    requests: Arc<Mutex<Vec<(String, Instant)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// Accepts every connection and never answers.
    pub fn hanging() -> Peer {
        Peer::start(Behaviour::Hang)
    }

    /// Resets every connection after reading the start of the request.
    pub fn resetting() -> Peer {
        Peer::start(Behaviour::Reset)
    }

    /// Answers `204 No Content` one byte a second.
    pub fn trickling() -> Peer {
        Peer::start(Behaviour::Trickle)
    }

    /// Answers `204 No Content` after `delay`.
    pub fn slow(delay: Duration) -> Peer {
        Peer::start(Behaviour::Slow(delay))
    }

    /// Answers `429 Too Many Requests` with `Retry-After: <seconds>`.
    pub fn throttling(seconds: u64) -> Peer {
        Peer::start(Behaviour::Throttle(seconds))
    }

    fn start(behaviour: Behaviour) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = thread::spawn({
            let (stop, accepted, requests) = (
                Arc::clone(&stop),
                Arc::clone(&accepted),
                Arc::clone(&requests),
            );
            move || {
                let mut held = Vec::new();
                let mut answering = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    match behaviour {
                        Behaviour::Hang => held.push(stream),
                        Behaviour::Reset => {
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut start = [0; 16];
                            let _ = stream.read_exact(&mut start);
                        }
                        Behaviour::Trickle | Behaviour::Slow(_) | Behaviour::Throttle(_) => {
                            let (stop, requests) = (Arc::clone(&stop), Arc::clone(&requests));
                            answering.push(thread::spawn(move || {
                                answer(stream, behaviour, &stop, &requests);
                            }));
                        }
                    }
                }
                drop(held);
                for thread in answering {
                    let _ = thread.join();
                }
            }
        });
        Peer {
            addr,
            stop,
            accepted,
            requests,
            thread: Some(thread),
        }
    }

    /// The URL to deliver to (`http://127.0.0.1:<port>/hook`).
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The delivery ids of the requests read so far, with when each came.
    pub fn requests(&self) -> Vec<(String, Instant)> {
        self.requests.lock().unwrap().clone()
    }
}

/// Serves the requests of one keep-alive connection as `behaviour` says, until it closes.
fn answer(
    mut stream: TcpStream,
    behaviour: Behaviour,
    stop: &AtomicBool,
    requests: &Mutex<Vec<(String, Instant)>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buffer = Vec::new();
    loop {
        let Some(delivery) = read_request(&mut stream, &mut buffer, stop) else {
            return;
        };
        requests.lock().unwrap().push((delivery, Instant::now()));
        let response: &[u8] = match behaviour {
            Behaviour::Throttle(seconds) => {
                let head = format!(
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {seconds}\r\nContent-Length: 0\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            _ => b"HTTP/1.1 204 No Content\r\n\r\n",
        };
        match behaviour {
            Behaviour::Trickle => {
                for byte in response {
                    if stream.write_all(&[*byte]).is_err() || !wait(Duration::from_secs(1), stop) {
                        return;
                    }
                }
            }
            Behaviour::Slow(delay) => {
                wait(delay, stop);
                if stream.write_all(response).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Waits `delay`, or less if the peer stops meanwhile; returns whether it did not.
fn wait(delay: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Reads one request (head and `Content-Length` body) and returns its `X-Djinn-CI-Delivery`;
/// `None` once the connection closes or the peer stops.
fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>, stop: &AtomicBool) -> Option<String> {
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let header = |name: &str| {
                head.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.eq_ignore_ascii_case(name)
                        .then(|| value.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                buffer.drain(..end + 4 + length);
                return Some(header("x-djinn-ci-delivery").unwrap_or_default());
            }
        }
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An address on 127.0.0.1 nobody listens on (yet): bound, noted, closed: a receiver that is
/// down.
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
