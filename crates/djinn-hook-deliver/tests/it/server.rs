//! A small HTTP/1.1 server on 127.0.0.1 for the tests: keep-alive, one thread per connection,
//! scripted replies, every request recorded. Dropping it stops and joins every thread.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What to answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Wait, then answer.
    After(Duration, Box<Reply>),
    /// 200 with a chunked body that never ends (until the client goes or 1 GiB).
    Endless,
    /// 200 with `Content-Length: len`, all of it sent.
    Huge(usize),
    /// `at_once` as it is, then `slowly` one byte every `every` (until the client goes).
    Trickle {
        at_once: Vec<u8>,
        slowly: Vec<u8>,
        every: Duration,
    },
}

impl Reply {
    /// `status` with the body "ok", or none where HTTP allows none (204, 304): a body there
    /// would be left on the connection and read as the start of the next response.
    pub fn status(status: u16) -> Reply {
        let body = if matches!(status, 204 | 304) {
            Vec::new()
        } else {
            b"ok".to_vec()
        };
        Reply::Status {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn with_header(status: u16, name: &str, value: &str) -> Reply {
        Reply::Status {
            status,
            headers: vec![(name.to_owned(), value.to_owned())],
            body: Vec::new(),
        }
    }
}

type Handler = dyn Fn(&Received, usize) -> Reply + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    requests: Mutex<Vec<Received>>,
    connections: AtomicUsize,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server answering request number `n` (0-based, across connections) with
    /// `handler(&request, n)`.
    pub fn start(handler: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(&accept_shared);
                let handle = thread::spawn(move || serve(stream, &conn_shared));
                accept_shared.threads.lock().unwrap().push(handle);
            }
        });
        Server {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Answers every request with `reply`.
    pub fn always(reply: Reply) -> Server {
        Server::start(move |_, _| reply.clone())
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    // Idle keep-alive connections end after this, so every thread ends.
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let index = {
            let mut requests = shared.requests.lock().unwrap();
            requests.push(request.clone());
            requests.len() - 1
        };
        let reply = (shared.handler)(&request, index);
        if write_reply(&mut writer, reply, shared).is_err() {
            return;
        }
    }
}

/// Reads one request (its body by `Content-Length`); `None` at the end of the stream or on an
/// error.
pub fn read_request(reader: &mut impl BufRead) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.parse::<usize>().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

fn write_reply(writer: &mut TcpStream, reply: Reply, shared: &Shared) -> std::io::Result<()> {
    match reply {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            writer.write_all(head.as_bytes())?;
            writer.write_all(&body)
        }
        Reply::After(delay, reply) => {
            let until = Instant::now() + delay;
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            write_reply(writer, *reply, shared)
        }
        Reply::Endless => {
            writer.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            let chunk = [b'x'; 8192];
            for _ in 0..(1 << 30) / chunk.len() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                writer.write_all(&chunk)?;
                writer.write_all(b"\r\n")?;
            }
            Err(std::io::ErrorKind::Other.into())
        }
        Reply::Trickle {
            at_once,
            slowly,
            every,
        } => {
            writer.write_all(&at_once)?;
            for byte in slowly {
                writer.write_all(&[byte])?;
                writer.flush()?;
                let until = Instant::now() + every;
                while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Ok(())
        }
        Reply::Huge(len) => {
            writer.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
            )?;
            let chunk = [b'y'; 8192];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len());
                writer.write_all(&chunk[..n])?;
                left -= n;
            }
            Ok(())
        }
    }
}
