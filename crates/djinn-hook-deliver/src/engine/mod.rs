//! [`Engine`]: deliveries that wait on their receivers without holding a thread.
//!
//! One reactor thread drives every delivery handed to it over non-blocking sockets (`mio`:
//! epoll, kqueue), each with ureq's own HTTP/1.1 state machine (`ureq-proto`) and, for
//! `https`, rustls's sans-IO client. A delivery waiting on its receiver is then a socket and a
//! few KiB of state (its request bytes, what arrived of the answer), not a thread, its stack
//! and ureq's buffers.
//!
//! The steps before connecting run on the thread that hands the delivery over
//! ([`Engine::prepare`]): signing, checking the URL, resolving the host (a DNS lookup blocks
//! that thread, within the connect timeout) and the SSRF guard's decision, all exactly as the
//! [`Deliverer`] does them. Connections are not kept alive: the engine is for receivers that
//! are slow or not known yet, where a fresh connection per attempt costs little beside the
//! wait.

mod exchange;
mod request;
mod tls;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use djinn_hook_outbox::{Attempt, AttemptOutcome, DeliveryRequest};
use mio::{Events, Poll, Token, Waker};
use rustls::pki_types::ServerName;
use time::OffsetDateTime;

use crate::deliver::{Deliverer, finish, wire_headers};
use crate::error::DeliverError;
use exchange::{Ending, Exchange, Ready, Step};
use tls::TlsConfigs;

/// The waker's token; exchanges use their slot's index.
const WAKE: Token = Token(usize::MAX);

/// Bytes read from a socket at a time (one buffer for the reactor, not one per delivery).
const SCRATCH: usize = 16 * 1024;

/// What is called with a delivery's attempt when it ends (on the reactor thread).
type Done = Box<dyn FnOnce(Attempt) + Send>;

/// An evented delivery engine over a [`Deliverer`]'s settings: the same attempts, recorded
/// the same way (outcome, error, status, headers, body excerpt, limits), without a thread per
/// delivery. [`deliver`](Self::deliver) hands a delivery over; its `done` is called with the
/// attempt when it ends.
///
/// Dropping the engine waits for the deliveries under way to end (each within its timeout).
pub struct Engine {
    shared: Arc<Shared>,
    deliverer: Deliverer,
    tls: TlsConfigs,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// A delivery prepared by [`Engine::prepare`]: signed, resolved, allowed by the SSRF guard and
/// encoded, or already failed.
pub struct Prepared {
    inner: Result<Box<Ready>, Attempt>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("failed", &self.inner.is_err())
            .finish_non_exhaustive()
    }
}

/// What the handing-over threads and the reactor share.
struct Shared {
    submitted: Mutex<Vec<(Box<Ready>, Done)>>,
    waker: Waker,
    stopping: AtomicBool,
    in_flight: AtomicUsize,
}

