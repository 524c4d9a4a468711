//! Faulty receivers on 127.0.0.1: one that accepts connections and never answers, one that
//! resets every connection. Dropping one stops its thread and closes its connections.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What a [`Peer`] does with a connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Keeps it open and never reads or writes (until dropped).
    Hang,
    /// Reads a few bytes of the request and closes with the rest unread: the kernel answers
    /// with a reset.
    Reset,
}

pub(crate) struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// Accepts every connection and never answers.
    pub(crate) fn hanging() -> Peer {
        Peer::start(Behaviour::Hang)
    }

    /// Resets every connection after reading the start of the request.
    pub(crate) fn resetting() -> Peer {
        Peer::start(Behaviour::Reset)
    }

    fn start(behaviour: Behaviour) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread = thread::spawn({
            let (stop, accepted) = (Arc::clone(&stop), Arc::clone(&accepted));
            move || {
                let mut held = Vec::new();
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
                    }
                }
            }
        });
        Peer {
            addr,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
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