impl Engine {
    /// An engine with its reactor thread, delivering as `deliverer` does.
    pub fn start(deliverer: Deliverer) -> io::Result<Engine> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let shared = Arc::new(Shared {
            submitted: Mutex::new(Vec::new()),
            waker,
            stopping: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        });
        let thread = thread::Builder::new()
            .name("djinn-engine".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                let deliverer = deliverer.clone();
                move || Reactor::new(poll, shared, deliverer).run()
            })?;
        Ok(Engine {
            shared,
            deliverer,
            tls: TlsConfigs::new(),
            thread: Some(thread),
        })
    }

    /// Deliveries handed over and not ended yet.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Prepares `request`'s attempt on this thread: headers signed, URL checked, host resolved
    /// (a lookup blocks, within the connect timeout) and allowed by the SSRF guard, request
    /// encoded.
    pub fn prepare(&self, request: &DeliveryRequest) -> Prepared {
        let started = Instant::now();
        let attempt = Attempt::new(request, OffsetDateTime::now_utc());
        match self.ready(request, attempt, started) {
            Ok(ready) => Prepared {
                inner: Ok(Box::new(ready)),
            },
            Err((attempt, failure)) => Prepared {
                inner: Err(finish(attempt, started, Err(failure))),
            },
        }
    }

    /// Hands a prepared delivery to the reactor; `done` is called with its attempt when it
    /// ends (on the reactor thread; on this one if it failed before connecting).
    pub fn send(&self, prepared: Prepared, done: impl FnOnce(Attempt) + Send + 'static) {
        match prepared.inner {
            Err(attempt) => done(attempt),
            Ok(ready) => {
                self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                lock(&self.shared.submitted).push((ready, Box::new(done)));
                if let Err(error) = self.shared.waker.wake() {
                    // Not expected (an eventfd write); the reactor still looks at its
                    // submissions at its next event or deadline.
                    let _ = error;
                }
            }
        }
    }

    /// [`prepare`](Self::prepare), then [`send`](Self::send).
    pub fn deliver(&self, request: &DeliveryRequest, done: impl FnOnce(Attempt) + Send + 'static) {
        self.send(self.prepare(request), done);
    }

    #[allow(
        clippy::result_large_err,
        reason = "once per delivery, moved straight into its record"
    )]
    fn ready(
        &self,
        request: &DeliveryRequest,
        mut attempt: Attempt,
        started: Instant,
    ) -> Result<Ready, (Attempt, (AttemptOutcome, DeliverError))> {
        match self.connectable(request, &mut attempt, started) {
            Ok(ready) => Ok(Ready { attempt, ..ready }),
            Err(failure) => Err((attempt, failure)),
        }
    }

    /// The parts of a [`Ready`] found before connecting; its `attempt` is a placeholder.
    fn connectable(
        &self,
        request: &DeliveryRequest,
        attempt: &mut Attempt,
        started: Instant,
    ) -> Result<Ready, (AttemptOutcome, DeliverError)> {
        let deliverer = &self.deliverer;
        let config = deliverer.config();
        let uri = deliverer.prepare(request, attempt)?;
        let overall = deliverer.timeout_of(request);
        let classify = |error| deliverer.classify(error, overall);
        // Encoded first, as ureq builds its call before it connects.
        let (output, call) = request::encode(&uri, &wire_headers(attempt, request), &request.body)
            .map_err(classify)?;
        let addrs = deliverer.resolve(&uri, overall)?;
        let resolved = Instant::now();
        let tls = if uri.scheme_str() == Some("https") {
            let host = uri.host().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(bare.to_owned())
                .map_err(|_| classify(ureq::Error::Tls("Rustls invalid dns name error")))?;
            let config = if attempt.tls_verification_skipped {
                &self.tls.unverified
            } else {
                &self.tls.verified
            };
            Some((Arc::clone(config), name))
        } else {
            None
        };
        Ok(Ready {
            attempt: Attempt::new(request, attempt.created_at),
            started,
            addrs,
            tls,
            output,
            call: Some(call),
            overall,
            overall_deadline: started + overall,
            connect_deadline: resolved + config.connect_timeout,
            cap: config.max_response_body,
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A delivery under way and what to call when it ends.
struct Slot {
    exchange: Exchange,
    done: Done,
    /// Tells this slot's deadlines from those of an earlier slot at the same index.
    serial: u64,
    /// The deadline last put on the timer heap.
    deadline: Instant,
}

/// The reactor thread's state.
struct Reactor {
    poll: Poll,
    shared: Arc<Shared>,
    deliverer: Deliverer,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Deadlines by time: (when, slot, serial); stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_serial: u64,
    scratch: Vec<u8>,
}

impl Reactor {
    fn new(poll: Poll, shared: Arc<Shared>, deliverer: Deliverer) -> Reactor {
        Reactor {
            poll,
            shared,
            deliverer,
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            next_serial: 0,
            scratch: vec![0; SCRATCH],
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((at, ..))| at.saturating_duration_since(Instant::now()));
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                // Not expected from epoll; the deadlines still end every delivery.
                thread::sleep(std::time::Duration::from_millis(10));
            }
            for event in &events {
                let token = event.token();
                if token != WAKE {
                    self.on_ready(token.0);
                }
            }
            self.take_submitted();
            self.expire();
            if self.shared.stopping.load(Ordering::Acquire)
                && self.shared.in_flight.load(Ordering::Acquire) == 0
            {
                return;
            }
        }
    }

    fn take_submitted(&mut self) {
        let submitted = std::mem::take(&mut *lock(&self.shared.submitted));
        for (ready, done) in submitted {
            let index = self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            });
            match Exchange::connect(*ready, self.poll.registry(), Token(index), &self.deliverer) {
                Ok(exchange) => {
                    let serial = self.next_serial;
                    self.next_serial += 1;
                    let deadline = exchange.deadline();
                    self.timers.push(Reverse((deadline, index, serial)));
                    self.slots[index] = Some(Slot {
                        exchange,
                        done,
                        serial,
                        deadline,
                    });
                }
                Err((ready, ending)) => {
                    self.free.push(index);
                    self.end(ready.attempt, ready.started, ending, done);
                }
            }
        }
    }

    fn on_ready(&mut self, index: usize) {
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        let step = slot.exchange.on_ready(
            self.poll.registry(),
            Token(index),
            &self.deliverer,
            &mut self.scratch,
        );
        self.after(index, step);
    }

    /// Ends the deliveries whose deadline passed (or moves them to their next address).
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, index, serial))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let Some(Some(slot)) = self.slots.get_mut(index) else {
                continue;
            };
            if slot.serial != serial || slot.deadline != at {
                continue;
            }
            let step =
                slot.exchange
                    .on_deadline(self.poll.registry(), Token(index), &self.deliverer);
            self.after(index, step);
        }
    }

    /// Acts on a step of slot `index`'s exchange: ends it, or keeps its deadline on the heap.
    fn after(&mut self, index: usize, step: Step) {
        match step {
            Step::Wait => {
                let slot = self.slots[index].as_mut().expect("a slot just driven");
                let deadline = slot.exchange.deadline();
                if deadline != slot.deadline {
                    slot.deadline = deadline;
                    self.timers.push(Reverse((deadline, index, slot.serial)));
                }
            }
            Step::Done(ending) => {
                let slot = self.slots[index].take().expect("a slot just driven");
                self.free.push(index);
                // Dropping the exchange closes its socket (and leaves the poll).
                let (attempt, started) = slot.exchange.into_attempt();
                self.end(attempt, started, ending, slot.done);
            }
        }
    }

    fn end(&mut self, attempt: Attempt, started: Instant, ending: Ending, done: Done) {
        // Counted out first: whoever `done` tells finds it no longer in flight.
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        done(finish(attempt, started, ending));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
